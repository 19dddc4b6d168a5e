"""Helpers for payout lifecycle tests: the scripted bank of test_payout_send.py (re-exported), a bank that
publishes a single-payment limit, card re-binding, and a money-location check generalised to split
families (a split parent and its parts).

Import from integration tests only (tests/integration is then on sys.path, so test_payout_send imports).
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from test_payout_send import (  # noqa: F401  (re-exported for the lifecycle and file tests)
    CUT_OVER,
    DAY,
    NAME_MISMATCH,
    OK,
    SEND_AT,
    TIMEOUT,
    VALUE_DAY,
    Due,
    ScriptedBank,
    Step,
    attempts,
    entries,
    events,
    make_payouts,
    payout,
    status,
)

from settleguard.cards.bins import luhn_complete
from settleguard.cards.service import BindRequest, BindResult, bind_card
from settleguard.cards.vault import Vault
from settleguard.cards.verifier import CardStatus
from settleguard.cards.verifier_sim import Holder, SimulatedVerifier
from settleguard.db import tables as t
from settleguard.ledger import repository as ledger_repo
from settleguard.ledger.model import Account
from settleguard.payouts.model import IN_TRANSIT, TRANSITIONS, PayoutStatus, part_key

S = PayoutStatus
ID_NUMBER = "11010519491231002X"  # the factories' merchants' legal person 张三 (valid GB 11643 check digit)
PHONE = "13812345678"
_pan_serial = itertools.count(500_001)


class LimitedBank(ScriptedBank):
    """A scripted bank that publishes its single-payment limit per account kind (对私/对公)."""

    def __init__(self, limits: dict[str, int | None], **kw: Any) -> None:
        super().__init__(**kw)
        self.limits = limits

    def payment_limit_fen(self, account_kind: str) -> int | None:
        return self.limits.get(account_kind)

    def calls_keys(self) -> list[str]:
        """Every key sent or inquired about so far."""
        return [k for _, k in self.calls]


def new_pan() -> str:
    """A Luhn-valid ICBC debit card number (BIN 621226) not used by the factories."""
    return luhn_complete(f"621226{next(_pan_serial):012d}")


def rebind(engine: Engine, vault: Vault, merchant_no: str, pan: str, now: datetime) -> BindResult:
    """The merchant binds ``pan`` through cards.service.bind_card (four elements match, card normal)."""
    verifier = SimulatedVerifier(1, holders={pan: Holder("张三", ID_NUMBER, PHONE)}, overrides={pan: CardStatus.NORMAL})
    return bind_card(engine, verifier, vault, BindRequest(merchant_no, pan, "张三", ID_NUMBER, PHONE, actor="merchant"),
                     now=now)


def set_bank(engine: Engine, merchant_ids: list[int], bank_code: str) -> None:
    """Point these merchants' active cards at another receiving bank (circuit breakers are per bank)."""
    a = t.settlement_accounts
    with engine.begin() as conn:
        conn.execute(update(a).where(a.c.merchant_id.in_(merchant_ids)).values(bank_code=bank_code))


def alerts(engine: Engine, kind: str | None = None) -> list[dict[str, Any]]:
    o = t.ops_alerts
    q = select(o).order_by(o.c.id)
    if kind is not None:
        q = q.where(o.c.kind == kind)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def parts(engine: Engine, parent_id: int) -> list[dict[str, Any]]:
    p = t.payouts
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(p).where(p.c.parent_id == parent_id).order_by(p.c.id))]


def balances(engine: Engine, merchant_id: int) -> dict[Account, int]:
    with engine.connect() as conn:
        got = ledger_repo.balances(conn, merchant_id)
    return {a: int(got.get(a, 0)) for a in Account}


def _location(st: PayoutStatus, is_part: bool) -> Account | None:
    """Where a payout's money sits in the ledger for its status (None: still payable / carried by parts)."""
    if st is S.SUCCEEDED:
        return Account.BANK_PROVISIONS
    if st in (S.HELD, S.CANCELLED, S.RETURNED):
        return Account.MERCHANT_HELD
    if st in IN_TRANSIT or (st is S.CREATED and is_part):
        return Account.PAYOUT_IN_TRANSIT  # a part is funded from its parent's money in transit
    return None  # created (not yet submitted) or split (its parts carry the money)


def assert_families(engine: Engine) -> None:
    """The ledger balances (ledger check), and for every payout family (a payout and, if split, its parts):
    the parts sum exactly to the parent, carry the parent's key + S<n>, and the family's ledger postings put
    each member's money exactly where its status says; every event trail follows the transition table."""
    p, le, lp = t.payouts, t.ledger_entries, t.ledger_postings
    with engine.connect() as conn:
        assert ledger_repo.check(conn) == []
        rows = [dict(r._mapping) for r in conn.execute(select(p).order_by(p.c.id))]
        posted: dict[int, Counter[str]] = {}
        for pid, account, amount in conn.execute(
            select(le.c.payout_id, lp.c.account, lp.c.amount_fen).join(lp, lp.c.entry_id == le.c.id)
            .where(le.c.payout_id.is_not(None))
        ):
            posted.setdefault(pid, Counter())[account] -= amount  # credit balances
        trails: dict[int, list[tuple[str | None, str]]] = {}
        for pid, frm, to in conn.execute(select(t.payout_events.c.payout_id, t.payout_events.c.from_status,
                                                t.payout_events.c.to_status).order_by(t.payout_events.c.id)):
            trails.setdefault(pid, []).append((frm, to))
    by_id = {r["id"]: r for r in rows}
    children: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if r["parent_id"] is not None:
            children.setdefault(r["parent_id"], []).append(r)
    for root in (r for r in rows if r["parent_id"] is None):
        family = [root]
        todo = [root]
        while todo:
            kids = children.get(todo.pop()["id"], [])
            family += kids
            todo += kids
        expected: Counter[str] = Counter()
        if S(root["status"]) is not S.CREATED:
            expected[Account.MERCHANT_PAYABLE] -= root["amount_fen"]
        for m in family:
            st = S(m["status"])
            kids = children.get(m["id"], [])
            if st is S.SPLIT:
                assert kids, (m["id"], "split without parts")
                assert sum(k["amount_fen"] for k in kids) == m["amount_fen"], (m["id"], "parts do not sum")
                parent_key = m["idempotency_key"] if m["instruction_no"] == 0 else (
                    f"{m['idempotency_key']}R{m['instruction_no']}")
                assert sorted(k["idempotency_key"] for k in kids) == sorted(
                    part_key(parent_key, i) for i in range(1, len(kids) + 1))
            else:
                assert not kids, (m["id"], st, "parts of a payout that was not split")
            where = _location(st, m["parent_id"] is not None)
            if where is not None:
                expected[where] += m["amount_fen"]
        got: Counter[str] = Counter()
        for m in family:
            got.update(posted.get(m["id"], Counter()))
        assert {a: v for a, v in got.items() if v} == {a: v for a, v in expected.items() if v}, (
            root["id"], [(m["id"], m["status"]) for m in family], dict(got))
    for pid, trail in trails.items():
        assert trail[0] == (None, "created")
        for (_, to), (frm, nxt) in itertools.pairwise(trail):
            assert frm == to
            assert S(nxt) in TRANSITIONS[S(to)]
        assert trail[-1][1] == by_id[pid]["status"]
