"""A hypothesis state machine drives the real payout lifecycle against a truthful scripted bank, on SQLite and
PostgreSQL: worker cycles whose sends the bank answers with one code of each failure category (or a timeout after
which the money did or did not move), pain.002 status reports, camt.054 returns (退票) days later, operators'
releases and cancellations, card re-bindings and the clock moving on. After every step:

- every payout's status trail (payout_events) follows payouts.model.TRANSITIONS and ends at its status;
- ``ledger_repo.check()`` is empty and, per merchant, paid + held + in transit + payable = settled;
- the bank never executed one instruction key twice, and never paid one payout more than its amount over all
  of its keys (a release must not pay again what a lost answer had paid);
- the bank's truth and the records agree: a payout whose money the bank holds as paid is succeeded or still
  being found out (submitted, result_unknown, inquiry); a succeeded payout was paid by the bank;
- every instruction went to the merchant's card bound at the time (never to a replaced card).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, create_engine, func, select, text

from conftest import NOW, PG_URL
from factories import Txn, import_rows, make_merchants, ref
from settleguard.cards.bins import luhn_complete
from settleguard.cards.service import BindRefused, BindRequest, bind_card
from settleguard.cards.vault import Vault, load_vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.cases.service import SystemCases
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.diagnosis import classify
from settleguard.ledger import repository as ledger_repo
from settleguard.ledger.model import Account
from settleguard.payouts import release as release_mod
from settleguard.payouts import report_repository as report_repo
from settleguard.payouts.files import import_report
from settleguard.payouts.model import CANCELLABLE, TRANSITIONS, PayoutStatus
from settleguard.payouts.policy import CARD_HOLDS
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, TxnKind
from settleguard.worker import cycle
from unit.channels.samples import Detail, Entry, Pmt, Tx, camt054, pain002

CASES = SystemCases("Asia/Shanghai")  # cases opened by an import, in the business time zone (as the CLI does)

S = PayoutStatus
TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 18)  # Wednesday; T+1 value date Thursday 19th
START = datetime.combine(date(2026, 11, 19), time(9), TZ)
LIMIT_FEN = 5_000_000  # the scripted channel's single-payment limit (50,000 yuan)
ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"
A = "allinpay"

# name -> (code, status, channel says resend is safe, the money moved, category the diagnosis must give)
OUTCOMES: dict[str, tuple[str, OutcomeStatus, bool, bool, str]] = {
    "ok": ("0000", OutcomeStatus.SUCCEEDED, False, True, "succeeded"),
    "cut_over": ("3024", OutcomeStatus.FAILED, True, False, "system_or_network_fault"),
    "busy": ("3028", OutcomeStatus.FAILED, True, False, "result_unknown"),
    "timeout_paid": ("TIMEOUT", OutcomeStatus.UNKNOWN, False, True, "result_unknown"),
    "timeout_lost": ("TIMEOUT", OutcomeStatus.UNKNOWN, False, False, "result_unknown"),
    "name_mismatch": ("3031", OutcomeStatus.FAILED, False, False, "card_info_error"),
    "closed": ("3039", OutcomeStatus.FAILED, False, False, "card_status_abnormal"),
    "risk": ("3005", OutcomeStatus.FAILED, False, False, "risk_or_compliance_block"),
    "no_funds": ("3008", OutcomeStatus.FAILED, False, False, "insufficient_funds"),
    "sign_in": ("3011", OutcomeStatus.FAILED, False, False, "verification_failed"),
    "over_limit": ("3013", OutcomeStatus.FAILED, False, False, "limit_exceeded"),
    "bad_data": ("3040", OutcomeStatus.FAILED, False, False, "transaction_data_error"),
    "unknown": ("3001", OutcomeStatus.FAILED, False, False, "unknown"),
}
# pain.002 reason codes (scheme iso20022) for a rejection, by the category of the bank's rejection.
ISO_REASON = {"card_info_error": "AC01", "card_status_abnormal": "AC04", "risk_or_compliance_block": "RR04",
              "insufficient_funds": "AM04", "limit_exceeded": "AM02", "transaction_data_error": "FF01",
              "system_or_network_fault": "TM01", "verification_failed": "TM01", "unknown": "NARR"}
OK_ANSWER = BankOutcome(OutcomeStatus.SUCCEEDED, "0000", "交易成功", '{"RET_CODE":"0000"}', scheme=A)
NOT_FOUND = BankOutcome(OutcomeStatus.FAILED, "1002", "无法查询到该交易，可以重发", '{"RET_CODE":"1002"}',
                        retryable=True, scheme=A)
DUPLICATE = BankOutcome(OutcomeStatus.FAILED, "3051", "重复业务", '{"RET_CODE":"3051"}', scheme=A)
STILL_UNKNOWN = BankOutcome(OutcomeStatus.UNKNOWN, "TIMEOUT", "交易通讯超时，请发起查询交易", "", scheme=A)
MERCHANT_OF_KEY = re.compile(r"^SG\d{8}M(\d+)")
_pan_serial = iter(range(1, 10**9))


def answer(name: str) -> BankOutcome:
    code, status, retryable, _, _ = OUTCOMES[name]
    return BankOutcome(status, code, f"scripted {name}", f'{{"RET_CODE":"{code}"}}', retryable=retryable, scheme=A)


def test_each_scripted_answer_is_diagnosed_as_the_category_it_stands_for() -> None:
    """The machine's bank covers every category: guard the scripted codes against knowledge-base changes."""
    for name, (code, status, _, _, category) in OUTCOMES.items():
        if status is OutcomeStatus.FAILED:
            assert classify(A, code, None).category.value == category, name
    for category, code in ISO_REASON.items():
        if code not in ("TM01", "NARR"):
            assert classify("iso20022", code, None).category.value == category, code


