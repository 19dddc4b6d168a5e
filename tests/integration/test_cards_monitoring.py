"""Card status monitoring on SQLite and PostgreSQL: due cards are inquired, a bad status marks the account
unusable with events and a merchant notification in the same transaction, and payouts to it are held."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from conftest import NOW as IMPORT_NOW
from factories import Merchant, Txn, import_rows, make_merchants, ref
from settleguard.cards.service import CardSettings, ensure_fresh_status, refresh_before_payouts, status_check
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.ledger import repository as ledger_repo
from settleguard.payouts.service import send_due
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def merchants(engine: Engine, vault: Vault, n: int) -> list[Merchant]:
    with engine.begin() as conn:
        return make_merchants(conn, vault, n)


def account(engine: Engine, merchant_id: int) -> dict[str, Any]:
    a = t.settlement_accounts
    with engine.connect() as conn:
        return dict(conn.execute(select(a).where(a.c.merchant_id == merchant_id).order_by(a.c.id.desc())).first()
                    ._mapping)  # type: ignore[union-attr]


def table_rows(engine: Engine, table: Any, merchant_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(table.c.merchant_id == merchant_id)
                                                       .order_by(table.c.id))]


def normal_bank(ms: list[Merchant], **bad: CardStatus) -> SimulatedVerifier:
    """Every card normal, except ``bad`` (merchant_no -> status)."""
    overrides = {m.pan: CardStatus.NORMAL for m in ms}
    for m in ms:
        if m.merchant_no in bad:
            overrides[m.pan] = bad[m.merchant_no]
    return SimulatedVerifier(3, overrides=overrides)


def test_a_frozen_card_is_marked_unusable_with_events_and_a_notification(engine: Engine, vault: Vault) -> None:
    ms = merchants(engine, vault, 3)
    frozen = ms[1]
    bank = normal_bank(ms, **{frozen.merchant_no: CardStatus.FROZEN})
    s = status_check(engine, bank, vault, now=NOW)
    assert (s.checked, s.normal, s.unusable, s.notified) == (3, 2, 1, 1)

    acc = account(engine, frozen.id)
    assert (acc["status"], acc["card_status"], acc["last_status_check_at"]) == ("unusable", "frozen", NOW)
    events = table_rows(engine, t.card_events, frozen.id)
    assert [e["kind"] for e in events] == ["status_changed", "marked_unusable"]
    assert (events[0]["payload"]["from"], events[0]["payload"]["to"]) == (None, "frozen")
    assert events[1]["payload"]["answer_code"] == "B0210"
    notes = table_rows(engine, t.notifications, frozen.id)
    assert [(n["kind"], n["delivered_at"]) for n in notes] == [("card_unusable", None)]
    zh, en = notes[0]["payload"]["zh"], notes[0]["payload"]["en"]
    assert "已冻结" in zh
    assert "挂账" in zh
    assert "frozen" in en
    assert frozen.pan not in zh + en
    assert acc["pan_masked"] in zh
    audit = table_rows(engine, t.card_verifications, frozen.id)
    assert [(v["kind"], v["result"], v["bank_code"]) for v in audit] == [("status", "frozen", "B0210")]

    for m in ms:
        if m is not frozen:
            other = account(engine, m.id)
            assert (other["status"], other["card_status"], other["last_status_check_at"]) == ("active", "normal", NOW)
            assert table_rows(engine, t.card_events, m.id) == []
            assert table_rows(engine, t.notifications, m.id) == []


def test_only_due_cards_are_inquired_and_the_interval_is_configurable(engine: Engine, vault: Vault) -> None:
    ms = merchants(engine, vault, 2)
    bank = normal_bank(ms)
    status_check(engine, bank, vault, now=NOW)
    calls = bank.calls
    again = status_check(engine, bank, vault, now=NOW + timedelta(days=89))
    assert again.checked == 0
    assert bank.calls == calls
    later = NOW + timedelta(days=91)
    bank.overrides[ms[0].pan] = CardStatus.CLOSED  # closed since the last check
    after = status_check(engine, bank, vault, now=later)
    assert after.checked == 2
    acc = account(engine, ms[0].id)
    assert (acc["status"], acc["card_status"]) == ("unusable", "closed")
    assert [e["kind"] for e in table_rows(engine, t.card_events, ms[0].id)] == ["status_changed", "marked_unusable"]
    assert table_rows(engine, t.card_events, ms[0].id)[0]["payload"]["from"] == "normal"
    # a 30-day interval makes the other card due again after 31 days
    short = CardSettings(status_check_days=30)
    assert status_check(engine, bank, vault, now=later + timedelta(days=29), settings=short).checked == 0
    assert status_check(engine, bank, vault, now=later + timedelta(days=31), settings=short).checked == 1
    assert account(engine, ms[1].id)["last_status_check_at"] == later + timedelta(days=31)


def test_an_unanswered_inquiry_leaves_the_card_due_and_usable(engine: Engine, vault: Vault) -> None:
    (m,) = merchants(engine, vault, 1)

    class Down:
        name = "down"

        def verify_four_elements(self, pan: str, name: str, id_number: str, phone: str) -> Any:
            raise AssertionError("not called")

        def inquire_status(self, pan: str) -> Any:
            raise TimeoutError("bank down")

    s = status_check(engine, Down(), vault, now=NOW, account_ids=[account(engine, m.id)["id"]])
    assert (s.checked, s.unanswered, s.unusable) == (1, 1, 0)
    acc = account(engine, m.id)
    assert (acc["status"], acc["last_status_check_at"]) == ("active", None)
    assert [v["result"] for v in table_rows(engine, t.card_verifications, m.id)] == ["error"]


def test_ensure_fresh_status_inquires_only_a_stale_card(engine: Engine, vault: Vault) -> None:
    a, b = merchants(engine, vault, 2)
    bank = normal_bank([a, b], **{b.merchant_no: CardStatus.DORMANT})
    with engine.begin() as conn:
        got = ensure_fresh_status(conn, a.id, verifier=bank, vault=vault, now=NOW)
    assert got is not None
    assert got.last_status_check_at == NOW
    calls = bank.calls
    with engine.begin() as conn:
        assert ensure_fresh_status(conn, a.id, verifier=bank, vault=vault, now=NOW + timedelta(days=1)) is not None
    assert bank.calls == calls
    with engine.begin() as conn:
        assert ensure_fresh_status(conn, b.id, verifier=bank, vault=vault, now=NOW) is None
    assert account(engine, b.id)["status"] == "unusable"
    assert [n["kind"] for n in table_rows(engine, t.notifications, b.id)] == ["card_unusable"]


class PayAll:
    name = "payall"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        self.sent.append(instruction.idempotency_key)
        return BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", "{}")

    def inquire(self, idempotency_key: str) -> BankOutcome:
        return BankOutcome(OutcomeStatus.FAILED, "1002", "无此交易", "{}", retryable=True)


def test_a_card_found_lost_before_paying_holds_the_payout_instead_of_sending_it(
        engine: Engine, vault: Vault, tmp_path: Any) -> None:
    day, value_day = date(2026, 11, 18), date(2026, 11, 19)
    ms = merchants(engine, vault, 2)
    lost = ms[0]
    at = datetime.combine(day, time(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 10_000)
                                   for m in ms], now=IMPORT_NOW)
    settle(engine, day, IMPORT_NOW)
    send_at = datetime.combine(value_day, time(9), ZoneInfo("Asia/Shanghai"))
    bank = normal_bank(ms, **{lost.merchant_no: CardStatus.LOST})
    checked = refresh_before_payouts(engine, bank, vault, as_of=value_day, now=send_at)
    assert checked.checked == 2
    assert checked.unusable == 1
    channel = PayAll()
    summary = send_due(engine, channel, vault, as_of=value_day, now=send_at)
    p = t.payouts
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(p.c.merchant_id, p.c.status).where(
            p.c.merchant_id.in_([m.id for m in ms]))).all())
        assert ledger_repo.check(conn) == []
    assert statuses == {lost.id: "held", ms[1].id: "succeeded"}
    assert summary.held == 1
    assert len(channel.sent) == 1
    note = table_rows(engine, t.notifications, lost.id)[0]["payload"]["zh"]
    assert "已挂失" in note
    # a second refresh the same morning asks nothing: the other card was just checked
    assert refresh_before_payouts(engine, bank, vault, as_of=value_day, now=send_at).checked == 0


def test_a_frozen_card_that_comes_back_is_made_active_again_and_its_held_payout_is_paid(
        engine: Engine, vault: Vault, tmp_path: Any) -> None:
    """Frozen -> unusable, payout held; asked again daily (not before); normal again -> active, a
    status_changed event and a card_restored notice; the worker's release pays the held payout to it.
    A closed card (it cannot come back) is never asked again."""
    from settleguard.payouts.release import release_for_card_events

    day, value_day = date(2026, 11, 18), date(2026, 11, 19)
    ms = merchants(engine, vault, 3)
    frozen, closed, fine = ms
    at = datetime.combine(day, time(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, tmp_path, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR, 10_000)
                                   for m in ms], now=IMPORT_NOW)
    settle(engine, day, IMPORT_NOW)
    send_at = datetime.combine(value_day, time(9), ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    bank = normal_bank(ms, **{frozen.merchant_no: CardStatus.FROZEN, closed.merchant_no: CardStatus.CLOSED})
    assert refresh_before_payouts(engine, bank, vault, as_of=value_day, now=send_at).unusable == 2
    channel = PayAll()
    send_due(engine, channel, vault, as_of=value_day, now=send_at)
    p = t.payouts

    def payout_status(mid: int) -> str:
        with engine.connect() as conn:
            return str(conn.execute(select(p.c.status).where(p.c.merchant_id == mid)).scalar_one())

    assert (payout_status(frozen.id), payout_status(closed.id), payout_status(fine.id)) == ("held", "held",
                                                                                             "succeeded")
    calls = bank.calls
    early = status_check(engine, bank, vault, now=send_at + timedelta(hours=12))  # not a day yet: nothing asked
    assert early.checked == 0
    assert bank.calls == calls

    still = status_check(engine, bank, vault, now=send_at + timedelta(days=1, hours=1))  # still frozen
    assert (still.checked, still.restored, still.unusable) == (1, 0, 1)
    assert account(engine, frozen.id)["status"] == "unusable"
    assert account(engine, frozen.id)["last_status_check_at"] == send_at + timedelta(days=1, hours=1)
    assert [e["kind"] for e in table_rows(engine, t.card_events, frozen.id)] == ["status_changed", "marked_unusable"]

    bank.overrides[frozen.pan] = CardStatus.NORMAL  # the bank lifts the freeze
    bank.overrides[closed.pan] = CardStatus.NORMAL  # (a closed card is not asked again, whatever the bank says)
    back_at = send_at + timedelta(days=2, hours=2)
    back = status_check(engine, bank, vault, now=back_at)
    assert (back.checked, back.restored, back.normal, back.notified) == (1, 1, 1, 1)
    acc = account(engine, frozen.id)
    assert (acc["status"], acc["card_status"]) == ("active", "normal")
    assert account(engine, closed.id)["status"] == "unusable"
    last = table_rows(engine, t.card_events, frozen.id)[-1]
    assert (last["kind"], last["payload"]["from"], last["payload"]["to"]) == ("status_changed", "frozen", "normal")
    [note] = [n for n in table_rows(engine, t.notifications, frozen.id) if n["kind"] == "card_restored"]
    assert "已恢复正常" in note["payload"]["zh"]
    assert "normal again" in note["payload"]["en"]
    assert frozen.pan not in note["payload"]["zh"] + note["payload"]["en"]

    released = release_for_card_events(engine, back_at)
    assert released.released == 1
    assert payout_status(frozen.id) == "released"
    send_due(engine, channel, vault, as_of=value_day + timedelta(days=3), now=back_at + timedelta(minutes=5))
    assert payout_status(frozen.id) == "succeeded"
    assert payout_status(closed.id) == "held"
    assert channel.sent[-1].endswith("R1")  # a new instruction, to the card that came back
    with engine.connect() as conn:
        assert conn.execute(select(p.c.account_id).where(p.c.merchant_id == frozen.id)).scalar_one() == acc["id"]
    with engine.connect() as conn:
        assert ledger_repo.check(conn) == []


def test_the_payout_refresh_asks_again_about_a_frozen_card_with_held_money(
        engine: Engine, vault: Vault, tmp_path: Any) -> None:
    """The worker's refresh (refresh_before_payouts) also re-asks, once a day, about a frozen card whose
    merchant has held payouts; a merchant without held money is left to `card status-check`."""
    day, value_day = date(2026, 11, 18), date(2026, 11, 19)
    ms = merchants(engine, vault, 2)
    held, idle = ms
    at = datetime.combine(day, time(12), ZoneInfo("Asia/Shanghai"))
    import_rows(engine, tmp_path, [Txn(ref(), held.merchant_no, held.terminal_no, at, TxnKind.SALE, CardType.QR,
                                       10_000)], now=IMPORT_NOW)
    settle(engine, day, IMPORT_NOW)
    send_at = datetime.combine(value_day, time(9), ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    bank = normal_bank(ms, **{held.merchant_no: CardStatus.FROZEN, idle.merchant_no: CardStatus.FROZEN})
    status_check(engine, bank, vault, now=send_at)  # both frozen -> unusable
    send_due(engine, PayAll(), vault, as_of=value_day, now=send_at)  # held: no usable card
    bank.overrides[held.pan] = CardStatus.NORMAL
    bank.overrides[idle.pan] = CardStatus.NORMAL
    assert refresh_before_payouts(engine, bank, vault, as_of=value_day, now=send_at + timedelta(hours=2)).checked == 0
    later = refresh_before_payouts(engine, bank, vault, as_of=value_day, now=send_at + timedelta(days=1, hours=1))
    assert (later.checked, later.restored) == (1, 1)
    assert account(engine, held.id)["status"] == "active"
    assert account(engine, idle.id)["status"] == "unusable"
