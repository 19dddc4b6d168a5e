"""Issue 18 item 11 in the console and the portal, through FastAPI's TestClient on SQLite and PostgreSQL:
the portal names the shop (not the login), shows what the merchant must do once per group and never an
operations instruction, gives its history table headers, and keeps the typed ID number and phone (never
the card number) after a refused re-binding; the payout queue has a select-all box and finds merchants by
part of the number or name."""

from __future__ import annotations

import html
import re

import test_web_console
from test_web_console import World, csrf, sign_in

from payout_helpers import ID_NUMBER, PHONE
from settleguard.diagnosis import knowledge_base
from settleguard.diagnosis.model import Audience
from settleguard.merchants import repository as merchant_repo

world = test_web_console.world  # the fixture: merchants a and c held (3031 户名不符), b and d paid; users mera, merb


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_portal_names_the_shop_and_shows_only_the_merchants_steps(world: World) -> None:
    a = world.held_a.merchant
    c = sign_in(world, "mera")
    steps = knowledge_base().steps
    for lang in ("zh", "en"):
        page = c.get(f"/m/{a.id}?lang={lang}")
        assert page.status_code == 200
        header = _text(page.text.split("<main>")[0])
        assert "测试小吃店" in header  # the shop's registered name
        assert "MERA" not in header  # not the login (display name MERA, user mera)
        assert "mera" not in header
        text = _text(page.text)
        for sid, step in steps.items():
            said = step.en if lang == "en" else step.zh
            if step.audience is Audience.operations:
                assert said not in text, (lang, sid)  # an operations instruction
        assert "保留银行返回原文" not in text
        assert len(re.findall(r"<ol class=\"steps\">", page.text)) == 1  # one group for the held payout
        heads = re.search(r'<table class="list history">\s*<thead>(.*?)</thead>', page.text, re.S)
        assert heads is not None
        assert heads.group(1).count("<th") == 4
    assert "出款日" in _text(c.get(f"/m/{a.id}?lang=zh").text)
    assert "Value date" in _text(c.get(f"/m/{a.id}?lang=en").text)


def test_a_refused_rebinding_keeps_the_id_number_and_the_phone_but_not_the_card(world: World) -> None:
    mid = world.held_a.merchant.id
    c = sign_in(world, "mera")
    token = csrf(c, f"/m/{mid}/card")
    bad = c.post(f"/m/{mid}/card", data={"pan": "6212261234567890", "name": "张三", "id_number": ID_NUMBER,
                                         "phone": PHONE, "csrf_token": token})
    assert bad.status_code == 422
    assert f'name="id_number" value="{ID_NUMBER}"' in bad.text
    assert f'name="phone" value="{PHONE}"' in bad.text
    assert "6212261234567890" not in bad.text
    ok = c.post(f"/m/{mid}/card", data={"pan": world.new_pan, "name": "张三", "id_number": ID_NUMBER, "phone": PHONE,
                                        "csrf_token": token})
    assert ok.status_code == 200
    assert ID_NUMBER not in ok.text  # a bound card's form starts empty


def test_the_queue_selects_all_and_finds_merchants_by_part_of_the_number_or_name(world: World) -> None:
    a, b = world.held_a, world.paid_b
    c = sign_in(world, "oper")
    page = c.get("/payouts").text
    assert "data-select-all=\"ids\"" in page
    assert "/static/queue.js" in page
    assert c.get("/static/queue.js").status_code == 200

    def listed(search: str) -> set[int]:
        r = c.get("/payouts", params={"merchant": search})
        assert r.status_code == 200
        return {int(i) for i in re.findall(r'<td><a href="/payouts/(\d+)">', r.text)}

    everyone = {d.payout_id for d in world.dues}
    assert listed(a.merchant.merchant_no) == {a.payout_id}
    assert listed(a.merchant.merchant_no[-6:]) == {a.payout_id}  # part of the number
    assert listed("测试小吃店") == everyone  # part of the name
    with world.engine.connect() as conn:
        name = str((merchant_repo.by_id(conn, b.merchant.id) or {})["registered_name"])
    assert b.payout_id in listed(name)
    assert listed("%") == set()  # a typed wildcard is itself
    assert "value=\"测试小吃店\"" in c.get("/payouts", params={"merchant": "测试小吃店"}).text
