"""The demo, settleguard's main job end to end on generated data.

Builds a fresh database from a fixed seed: merchants with Chinese names and businesses,
bound debit cards of the major banks, terminals; then for each day writes that day's
transaction file, imports it through the real importer, settles the business day and
sends the payouts that are due, exactly as an operator's daily run would. After the week, the
merchants whose payouts were held for a card problem bind a new card, and the worker pays the
held money to the new card.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.engine import make_url

from settleguard.cards.service import BindRefused, BindRequest, bind_card
from settleguard.cards.vault import Vault
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.base import BankChannel
from settleguard.db import tables
from settleguard.db.engine import create, normalise_url, open_engine
from settleguard.demo_hooks import Hooks
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
from settleguard.sim.generator import (
    SimMerchant,
    generate_merchants,
    generate_transactions,
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
            foreign = tuple(sorted(names - ours - {"alembic_version"}))
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

    hooks.stage("每日交易、结算、出款 daily import, settle, pay", days)
    ref_start = 0
    for i in range(days):
        day = start + timedelta(days=i)
        table = generate_transactions(sims, day, seed, tz=cutoffs.timezone, ref_start=ref_start)
        ref_start += table.num_rows
        path = data_dir / f"transactions-{day:%Y%m%d}.csv"
        write_transactions_csv(table, path, encoding="gbk" if i % 3 == 2 else "utf-8")
        summary.files.append(path)
        now = datetime.combine(day, time(23, 30), tz)
        res = import_transactions(engine, path, cutoffs=cutoffs, now=now)
        summary.transactions += res.rows
        summary.runs.append(settle(engine, day, now))
        summary.days.append(day)
        _merge(summary.send, send_due(engine, channel, vault, as_of=day, now=now))
        hooks.advance()
    hooks.done()

    # Payout day after the week: T+1 money of the last days goes out; retries and inquiries run.
    pay_day = next_business_day(start + timedelta(days=days - 1))
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
    engine.dispose()
    return summary


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

