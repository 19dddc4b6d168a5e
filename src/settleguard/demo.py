"""The demo, settleguard's main job end to end on generated data.

Builds a fresh database from a fixed seed: merchants with Chinese names and businesses,
bound debit cards of the major banks, terminals; then for each day writes that day's
transaction file, imports it through the real importer, settles the business day and
sends the payouts that are due, exactly as an operator's daily run would. After the week, the
merchants whose payouts were held for a card problem bind a new card, and the worker pays the
held money to the new card.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.engine import make_url

from settleguard.cards.service import BindRefused, BindRequest, bind_card
from settleguard.cards.vault import Vault
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.base import BankChannel
from settleguard.db import tables
from settleguard.db.engine import create, normalise_url, open_engine
from settleguard.db.partitions import is_partition
from settleguard.demo_hooks import Hooks
from settleguard.demo_risk import RiskDemo, scan_days
from settleguard.fees.audit import run as fee_audit
from settleguard.fees.model import MerchantAudit
from settleguard.imports.card_token import token_key
from settleguard.imports.transactions import import_transactions
from settleguard.ledger import repository as ledger_repo
from settleguard.masking import bounded
from settleguard.merchants.model import MerchantKind, NewMerchant
from settleguard.merchants.onboarding import import_merchants
from settleguard.payouts import repository as payouts_repo
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.policy import CARD_HOLDS
from settleguard.payouts.service import SendSummary, send_due
from settleguard.settlement.calendar import next_business_day
from settleguard.settlement.engine import RunResult, settle
from settleguard.settlement.model import CutOffs, Cycle
from settleguard.sim import risk_plants
from settleguard.sim.generator import (
    SimMerchant,
    generate_merchants,
    replacement_card,
    write_merchants_csv,
    write_transactions_csv,
)
from settleguard.worker import cycle


@dataclass
class DemoSummary:
    merchants: int = 0
    transactions: int = 0
    days: list[date] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)
    send: SendSummary = field(default_factory=SendSummary)
    payouts_by_status: dict[str, tuple[int, int]] = field(default_factory=dict)
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    merchants_paid: int = 0
    account_totals: dict[str, int] = field(default_factory=dict)
    ledger_problems: int = 0
    carried_negative: tuple[int, int] = (0, 0)  # merchants with a negative payable balance, its total (fen)
    files: list[Path] = field(default_factory=list)
    rebound: int = 0
    rebind_refused: Counter[str] = field(default_factory=Counter)
    released: int = 0
    released_fen: int = 0
    repaid_fen: int = 0
    fee_drift: tuple[date, str, int, int] | None = None  # a credit rate raised with no contract: day, merchant, old, new
    fee_audit: list[MerchantAudit] = field(default_factory=list)
    recon: ReconDemo | None = None  # issue 20 item 7
    risk: RiskDemo | None = None  # issue 22 item 7: the planted 套现 / silent-then-busy merchants, what the scan found
    terminals: TerminalDemo | None = None  # issue 21 item 6


def to_new_merchant(m: SimMerchant) -> NewMerchant:
    return NewMerchant(
        merchant_no=m.merchant_no, kind=MerchantKind(m.kind), registered_name=m.registered_name,
        legal_person=m.legal_person, business=m.business, mcc=m.mcc, city=m.city, cycle=Cycle(m.cycle),
        fee_schedule=m.fee_schedule, holder_name=m.holder_name, account_kind=m.account_kind, pan=m.pan,
        bank_code=m.bank_code, bank_name=m.bank_name, card_type=m.card_type, terminal_nos=tuple(m.terminal_nos),
    )


DEMO_MARK = "demo"
_HOLDINGS = (("merchants", "商户 merchants"), ("transactions", "交易 transactions"),
             ("settlement_accounts", "结算卡 cards"), ("payouts", "出款 payouts"))


class DemoRefused(Exception):
    """The demo's database is not one it may write to; nothing was changed."""

    def __init__(self, zh: str, en: str, detail: str = "") -> None:
        super().__init__(f"{zh}\n{en}" + (f"\n{detail}" if detail else ""))
        self.zh, self.en, self.detail = zh, en, detail


