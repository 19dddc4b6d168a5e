"""Issue 16, item 5 in the console (SQLite and PostgreSQL): the payout page's release of a payout held on the card
that just failed is refused with the reason and offers the override; the override needs a written reason, is
audited, and the merchant's notice says what to do."""

from __future__ import annotations

import test_web_console
from sqlalchemy import select
from test_web_console import World, csrf, sign_in, status_of

from settleguard.db import tables as t

world = test_web_console.world  # two held (name mismatch) and two paid payouts, users of each role


def test_the_payout_page_refuses_a_same_card_release_and_releases_it_as_an_audited_override(world: World) -> None:
    pid = world.held_a.payout_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/payouts/{pid}")
    page = c.get(f"/payouts/{pid}").text
    assert f'action="/payouts/{pid}/release"' in page
    assert 'name="override"' not in page  # offered only once a release was refused for the card

    r = c.post(f"/payouts/{pid}/release", data={"note": "商户说已更正", "csrf_token": token})
    assert r.status_code == 409
    assert "换绑新卡" in r.text
    assert "override with a written reason" in r.text
    assert 'name="override"' in r.text
    assert 'name="override_reason"' in r.text
    r = c.post(f"/payouts/{pid}/release", data={"override": "yes", "override_reason": " ", "csrf_token": token})
    assert r.status_code == 409
    assert "覆盖放行必须填写原因" in r.text
    assert status_of(world.engine, pid) == "held"

    r = c.post(f"/payouts/{pid}/release", data={"override": "yes", "override_reason": "银行确认户名已更正",
                                               "csrf_token": token})
    assert (r.status_code, r.headers["location"]) == (303, f"/payouts/{pid}?done=released")
    assert status_of(world.engine, pid) == "released"
    au, n = t.audit_events, t.notifications
    with world.engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(au.c.kind).where(au.c.subject_id == str(pid)).order_by(au.c.id))]
        (told,) = conn.execute(select(n.c.payload).where(n.c.merchant_id == world.held_a.merchant.id,
                                                         n.c.kind == "released")).one()
    assert kinds[-1] == "operator.payout_release_override"
    assert "无需操作" not in told["zh"]
    assert told["steps_zh"]
