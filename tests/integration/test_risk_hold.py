"""Risk hold (issue 22 item 3), SQLite and PostgreSQL: an operator puts a merchant's payouts on risk hold; the send
path holds its due payout as risk_or_compliance_block (never sent; ledger hold entry); only an operator's release
ends it (a support user, an unknown or a disabled name is refused and nothing changes); the release pays the payout
with a new instruction (ledger release entry) and both steps are in the audit trail. Through the CLI (CliRunner),
which also shows ``risk list --json`` and ``risk show`` after a scan."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from typer.testing import CliRunner

from payout_helpers import (
    OK,
    SEND_AT,
    VALUE_DAY,
    ScriptedBank,
    assert_families,
    entries,
    make_payouts,
    payout,
)
from settleguard.access.model import Role
from settleguard.access.service import add_user
from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.merchants.lifecycle import change_status
from settleguard.merchants.model import StatusAction
from settleguard.payouts.merchant_holds import RISK_HOLD_CODE, release_unfrozen
from settleguard.payouts.service import send_due

HOLD_AT = SEND_AT - timedelta(hours=2)


def _audit(engine: Engine, kind: str) -> list[dict[str, object]]:
    a = t.audit_events
    with engine.connect() as conn:
        return [{"actor": actor, **json.loads(p)} for actor, p in conn.execute(
            select(a.c.actor, a.c.payload).where(a.c.kind == kind).order_by(a.c.id))]


def _users(engine: Engine) -> None:
    for name, role in (("ops.li", Role.OPERATOR), ("support.wang", Role.SUPPORT)):
        add_user(engine, username=name, password="correct-horse-battery", role=role, merchant_no=None,
                 display_name=name, now=HOLD_AT, actor="admin")


def test_only_an_operator_releases_a_risk_hold_and_the_ledger_and_audit_record_it(
        engine: Engine, vault: Vault, tmp_path: Path, db_url: str) -> None:
    held, other = make_payouts(engine, vault, tmp_path, [88_800, 20_000])
    _users(engine)
    run = CliRunner()
    base = ["--db", db_url, "risk"]
    no = held.merchant.merchant_no
    refused = run.invoke(cli, [*base, "hold", no, "--by", "support.wang", "--reason", "疑似套现"])
    assert refused.exit_code == 2, refused.output
    assert "只有运营人员" in refused.output
    assert "only an operator" in refused.output
    assert run.invoke(cli, [*base, "hold", no, "--by", "ops.li", "--reason", " "]).exit_code == 2  # no reason
    with engine.connect() as conn:
        assert conn.execute(select(t.risk_holds)).first() is None  # refused: nothing changed
    ok = run.invoke(cli, [*base, "hold", no, "--by", "ops.li", "--reason", "疑似套现 card cashing suspected",
                          "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["held"] is True
    assert run.invoke(cli, [*base, "hold", no, "--by", "ops.li", "--reason", "again"]).exit_code == 2  # one at a time

    bank = ScriptedBank(sends={other.key: [OK]})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    p = payout(engine, held.payout_id)
    assert (p["status"], p["category"], p["last_code"]) == ("held", "risk_or_compliance_block", RISK_HOLD_CODE)
    assert held.key not in {k for _, k in bank.calls}  # never reached the bank
    assert payout(engine, other.payout_id)["status"] == "succeeded"
    assert entries(engine, held.payout_id) == ["payout_submit", "payout_hold"]
    # unfreezing a merchant does not end a risk hold
    change_status(engine, no, StatusAction.FREEZE, "test", actor="ops.li", now=SEND_AT, release_held=release_unfrozen)
    change_status(engine, no, StatusAction.UNFREEZE, "test", actor="ops.li", now=SEND_AT,
                  release_held=release_unfrozen)
    assert payout(engine, held.payout_id)["status"] == "held"

    for who in ("support.wang", "nobody", ""):
        bad = run.invoke(cli, [*base, "release", no, "--by", who, "--reason", "核实无误"])
        assert bad.exit_code == 2, bad.output
    assert payout(engine, held.payout_id)["status"] == "held"
    released = run.invoke(cli, [*base, "release", no, "--by", "ops.li", "--reason", "核实无误 verified", "--json"])
    assert released.exit_code == 0, released.output
    body = json.loads(released.stdout)
    assert body["released_payouts"] == [held.payout_id]
    assert body["released_fen"] == held.amount
    p = payout(engine, held.payout_id)
    assert (p["status"], p["instruction_no"]) == ("released", 1)
    assert entries(engine, held.payout_id) == ["payout_submit", "payout_hold", "payout_release"]
    assert [(e["actor"], e["reason"]) for e in _audit(engine, "risk.hold")] == [
        ("ops.li", "疑似套现 card cashing suspected")]
    rel = _audit(engine, "risk.release")
    assert [(e["actor"], e["released_payouts"], e["released_fen"]) for e in rel] == [
        ("ops.li", [held.payout_id], held.amount)]
    with engine.connect() as conn:
        h = conn.execute(select(t.risk_holds)).one()
    assert (h.placed_by, h.released_by, h.release_reason) == ("ops.li", "ops.li", "核实无误 verified")
    # the next send pays it (new instruction, to the current card)
    bank2 = ScriptedBank(sends={f"{held.key}R1": [OK]})
    send_due(engine, bank2, vault, as_of=VALUE_DAY, now=SEND_AT + timedelta(hours=1))
    assert payout(engine, held.payout_id)["status"] == "succeeded"
    assert_families(engine)
    assert run.invoke(cli, [*base, "release", no, "--by", "ops.li", "--reason", "x"]).exit_code == 2  # not held


def test_scan_list_and_show_through_the_cli(engine: Engine, vault: Vault, db_url: str) -> None:
    from test_risk_scan import DAY, build_corpus

    corpus = build_corpus(engine, vault, seed=7)
    run = CliRunner()
    base = ["--db", db_url, "risk"]
    empty = run.invoke(cli, [*base, "list"])
    assert empty.exit_code == 0
    assert "尚未扫描" in empty.output
    scanned = run.invoke(cli, [*base, "scan", "--date", DAY.isoformat(), "--json"])
    assert scanned.exit_code == 0, scanned.output
    listed = json.loads(run.invoke(cli, [*base, "list", "--json"]).stdout)
    with engine.connect() as conn:
        nos = dict(conn.execute(select(t.merchants.c.id, t.merchants.c.merchant_no)).all())
    assert {x["merchant_no"] for x in listed} >= {nos[m] for m in corpus.planted if corpus.planted[m] != "silence"}
    for x in listed:
        assert set(x) >= {"merchant_no", "score", "rules", "explanation"}
        assert isinstance(x["score"], int)
        assert x["rules"]
        assert x["explanation"]["zh"]
        assert x["explanation"]["en"]
    mid = next(m for m, p in corpus.planted.items() if p == "same_card")
    shown = run.invoke(cli, [*base, "show", nos[mid]])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "同一张卡当日多次交易" in text
    assert "the same card several times a day" in text
    assert all(ref in text for ref in sorted(corpus.planted_refs[mid])[:5])
    js = json.loads(run.invoke(cli, [*base, "show", nos[mid], "--json"]).stdout)
    assert set(js["evidence"]["same_card"]) == corpus.planted_refs[mid]
    assert js["features"][-1]["cycle_date"] == DAY.isoformat()
    assert js["hold"] is None
    missing = run.invoke(cli, [*base, "show", "000000000000000"])
    assert missing.exit_code == 2
    assert "没有商户" in missing.output
    # a broken operator rule file is refused by name, nothing scanned
    bad = Path(str(db_url).split("///")[-1]).parent / "bad.toml" if db_url.startswith("sqlite") else None
    if bad is not None:
        bad.write_text('[[rules]]\nid = "x"\nfeature = "nope"\nweight = 10\nthreshold = 1\n', encoding="utf-8")
        out = run.invoke(cli, [*base, "scan", "--date", DAY.isoformat()], env={"SETTLEGUARD_RISK_RULES": str(bad)})
        assert out.exit_code == 2, out.output
        assert "rules[12] (x).feature" in out.output
        assert "未知特征" in out.output