@dataclass(frozen=True)
class Target:
    """What the demo found at its database URL.

    Attributes:
        url: the URL with its password masked.
        state: "new" (no file, in memory), "empty" (no tables, or settleguard's with no merchant,
            transaction or card), "demo" (marked as made by the demo) or "other" (anything else).
        holds: row counts of merchants, transactions, cards and payouts (settleguard tables only).
        foreign_tables: tables that are not settleguard's.
    """

    url: str
    state: str
    holds: dict[str, int] = field(default_factory=dict)
    foreign_tables: tuple[str, ...] = ()

    def holdings(self) -> str:
        shown = [f"{label} {self.holds.get(name, 0):,}" for name, label in _HOLDINGS]
        if self.foreign_tables:
            names = ", ".join(self.foreign_tables[:5]) + (" …" if len(self.foreign_tables) > 5 else "")
            shown.append(f"其他表 other tables {len(self.foreign_tables)} ({names})")
        return "，".join(shown)


def masked_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def inspect_target(url: str) -> Target:
    """Look at the database at ``url`` without changing it (no migration, no file created)."""
    shown = masked_url(url)
    u = make_url(normalise_url(url))
    sqlite = u.drivername.startswith("sqlite")
    if sqlite and (not u.database or u.database == ":memory:"):
        return Target(shown, "new")
    if sqlite and (not Path(u.database).exists() or Path(u.database).stat().st_size == 0):  # type: ignore[arg-type]
        return Target(shown, "new")
    engine = create(url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            ours = names & set(tables.metadata.tables)
            foreign = tuple(sorted(n for n in names - ours - {"alembic_version"} if not is_partition(n)))
            holds = {name: int(conn.execute(select(func.count()).select_from(tables.metadata.tables[name]))
                               .scalar_one()) for name, _ in _HOLDINGS if name in ours}
            marked = "database_marks" in ours and conn.execute(
                select(tables.database_marks.c.name).where(tables.database_marks.c.name == DEMO_MARK)).first()
    except Exception as exc:  # not a database, unreachable, no permission: never touched
        raise DemoRefused(f"无法读取数据库 {shown}，演示未做任何更改", f"cannot read the database {shown}; "
                          "the demo changed nothing", bounded(f"{type(exc).__name__}: {exc}", 300)) from None
    finally:
        engine.dispose()
    if marked and not foreign:
        return Target(shown, "demo", holds)
    if not foreign and not any(holds.get(name, 0) for name in ("merchants", "transactions", "settlement_accounts")):
        return Target(shown, "empty", holds)
    return Target(shown, "other", holds, foreign)


def check_target(url: str, *, replace_demo: bool = False) -> Target:
    """The target, if the demo may write to it; :class:`DemoRefused` (naming the URL and what the database
    holds) otherwise. An SQLite demo database is replaced without asking (``make demo`` twice); one on a
    server only with ``replace_demo``."""
    target = inspect_target(url)
    if target.state == "other":
        raise DemoRefused(
            f"数据库 {target.url} 不是演示数据库，也不是空库：演示只写入它自己建的或空的数据库，未做任何更改",
            f"the database {target.url} is neither a demo database nor empty: the demo writes only to a database "
            "it created or an empty one; nothing was changed",
            f"其中有 it holds: {target.holdings()}\n"
            "请用 --db（或 SETTLEGUARD_DB）指向新的数据库，例如 point --db (or SETTLEGUARD_DB) at a new database, "
            "e.g. --db sqlite:///demo.db")
    if target.state == "demo" and not replace_demo and not make_url(normalise_url(url)).drivername.startswith("sqlite"):
        raise DemoRefused(
            f"数据库 {target.url} 是以前的演示数据库；替换服务器上的数据库需要 --replace-demo，未做任何更改",
            f"the database {target.url} is an earlier demo database; replacing a server database needs "
            "--replace-demo; nothing was changed",
            f"其中有 it holds: {target.holdings()}")
    return target


def fresh_database(url: str, *, replace_demo: bool = False, now: datetime | None = None) -> Engine:
    """A migrated database for the demo, marked as a demo database (``database_marks`` row ``demo``).

    Only a new or empty database, or an earlier demo database (on a server only with ``replace_demo``)
    is used; the demo database is replaced (SQLite file and WAL deleted, or settleguard's tables dropped).
    Any other database raises :class:`DemoRefused` before anything is changed.
    """
    target = check_target(url, replace_demo=replace_demo)
    u = make_url(normalise_url(url))
    if target.state == "demo":
        if u.drivername.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm", ".simbank.jsonl"):
                Path(str(u.database) + suffix).unlink(missing_ok=True)
        else:
            engine = create(url)
            with engine.begin() as conn:
                tables.metadata.drop_all(conn)
                conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS sg_event_write_lock()")  # migration 0006's
            engine.dispose()
    engine = open_engine(url)
    with engine.begin() as conn:
        if conn.execute(select(tables.database_marks.c.name)
                        .where(tables.database_marks.c.name == DEMO_MARK)).first() is None:
            conn.execute(insert(tables.database_marks).values(
                name=DEMO_MARK, value=f"settleguard demo ({target.state} database)",
                created_at=now or datetime.now(UTC)))
    return engine


def run_demo(
    url: str,
    *,
    merchants: int,
    days: int,
    seed: int,
    start: date,
    data_dir: Path,
    vault: Vault | Callable[[], Vault],
    channel_factory: Callable[[], BankChannel],
    cutoffs: CutOffs,
    hooks: Hooks,
    replace_demo: bool = False,
) -> DemoSummary:
    """The demo on ``url`` (see :func:`fresh_database` for which databases it may use; DemoRefused).
    ``vault`` may be a factory, called once the demo's database exists."""
    tz = ZoneInfo(cutoffs.timezone)
    summary = DemoSummary()
    engine = fresh_database(url, replace_demo=replace_demo)
    if callable(vault):
        vault = vault()
    from settleguard.cards.custody import check as check_key

    check_key(engine, vault)  # the new database records the key its cards are sealed with (cards.custody)
    channel = channel_factory()
    first_now = datetime.combine(start, time(8, 0), tz)

    hooks.stage("商户与结算卡 merchants and cards", merchants)
    sims = generate_merchants(merchants, seed)
    # The path a user takes (issue 19): write the merchant file (商户入网表), import it with every check.
    data_dir.mkdir(parents=True, exist_ok=True)
    merchants_file = data_dir / "merchants.csv"
    write_merchants_csv(sims, merchants_file, start, seed)
    registered = 0

    def progress(stage: str, done: int, _total: int) -> None:
        nonlocal registered
        if stage == "register":
            hooks.advance(done - registered)
            registered = done

    try:
        import_merchants(engine, merchants_file, vault=vault, now=first_now, actor="demo", timezone=cutoffs.timezone,
                         progress=progress)
    finally:
        merchants_file.unlink(missing_ok=True)  # it holds full card numbers: not left on disk once imported
    hooks.done()
    summary.merchants = merchants

    # issue 22: card-cashing and silent-then-busy merchants for the risk scan; the files carry card numbers
    risk_plan = risk_plants.plan(sims, [start + timedelta(days=i) for i in range(days)], seed)
    card_key = functools.partial(token_key, vault)
    history = risk_plants.history_table(risk_plan, sims, seed, cutoffs.timezone)
    if history is not None and history.num_rows:  # the silent merchant's trade before the demo (risk baseline)
        path = data_dir / "transactions-history.csv"
        write_transactions_csv(history, path)
        summary.files.append(path)
        import_transactions(engine, path, cutoffs=cutoffs, now=first_now, card_key=card_key)

    hooks.stage("每日交易、结算、出款 daily import, settle, pay", days)
    ref_start = 0
    for i in range(days):
        day = start + timedelta(days=i)
        table = risk_plants.day_table(risk_plan, sims, day, seed, cutoffs.timezone, ref_start)
        ref_start += table.num_rows
        path = data_dir / f"transactions-{day:%Y%m%d}.csv"
        write_transactions_csv(table, path, encoding="gbk" if i % 3 == 2 else "utf-8")
        summary.files.append(path)
        now = datetime.combine(day, time(23, 30), tz)
        if i == days // 2 and days > 1:  # issue 22: a schedule's credit rate raised with no contract change
            summary.fee_drift = _raise_rate_in_place(engine, day, sims[0].merchant_no)
        res = import_transactions(engine, path, cutoffs=cutoffs, now=now, card_key=card_key)
        summary.transactions += res.rows
        summary.runs.append(settle(engine, day, now))
        summary.days.append(day)
        _merge(summary.send, send_due(engine, channel, vault, as_of=day, now=now))
        hooks.advance()
    hooks.done()

    # Payout day after the week: T+1 money of the last days goes out; retries and inquiries run.
    pay_day = next_business_day(start + timedelta(days=days - 1))
    hooks.stage("风险扫描 risk scan", 1)  # each day, as `risk scan --date` does (the worker finds them scanned)
    summary.risk = scan_days(engine, summary.days, risk_plan, tz=cutoffs.timezone,
                             now=datetime.combine(pay_day, time(7, 0), tz), history=_span(history))
    hooks.advance()
    hooks.done()
    for hour in (9, 11):
        now = datetime.combine(pay_day, time(hour, 0), tz)
        _merge(summary.send, send_due(engine, channel, vault, as_of=pay_day, now=now))

    _recover(engine, channel, vault, sims, seed, datetime.combine(pay_day, time(14, 0), tz), summary, hooks)

    with engine.connect() as conn:
        summary.payouts_by_status = payouts_repo.counts_by_status(conn)
        summary.failures = payouts_repo.failures_by_reason(conn)
        summary.account_totals = ledger_repo.totals(conn)
        summary.ledger_problems = len(ledger_repo.check(conn))
        summary.carried_negative = ledger_repo.carried_negative(conn)
        summary.merchants_paid = payouts_repo.merchants_paid(conn)
    summary.fee_audit = fee_audit(engine, start, summary.days[-1])  # finds the rate raised above
    hooks.stage("银行对账与清算对账 bank and clearing reconciliation", 1)
    summary.recon = reconcile(engine, channel, summary.days, seed, data_dir, cutoffs.timezone)
    hooks.advance()
    hooks.done()
    hooks.stage("终端体检 terminal health", 1)
    summary.terminals = terminal_health(engine, sims, seed, datetime.combine(pay_day, time(15, 0), tz),
                                        data_dir, cutoffs.timezone)
    hooks.advance()
    hooks.done()
    engine.dispose()
    return summary


def _span(table: Any) -> tuple[date, date] | None:
    """The first and last local day of a transaction table's times (None when empty)."""
    if table is None or not table.num_rows:
        return None
    days = sorted({str(t)[:10] for t in table["occurred_at"].to_pylist()})
    return date.fromisoformat(days[0]), date.fromisoformat(days[-1])


def _raise_rate_in_place(engine: Engine, day: date, merchant_no: str) -> tuple[date, str, int, int] | None:
    """Raise one merchant's credit rate by 0.1 % in the back office, as is done to a "free POS" merchant later
    (后期上调费率): its fee schedule is switched, no contract changes, the next imports charge more."""
    from settleguard.merchants import repository as merchants_repo

    with engine.begin() as conn:
        moved = merchants_repo.switch_schedule(conn, merchant_no, 1000)
    return None if moved is None else (day, merchant_no, *moved)


def _recover(engine: Engine, channel: BankChannel, vault: Vault, sims: Sequence[SimMerchant], seed: int,
             now: datetime, summary: DemoSummary, hooks: Hooks) -> None:
    """Merchants whose payouts are held for a card problem bind a new card (checks and four-element
    verification at the simulated bank); the next worker cycle releases the held payouts and pays
    them to the new card with a new instruction."""
    with engine.connect() as conn:
        held = [r for r in payouts_repo.listing(conn, status=str(PayoutStatus.HELD), limit=10**9)
                if r["category"] in CARD_HOLDS]
    by_no = {m.merchant_no: m for m in sims}
    merchants = sorted({str(r["merchant_no"]) for r in held})
    verifier = SimulatedVerifier(seed)
    hooks.stage("换卡并重新出款 re-bind cards, release and re-pay", len(merchants))
    for no in merchants:
        m = by_no[no]
        if m.kind == "corporate":  # a company's new account is verified off-line (打款验证) by operations
            summary.rebind_refused["对公账户需运营线下核实 corporate account awaits operations"] += 1
            hooks.advance()
            continue
        req = BindRequest(merchant_no=no, pan=replacement_card(m, seed), name=m.holder_name, id_number=m.id_number,
                          phone=m.phone, actor="demo-merchant")
        try:
            bind_card(engine, verifier, vault, req, now=now)
            summary.rebound += 1
        except BindRefused as exc:
            summary.rebind_refused[f"{exc.zh} {exc.en}"] += 1
        hooks.advance()
    hooks.done()
    c = cycle(engine, channel, vault, verifier, as_of=now.date(), now=now)
    summary.released, summary.released_fen = c.released.released, c.released.released_fen
    summary.repaid_fen = c.send.succeeded_fen
    _merge(summary.send, c.send)


def _merge(total: SendSummary, part: SendSummary) -> None:
    for name in ("sent", "inquired", "succeeded", "succeeded_fen", "held", "held_fen", "retry_scheduled", "unknown",
                 "needs_review", "split"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.reasons.update(part.reasons)
    total.categories.update(part.categories)


def default_data_dir(url: str) -> Path:
    u = make_url(normalise_url(url))
    base = Path(u.database).parent if u.drivername.startswith("sqlite") and u.database else Path(os.getcwd())
    return base / "demo-data"



# ---------------------------------------------------------------- reconciliation and terminals (issues 20, 21)

@dataclass
class ReconDemo:
    """What the demo's bank and clearing reconciliation planted and found (issue 20 item 7)."""

    statements: int = 0
    statement_lines: int = 0
    planted: dict[str, int] = field(default_factory=dict)  # break type -> count planted
    found: dict[str, int] = field(default_factory=dict)  # break type -> open breaks after the last run
    late: tuple[date, date] | None = None  # the late booking: in transit on the first day, matched on the second
    late_in_transit: bool = False
    late_matched: bool = False
    unpaid_by_bank: int = 0  # payouts recorded paid that the bank's journal does not show (not planted)
    proof: tuple[int, int, int] | None = None  # last run's (drift, explained, unexplained) fen
    clearing_days: int = 0
    clearing_planted: dict[str, int] = field(default_factory=dict)
    clearing_found: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


@dataclass
class TerminalDemo:
    """The terminals' telemetry and message logs with planted faults, and what the checks found (issue 21 item 6)."""

    terminals: int = 0
    health: Counter[str] = field(default_factory=Counter)  # ok / warning / fault / unknown -> terminals
    planted: dict[str, str] = field(default_factory=dict)  # terminal check code -> terminal number
    found: Counter[str] = field(default_factory=Counter)  # terminal check code -> terminals with it open
    logs: int = 0
    log_planted: dict[str, str] = field(default_factory=dict)  # log finding kind planted -> terminal number
    log_found: Counter[str] = field(default_factory=Counter)  # log finding kind -> count
    log_words: dict[str, tuple[str, str]] = field(default_factory=dict)  # log finding kind -> (zh, en)


def _paid_by_bank(engine: Engine, channel: BankChannel) -> tuple[list[Any], int]:
    """The payouts the ledger records as paid, each under the instruction key the simulated bank's journal says
    it executed (any key of the payout when the channel keeps no journal); and how many the journal lacks."""
    from settleguard.channels.simulator import SimulatedBank
    from settleguard.sim.bank_statement import Paid

    p, a = tables.payouts, tables.payout_attempts
    with engine.connect() as conn:
        rows = conn.execute(select(p.c.id, p.c.amount_fen, p.c.value_date, p.c.idempotency_key)
                            .where(p.c.status.in_(("succeeded", "returned"))).order_by(p.c.id)).all()
        keys: dict[int, list[str]] = {}
        for pid, key in conn.execute(select(a.c.payout_id, a.c.idempotency_key).where(
                a.c.kind == "send", a.c.payout_id.in_(select(p.c.id).where(
                    p.c.status.in_(("succeeded", "returned"))))).order_by(a.c.id)):
            keys.setdefault(int(pid), []).append(str(key))
    executed = channel.executed_keys() if isinstance(channel, SimulatedBank) else None
    out, missing = [], 0
    for pid, amount, value_date, own in rows:
        mine = keys.get(int(pid), [str(own)])
        key = next((k for k in mine if executed is None or k in executed), None)
        if key is None:
            missing += 1
            continue
        out.append(Paid(int(pid), key, int(amount), value_date))
    return out, missing


def reconcile(engine: Engine, channel: BankChannel, days: Sequence[date], seed: int, data_dir: Path,
              tz: str) -> ReconDemo:
    """The simulated bank's camt.053 of each business day (with a missing debit, a duplicate debit, a debit one
    fen off, a late booking and a reversal) imported and reconciled day by day (``recon run``'s matching and
    balance proof); then the last day's UnionPay INN/RD clearing files (one 长款, one 短款) imported and compared
    (``recon clearing``). Follow-up actions are left to the operator (the breaks stay open to be seen)."""
    from settleguard.reconciliation import clearing, clearing_repository
    from settleguard.reconciliation import repository as recon_repo
    from settleguard.reconciliation.breaks import run as recon_run
    from settleguard.reconciliation.followup import dry_proof
    from settleguard.reconciliation.service import import_statement_file
    from settleguard.sim.bank_statement import statement_days, write_statements
    from settleguard.sim.clearing_file import clearing_day

    zone = ZoneInfo(tz)
    out = ReconDemo()
    paid, out.unpaid_by_bank = _paid_by_bank(engine, channel)
    statements, planted = statement_days(paid, seed=seed, next_day=next_business_day)
    out.planted = planted.expected_breaks()
    if planted.late is not None:
        first = planted.late.value_date
        out.late = (first, next_business_day(first))
    paths = write_statements(data_dir / "bank", statements, tz=tz)
    out.files += paths
    for st, path in zip(statements, paths, strict=True):
        now = datetime.combine(st.day + timedelta(days=1), time(7, 0), zone)
        res = import_statement_file(engine, path, now=now, tz=tz)
        out.statements += 1
        out.statement_lines += res.new_lines
        run = recon_run(engine, st.day, now=now)
        if run.proof is not None and planted.late is not None and out.late is not None and st.day == out.late[0]:
            out.late_in_transit = any(i.payout_id == planted.late.payout_id and i.type == "in_transit"
                                      for i in run.proof.items)
    with engine.connect() as conn:
        proof = dry_proof(conn)  # what `settleguard ledger check` proves about the bank balance
        if proof is not None:
            out.proof = (proof.drift_fen, proof.explained_fen, proof.unexplained_fen)
        for b in recon_repo.breaks(conn, status="open"):
            out.found[str(b["type"])] = out.found.get(str(b["type"]), 0) + 1
        if planted.late is not None:
            out.late_matched = bool(recon_repo.matches_of_payout(conn, planted.late.payout_id))

    # one clearing file pair, for the last day with card transactions: the network's file of a day is as long as
    # the day's transactions, and one day shows the 长款 and the 短款 (every day's would add a minute at 2,000
    # merchants × 7 days)
    for day in reversed(days):
        start, end = clearing.day_window(day, tz, 23)
        with engine.connect() as conn:
            ours = clearing_repository.card_transactions(conn, start, end)
        if not ours:
            continue
        now = datetime.combine(day + timedelta(days=1), time(8, 0), zone)
        (data_dir / "clearing").mkdir(parents=True, exist_ok=True)
        inn, rd, injected = clearing_day(data_dir / "clearing", day, ours, long=1, short=1, tz=tz)
        out.files += [inn, rd]
        for path in (inn, rd):
            clearing.import_clearing_file(engine, path, now=now, tz=tz)
        cres = clearing.run_clearing(engine, day, now=now, tz=tz)
        out.clearing_days += 1
        for kind, n in (("clearing_long", len(injected.long)), ("clearing_short", len(injected.short))):
            out.clearing_planted[kind] = out.clearing_planted.get(kind, 0) + n
        for kind, n in cres.breaks_by_type.items():
            if n:
                out.clearing_found[kind] = out.clearing_found.get(kind, 0) + n
        break
    return out


# The terminal policy the demo imports (终端策略): the acquirer's host, a minimum firmware for the demo's model.
DEMO_POLICY = """[defaults]
host = "pos.acquirer.example"
port = 8583

[[model]]
model = "PAX A920"
min_firmware = "2.3.12"
"""
_GOOD_FIRMWARE, _OLD_FIRMWARE = "2.4.1", "2.3.5"
# planted telemetry fault -> the check that must name it (terminals/checks.py)
TERMINAL_FAULTS: dict[str, str] = {"weak_4g_signal": "weak_signal", "old_firmware": "firmware_outdated",
                                   "wrong_dns": "no_dns", "silent": "silent_no_heartbeat"}
# planted message-log fault (sim/terminal_logs.py FAULTS) -> the log finding that must name it
LOG_FAULTS: tuple[str, ...] = ("mac_error_after_key_change", "timeout_with_reversal",
                               "unbalanced_batch_terminal_counts_more")


def terminal_health(engine: Engine, sims: Sequence[SimMerchant], seed: int, now: datetime, data_dir: Path,
                    tz: str) -> TerminalDemo:
    """A TMS export of every demo terminal (the path `terminals import` takes) with four planted faults — a weak
    4G signal, a firmware below the policy's minimum, no DNS server, a terminal silent for five days — checked
    against a small policy; and the message logs of four terminals (one clean, a MAC error after a key change,
    a timed-out sale with its reversal, an unbalanced batch) analysed as `terminals analyze-log` does."""
    import csv
    import random

    from settleguard.sim.terminal_logs import FAULTS, LogWriter, clean_log
    from settleguard.terminals.analysis import KINDS, analyze
    from settleguard.terminals.log_reader import read_log
    from settleguard.terminals.service import import_export, import_policy, list_terminals

    zone = ZoneInfo(tz)
    out = TerminalDemo()
    numbers = [tn for m in sims for tn in m.terminal_nos]
    out.terminals = len(numbers)
    if not numbers:
        return out
    picks = random.Random(f"terminals|{seed}").sample(numbers, min(len(numbers), len(TERMINAL_FAULTS)
                                                                   + len(LOG_FAULTS) + 1))
    faulty = dict(zip(TERMINAL_FAULTS, picks, strict=False))
    out.planted = {TERMINAL_FAULTS[f]: tn for f, tn in faulty.items()}
    by_no = {tn: f for f, tn in faulty.items()}
    data_dir.mkdir(parents=True, exist_ok=True)
    policy = data_dir / "terminal-policy.toml"
    policy.write_text(DEMO_POLICY, encoding="utf-8")
    import_policy(engine, policy, actor="demo", now=now)
    export = data_dir / "tms-export.csv"
    with export.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["serialNo", "tid", "modelName", "installedFirmware", "commType", "host", "port", "ip", "mask",
                    "gateway", "dns", "signal", "lastActiveTime"])
        for i, tn in enumerate(numbers):
            fault = by_no.get(tn)
            beat = now - (timedelta(days=5) if fault == "silent" else timedelta(minutes=3 + i % 50))
            w.writerow([f"SN{tn}", tn, "PAX A920", _OLD_FIRMWARE if fault == "old_firmware" else _GOOD_FIRMWARE,
                        "4G", "pos.acquirer.example", 8583, f"10.{i // 250 % 250}.{i % 250}.10", "255.255.255.0",
                        f"10.{i // 250 % 250}.{i % 250}.1", "0.0.0.0" if fault == "wrong_dns" else "223.5.5.5;114.114.114.114",
                        -112 if fault == "weak_4g_signal" else -85 - i % 10,
                        beat.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")])
    import_export(engine, export, zone=zone, now=now, actor="demo")
    _total, rows = list_terminals(engine, unhealthy=False, now=now, limit=10**9)
    out.health.update(str(r["health"]) for r in rows)
    out.found.update(str(code) for r in rows for code in r["codes"])

    log_dir = data_dir / "terminal-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rest = picks[len(TERMINAL_FAULTS):]
    for i, tn in enumerate(rest):
        if i == 0:
            lines = clean_log(tn)
        else:
            fault = LOG_FAULTS[i - 1]
            kind = FAULTS[fault][1]
            out.log_planted[kind] = tn
            out.log_words[kind] = (KINDS[kind].title_zh, KINDS[kind].title_en)
            writer = LogWriter(terminal=tn)
            FAULTS[fault][0](writer)
            lines = writer.lines
        path = log_dir / f"{tn}.log"
        path.write_text("\n".join(["# 终端报文日志 terminal message log (settleguard demo)", *lines]) + "\n",
                        encoding="utf-8")
        for finding in analyze(read_log(path).messages):
            out.log_found[finding.kind] += 1
            out.log_words[finding.kind] = (finding.title_zh, finding.title_en)
        out.logs += 1
    return out
