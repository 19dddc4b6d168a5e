"""Issue 16, items 5 and 6 at the command line (a subprocess per command, SQLite and PostgreSQL): ``payouts release``
of a payout held on a card that just failed is refused unless ``--override --reason``; ``payouts show`` of a payout
held without a card shows that reason, not an older attempt's, and no next-attempt time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update
from test_payout_cli import SEND_AT, VALUE_DAY, Bank, cli, setup

from settleguard.db import tables as t
from settleguard.payouts.service import Options, send_due


def test_release_to_the_card_that_just_failed_needs_an_override_with_a_reason(db_url: str, tmp_path: Path) -> None:
    engine, vault, (p,) = setup(db_url, tmp_path, 1)
    send_due(engine, Bank({p.key: "name"}), vault, as_of=VALUE_DAY, now=SEND_AT, opts=Options())
    engine.dispose()

    refused = cli(db_url, "payouts", "release", str(p.id), cwd=tmp_path, code=1)
    assert "户名不符" in refused.stderr
    assert "换绑新卡" in refused.stderr
    assert "override" in refused.stderr
    blank = cli(db_url, "payouts", "release", str(p.id), "--override", cwd=tmp_path, code=1)
    assert "覆盖放行必须填写原因" in blank.stderr
    shown = json.loads(cli(db_url, "payouts", "show", str(p.id), "--json", cwd=tmp_path).stdout)
    assert shown["payout"]["status"] == "held"

    done = cli(db_url, "payouts", "release", str(p.id), "--override", "--reason", "银行确认户名已更正", "--actor", "ops:li",
               cwd=tmp_path)
    assert "released" in done.stdout
    with engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(t.audit_events.c.kind).order_by(t.audit_events.c.id))]
    assert kinds.count("operator.payout_release_override") == 1


def test_show_of_a_payout_held_without_a_card_gives_that_reason_and_no_next_attempt(db_url: str, tmp_path: Path) -> None:
    engine, vault, (p,) = setup(db_url, tmp_path, 1)
    send_due(engine, Bank({p.key: "cutover"}), vault, as_of=VALUE_DAY, now=SEND_AT, opts=Options())  # retry later
    with engine.begin() as conn:
        conn.execute(update(t.settlement_accounts).values(status="replaced"))  # no usable card any more
    send_due(engine, Bank({}), vault, as_of=VALUE_DAY, now=SEND_AT + timedelta(days=1), opts=Options())
    engine.dispose()

    shown = json.loads(cli(db_url, "payouts", "show", str(p.id), "--json", cwd=tmp_path).stdout)
    assert shown["payout"]["status"] == "held"
    assert shown["payout"]["next_attempt_at"] is None
    assert shown["payout"]["category"] == "card_info_error"
    assert shown["diagnosis"]["category"] == "card_info_error"
    assert "结算卡" in shown["diagnosis"]["meaning"]
    text = cli(db_url, "payouts", "show", str(p.id), cwd=tmp_path).stdout
    assert "下次尝试" not in text
    assert "没有可用的结算卡" in text
    listed = cli(db_url, "payouts", "list", cwd=tmp_path).stdout
    assert "3024" not in listed