class TruthfulBank:
    """A BankChannel whose answers to sends come from a script, and which otherwise behaves like a bank: it never
    executes one key twice (a resend of a paid key answers 3051), answers inquiries with the truth (paid, the
    last definite rejection, or 1002 never received) unless told to stay silent, and publishes a single-payment
    limit. ``check_card`` is asked, for every send, whether the account is the merchant's current card."""

    name = "scripted"

    def __init__(self, check_card: Callable[[PayoutInstruction], None]) -> None:
        self.script: list[str] = []
        self.paid: dict[str, int] = {}  # key -> fen
        self.executions: Counter[str] = Counter()
        self.rejected: dict[str, str] = {}  # key -> outcome name of the last definite rejection
        self.returned: set[str] = set()
        self.silent_inquiries = 0
        self.check_card = check_card

    def payment_limit_fen(self, account_kind: str = "personal") -> int:
        return LIMIT_FEN

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        key = instruction.idempotency_key
        self.check_card(instruction)
        if key in self.paid:
            return DUPLICATE
        name = self.script.pop(0) if self.script else "ok"
        _, status, retryable, executed, _ = OUTCOMES[name]
        if executed:
            self.paid[key] = instruction.amount_fen
            self.executions[key] += 1
            self.rejected.pop(key, None)
        elif status is OutcomeStatus.FAILED and not retryable:
            self.rejected[key] = name
        return answer(name)

    def inquire(self, idempotency_key: str) -> BankOutcome:
        if self.silent_inquiries > 0:
            self.silent_inquiries -= 1
            return STILL_UNKNOWN
        if idempotency_key in self.paid:
            return OK_ANSWER
        if idempotency_key in self.rejected:
            return answer(self.rejected[idempotency_key])
        return NOT_FOUND


