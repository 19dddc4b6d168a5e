"""Merchant lifecycle against a database (SQLite and PostgreSQL), issue 19 item 5: a frozen merchant's payouts
are held (risk_or_compliance_block) by the send path and never reach the bank; unfreezing releases them (audited)
and the next send pays them; a closed merchant is settled and paid what is left, and the transaction import then
reports the merchant's later rows by line."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from factories import Txn, import_rows, ref
from payout_helpers import (
    DAY,
    OK,
    SEND_AT,
    VALUE_DAY,
    ScriptedBank,
    assert_families,
    entries,
    make_payouts,
    payout,
)
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.transactions import ImportRejected
from settleguard.merchants.lifecycle import change_status
from settleguard.merchants.model import StatusAction
from settleguard.payouts.merchant_holds import release_unfrozen
from settleguard.payouts.service import send_due
from settleguard.settlement.model import CardType, TxnKind

SH = ZoneInfo("Asia/Shanghai")
FREEZE_AT = SEND_AT - timedelta(hours=1)


def _audit(engine: Engine, kind: str) -> list[dict[str, object]]:
    a = t.audit_events
    with engine.connect() as conn:
        return [json.loads(p) for (p,) in conn.execute(select(a.c.payload).where(a.c.kind == kind).order_by(a.c.id))]


def test_a_frozen_merchants_payout_is_held_not_sent_and_unfreezing_pays_it(engine: Engine, vault: Vault,
                                                                          tmp_path: Path) -> None:
    frozen, other = make_payouts(engine, vault, tmp_path, [12_345, 20_000])
    change_status(engine, frozen.merchant.merchant_no, StatusAction.FREEZE, "涉嫌套现，风控审查", actor="risk",
                  now=FREEZE_AT, release_held=release_unfrozen)
    bank = ScriptedBank(sends={other.key: [OK]})
    summary = send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    held = payout(engine, frozen.payout_id)
    assert (held["status"], held["category"], held["last_code"]) == ("held", "risk_or_compliance_block",
                                                                      "MERCHANT_FROZEN")
    assert frozen.key not in {k for _, k in bank.calls}  # never sent to the bank
    assert [i.idempotency_key for i in bank.instructions] == [other.key]
    assert payout(engine, other.payout_id)["status"] == "succeeded"
    assert summary.held == 1
    assert entries(engine, frozen.payout_id) == ["payout_submit", "payout_hold"]
    # another run: still held, still not sent
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT + timedelta(hours=1))
    assert payout(engine, frozen.payout_id)["status"] == "held"
    assert frozen.key not in {k for _, k in bank.calls}

    ch = change_status(engine, frozen.merchant.merchant_no, StatusAction.UNFREEZE, "审查完毕，解除冻结",
                       actor="risk", now=SEND_AT + timedelta(hours=2), release_held=release_unfrozen)
    assert (ch.released, ch.released_fen) == (1, frozen.amount)
    assert payout(engine, frozen.payout_id)["status"] == "released"
    unfreeze = _audit(engine, "merchant.unfreeze")
    assert unfreeze[-1]["released_payouts"] == [frozen.payout_id]
    assert unfreeze[-1]["released_fen"] == frozen.amount
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT + timedelta(hours=3))
    assert payout(engine, frozen.payout_id)["status"] == "succeeded"
    assert bank.paid[f"{frozen.key}R1"] == 1
    assert entries(engine, frozen.payout_id) == ["payout_submit", "payout_hold", "payout_release", "payout_confirm"]
    assert_families(engine)


def test_unfreezing_leaves_a_banks_risk_hold_alone(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    """Only the holds the freeze made are released; a risk hold from a bank's answer waits for a person."""
    from settleguard.payouts import repository as repo
    from settleguard.payouts.merchant_holds import held_for_freeze

    (due,) = make_payouts(engine, vault, tmp_path, [30_000])
    change_status(engine, due.merchant.merchant_no, StatusAction.FREEZE, "风控", actor="risk", now=FREEZE_AT, release_held=release_unfrozen)
    send_due(engine, ScriptedBank(), vault, as_of=VALUE_DAY, now=SEND_AT)
    with engine.begin() as conn:
        assert [p.id for p in held_for_freeze(conn, due.merchant.id)] == [due.payout_id]
        conn.execute(t.payouts.update().where(t.payouts.c.id == due.payout_id).values(last_code="RISK01"))
        assert held_for_freeze(conn, due.merchant.id) == []
        assert [p.id for p in repo.held_for(conn, [due.merchant.id], ["risk_or_compliance_block"])] == [due.payout_id]
    change_status(engine, due.merchant.merchant_no, StatusAction.UNFREEZE, "解冻", actor="risk",
                  now=SEND_AT + timedelta(hours=1), release_held=release_unfrozen)
    assert payout(engine, due.payout_id)["status"] == "held"


def test_a_closed_merchant_is_paid_what_is_left_and_later_transactions_are_reported(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    closing, other = make_payouts(engine, vault, tmp_path, [15_000, 16_000])
    closed_at = SEND_AT - timedelta(hours=2)
    change_status(engine, closing.merchant.merchant_no, StatusAction.CLOSE, "商户申请注销", actor="ops", now=closed_at, release_held=release_unfrozen)
    bank = ScriptedBank(sends={closing.key: [OK], other.key: [OK]})
    send_due(engine, bank, vault, as_of=VALUE_DAY, now=SEND_AT)
    assert payout(engine, closing.payout_id)["status"] == "succeeded"  # what was left is paid
    assert bank.paid[closing.key] == 1
    # A later file: the closed merchant's row after the close is reported at its line; nothing is imported.
    next_day = DAY + timedelta(days=1)
    after = datetime.combine(next_day, time(12), SH)
    before = closed_at - timedelta(minutes=5)
    rows = [Txn(ref(), other.merchant.merchant_no, other.merchant.terminal_no, after, TxnKind.SALE, CardType.QR, 100),
            Txn(ref(), closing.merchant.merchant_no, closing.merchant.terminal_no, after, TxnKind.SALE,
                CardType.QR, 200),
            Txn(ref(), closing.merchant.merchant_no, closing.merchant.terminal_no, before, TxnKind.SALE,
                CardType.QR, 300)]
    with engine.connect() as conn:
        count_before = conn.execute(select(func.count()).select_from(t.transactions)).scalar_one()
    with pytest.raises(ImportRejected) as exc:
        import_rows(engine, tmp_path, rows, now=after + timedelta(hours=1))
    lines = [n for n, _ in exc.value.problems]
    assert lines == [3]
    assert "注销" in exc.value.problems[0][1]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.transactions)).scalar_one() == count_before
    # without the row after the close, the file imports (the row before the close is what was left)
    import_rows(engine, tmp_path, [rows[0], rows[2]], now=after + timedelta(hours=1))
    assert_families(engine)