def _new_sqlite() -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="sg-sm-"))
    try:
        yield f"sqlite:///{d / 'sm.db'}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _new_pg() -> Iterator[str]:
    schema = f"sgsm_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class PayoutLifecycle(RuleBasedStateMachine):
    """One fresh database per example; a few merchants with one payout each (some above the channel's limit)."""

    new_database: Callable[[], Iterator[str]] = staticmethod(_new_sqlite)  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self._db = self.new_database()
        url = next(self._db)
        self.dir = Path(tempfile.mkdtemp(prefix="sg-sm-files-"))
        self.engine: Engine = open_engine(url)
        self.vault: Vault = load_vault(None, self.dir / "k.key")
        self.now = START
        self.current_pan: dict[int, str] = {}
        self.merchant_nos: dict[int, str] = {}
        self.bank = TruthfulBank(self._check_card)
        self.returned_fen: Counter[int] = Counter()  # merchant -> money that came back (camt.054 returns)
        self.reports = 0

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)
        self._db.close()

    def _check_card(self, ins: PayoutInstruction) -> None:
        m = MERCHANT_OF_KEY.match(ins.idempotency_key)
        assert m is not None, ins.idempotency_key
        assert ins.account_number == self.current_pan[int(m.group(1))], f"{ins!r} went to a replaced card"

    # ------------------------------------------------------------------ set-up

    @initialize(amounts=st.lists(st.sampled_from([1, 8_800, 250_000, 4_999_999, 5_200_000, 12_345_678, 12_345_678]),
                                 min_size=1, max_size=3))
    def merchants_with_payouts(self, amounts: list[int]) -> None:
        with self.engine.begin() as conn:
            ms = make_merchants(conn, self.vault, len(amounts))
        at = datetime.combine(DAY, time(12), TZ)
        import_rows(self.engine, self.dir, [Txn(ref(), m.merchant_no, m.terminal_no, at, TxnKind.SALE, CardType.QR,
                                                a) for m, a in zip(ms, amounts, strict=True)], now=NOW)
        settle(self.engine, DAY, NOW)
        for m in ms:
            self.current_pan[m.id] = m.pan
            self.merchant_nos[m.id] = m.merchant_no

    # ------------------------------------------------------------------ helpers

    def payouts(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t.payouts).order_by(t.payouts.c.id))]

    def keys_of(self) -> dict[str, int]:
        """Instruction key -> payout id, from the attempts recorded before anything was sent."""
        a = t.payout_attempts
        with self.engine.connect() as conn:
            return {k: int(p) for k, p in conn.execute(select(a.c.idempotency_key, a.c.payout_id).distinct())}

    def latest_key(self, payout_id: int) -> str | None:
        a = t.payout_attempts
        with self.engine.connect() as conn:
            return conn.execute(select(a.c.idempotency_key).where(a.c.payout_id == payout_id, a.c.kind == "send")
                                .order_by(a.c.id.desc()).limit(1)).scalar_one_or_none()

    def _write(self, xml: str) -> Path:
        self.reports += 1
        path = self.dir / f"report-{self.reports}.xml"
        path.write_text(xml, encoding="utf-8")
        return path

    # ------------------------------------------------------------------ rules

    @rule(names=st.lists(st.sampled_from(sorted(OUTCOMES) + ["over_limit", "timeout_paid", "timeout_lost", "ok"]),
                         min_size=0, max_size=4), silent=st.integers(0, 3))
    def worker_cycle(self, names: list[str], silent: int) -> None:
        """One worker cycle; the bank answers its sends as scripted (then "ok"), and its first ``silent``
        inquiries time out again (silent=3: none of them on most cycles)."""
        self.bank.script = list(names)
        self.bank.silent_inquiries = silent if silent < 3 else 0
        cycle(self.engine, self.bank, self.vault, None, as_of=self.now.astimezone(TZ).date(), now=self.now)

    @rule(minutes=st.sampled_from([1, 15, 45, 6 * 60, 26 * 60, 4 * 24 * 60]))
    def clock_moves_on(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(i=st.integers(0, 50), stale=st.booleans())
    def status_report_arrives(self, i: int, stale: bool) -> None:
        """A pain.002 about one instruction the bank received: the truth (paid, rejected, or still pending)."""
        keys = sorted(self.keys_of())
        if not keys:
            return
        key = keys[i % len(keys)]
        if key in self.bank.paid:
            tx = Tx(key, "ACSC")
        elif key in self.bank.rejected:
            category = OUTCOMES[self.bank.rejected[key]][4]
            tx = Tx(key, "RJCT", code=ISO_REASON[category], info=["拒绝 rejected"])
        else:
            tx = Tx(key, "PDNG" if stale else "ACSP")
        path = self._write(pain002([Pmt("PMT-1", txs=[tx])], original_message=f"SGB-SM-{self.reports}"))
        # These payouts went out through the API channel: no pain.001 of ours carries the report's OrgnlMsgId,
        # which alone refuses a file (tested in test_report_unknown_refs.py); here the answers themselves count.
        with patch.object(report_repo, "message_exported", lambda _conn, _id: True):
            import_report(self.engine, path, now=self.now, cases=CASES)
            import_report(self.engine, path, now=self.now, cases=CASES)  # the same file twice changes nothing more

    @rule(i=st.integers(0, 50), code=st.sampled_from(["AC04", "AC01", "MD07"]))
    def paid_payout_is_returned(self, i: int, code: str) -> None:
        """Days after a payout was paid, the bank returns it (退票) in a camt.054."""
        keys = self.keys_of()
        paid = sorted(k for k in self.bank.paid if k not in self.bank.returned and k in keys)
        if not paid:
            return
        key = paid[i % len(paid)]
        p = next(p for p in self.payouts() if p["id"] == keys[key])
        current = self.latest_key(p["id"])
        if p["status"] not in (S.SUCCEEDED, S.SUBMITTED, S.RESULT_UNKNOWN, S.INQUIRY) or current != key:
            return
        self.now += timedelta(days=2)
        amount = f"{self.bank.paid[key] / 100:.2f}"
        path = self._write(camt054([Entry(amount, cd="CRDT", details=[Detail(key, amount, code, ["退票 returned"])])]))
        summary = import_report(self.engine, path, now=self.now, cases=CASES)
        assert summary.returned == 1
        self.bank.returned.add(key)
        self.returned_fen[p["merchant_id"]] += self.bank.paid[key]

    @rule(i=st.integers(0, 50))
    def operator_releases(self, i: int) -> None:
        ps = [p for p in self.payouts() if i % 2 == 0 or p["status"] in (S.HELD, S.NEEDS_REVIEW)] or self.payouts()
        p = ps[i % len(ps)]
        with self.engine.connect() as conn:
            has_card = conn.execute(select(func.count()).select_from(t.settlement_accounts).where(
                t.settlement_accounts.c.merchant_id == p["merchant_id"],
                t.settlement_accounts.c.status == "active")).scalar_one() > 0
        try:
            got = release_mod.release(self.engine, p["id"], "ops:machine", self.now, "checked")
        except release_mod.PayoutActionRefused:
            assert p["status"] not in (S.HELD, S.NEEDS_REVIEW) or (p["status"] == S.HELD and not has_card)
            return
        assert (p["status"], got) in ((S.HELD, S.RELEASED), (S.NEEDS_REVIEW, S.RETRY_SCHEDULED))

    @rule(i=st.integers(0, 50), really=st.integers(0, 3))
    def operator_cancels(self, i: int, really: int) -> None:
        if really:  # operators cancel rarely: keep most examples' payouts alive for the other rules
            return
        ps = self.payouts()
        p = ps[i % len(ps)]
        try:
            release_mod.cancel(self.engine, p["id"], "商户要求 merchant asked", "ops:machine", self.now)
        except release_mod.PayoutActionRefused:
            assert PayoutStatus(p["status"]) not in CANCELLABLE
            return
        assert PayoutStatus(p["status"]) in CANCELLABLE

    @precondition(lambda self: bool(self.current_pan))
    @rule(i=st.integers(0, 50))
    def merchant_rebinds_card(self, i: int) -> None:
        mids = sorted(self.current_pan)
        mid = mids[i % len(mids)]
        pan = luhn_complete(f"621226{next(_pan_serial) + 500_000_000:012d}")
        verifier = SimulatedVerifier(1, holders={pan: Holder("张三", ID_NUMBER, PHONE)},
                                     overrides={pan: CardStatus.NORMAL})
        try:
            bind_card(self.engine, verifier, self.vault, BindRequest(self.merchant_nos[mid], pan, "张三", ID_NUMBER,
                                                                     PHONE, actor="merchant"), now=self.now)
        except BindRefused as exc:
            if exc.code != "rate_limited":  # five verifications a day per merchant; anything else is a failure
                raise
            return
        self.current_pan[mid] = pan

    # ------------------------------------------------------------------ invariants

    @invariant()
    def trails_follow_the_transition_table(self) -> None:
        ev = t.payout_events
        with self.engine.connect() as conn:
            trails: dict[int, list[tuple[str | None, str]]] = {}
            for pid, frm, to in conn.execute(select(ev.c.payout_id, ev.c.from_status, ev.c.to_status)
                                             .order_by(ev.c.id)):
                trails.setdefault(int(pid), []).append((frm, to))
        for p in self.payouts():
            trail = trails[p["id"]]
            assert trail[0] == (None, "created"), (p["id"], trail)
            for (_, to), (frm, nxt) in zip(trail, trail[1:], strict=False):
                assert frm == to, (p["id"], trail)
                assert PayoutStatus(nxt) in TRANSITIONS[PayoutStatus(to)], (p["id"], trail)
            assert trail[-1][1] == p["status"], (p["id"], trail)

    @invariant()
    def money_is_conserved(self) -> None:
        with self.engine.connect() as conn:
            assert ledger_repo.check(conn) == []
            settled = dict(conn.execute(select(t.settlements.c.merchant_id, func.sum(t.settlements.c.net_fen))
                                        .group_by(t.settlements.c.merchant_id)).all())
            for mid, net in settled.items():
                bal = ledger_repo.balances(conn, mid)
                assert net == (bal.get(Account.BANK_PROVISIONS, 0) + bal.get(Account.MERCHANT_HELD, 0)
                               + bal.get(Account.PAYOUT_IN_TRANSIT, 0) + bal.get(Account.MERCHANT_PAYABLE, 0)), mid

    @invariant()
    def nothing_is_paid_twice(self) -> None:
        assert all(n == 1 for n in self.bank.executions.values())
        keys = self.keys_of()
        out: Counter[int] = Counter()
        for key, fen in self.bank.paid.items():
            if key not in self.bank.returned:
                out[keys[key]] += fen
        amounts = {p["id"]: p["amount_fen"] for p in self.payouts()}
        for pid, fen in out.items():
            assert fen <= amounts[pid], f"payout {pid} paid {fen} > {amounts[pid]}"

    @invariant()
    def records_agree_with_the_bank(self) -> None:
        keys = self.keys_of()
        net: Counter[int] = Counter()
        for key, fen in self.bank.paid.items():
            if key not in self.bank.returned:
                net[keys[key]] += fen
        paid_by_merchant: Counter[int] = Counter()
        for p in self.payouts():
            st_ = PayoutStatus(p["status"])
            if net[p["id"]]:
                assert st_ in (S.SUCCEEDED, S.SUBMITTED, S.RESULT_UNKNOWN, S.INQUIRY), (p["id"], st_)
            if st_ is S.SUCCEEDED:
                assert net[p["id"]] == p["amount_fen"], (p["id"], net[p["id"]])
                paid_by_merchant[p["merchant_id"]] += p["amount_fen"]
            if st_ is S.HELD and p["category"] in CARD_HOLDS:
                assert net[p["id"]] == 0
        with self.engine.connect() as conn:
            for mid, fen in paid_by_merchant.items():
                assert ledger_repo.balances(conn, mid).get(Account.BANK_PROVISIONS, 0) == fen


def _run(new_database: Callable[[], Iterator[str]], examples: int) -> None:
    machine = type("Machine", (PayoutLifecycle,), {"new_database": staticmethod(new_database)})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=30, deadline=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]))


def test_payout_lifecycle_state_machine_on_sqlite() -> None:
    _run(_new_sqlite, 30)


@pytest.mark.postgres
def test_payout_lifecycle_state_machine_on_postgresql(pg_url: str) -> None:  # pg_url: skip or fail like conftest
    _run(_new_pg, 12)
