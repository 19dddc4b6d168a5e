"""Returns benchmark: import a pain.002 with 1,000,000 transaction statuses and apply them (SQLite).

Not a unit test. Run ``python bench/returns.py`` (``--rows 100000`` to scale down; ``--help``).

1. setup (not timed, a child process): a fresh, migrated SQLite database with N merchants, each
   with an active settlement card, one settlement of 2026-11-20 and its ledger credit, and one
   payout ``submitted`` in a pain.001 file: the submit ledger entry, the created -> submitted
   events and a ``send`` attempt under the payout's key (EndToEndId) with the file's
   ``MsgId|PmtInfId`` — what ``settlement.engine.settle`` and ``payouts.files.export_pain001``
   leave behind, written with set-based SQL into the same tables (``db.tables``);
2. writes (deterministically, seed fixed) a pain.002 answering every payout: ten payment
   informations; ~87 % ACSC (with OrgnlTxRef/Amt/InstdAmt), ~7 % RJCT with StsRsnInf (AC04,
   AC06, AM04, or NARR with a Chinese AddtlInf), ~3 % ACSP (accepted, not yet settled); the last
   payment information carries ``PmtInfSts`` ACSC and its transactions inherit it;
3. times ``payouts.files.import_report(engine, file)`` in a fresh child process on a copy of the
   set-up database (``--repeat`` runs, each on its own copy): statuses/s end to end, parse,
   check, diagnosis, plan, status changes, events, attempts, ledger entries and commit included;
4. the floor: lxml ``iterparse`` over the same file, end events of TxInfAndSts cleared and
   unlinked, nothing else (best of ``--floor-repeat`` runs); ratio = import time / floor time;
5. checks after each run: ``ledger.repository.check`` finds nothing; payout statuses, answers per
   reason code (each recorded on the send attempt it answers: no attempt rows added) and ledger
   entries match what the file says; a second import of the same file is recognised (SHA-256) and
   changes nothing.

Prints a table and writes ``<workdir>/returns-result.json``. Target (issue 5): >= 50,000
statuses/s on SQLite; the exit status is 1 when it is missed or a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchkit import log as _log
from benchkit import run_child

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
VALUE_DATE = date(2026, 11, 23)
SUBMITTED_AT = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MESSAGE_ID = f"SGB{SUBMITTED_AT:%Y%m%d%H%M%S%f}"
GROUPS = 10
TARGET = 50_000
NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
# (code, AddtlInf, the payout status the reason must lead to: the diagnosis and plan, stated
# independently here so that the bench checks them rather than repeats them)
REJECTIONS = [
    ("AC04", "账户已销户", "held"),  # card_status_abnormal
    ("AC06", "账户已冻结", "held"),  # card_status_abnormal
    ("AM04", "出款账户余额不足", "retry_scheduled"),  # insufficient_funds: treasury alert, retry
    ("NARR", "收款人户名与账号不符", "held"),  # card_info_error
    ("NARR", "交易被风控拦截", "held"),  # risk_or_compliance_block
    ("NARR", "银行系统繁忙，请稍后重试", "retry_scheduled"),  # system_or_network_fault
]


def _key(n: int) -> str:
    return f"SG{DAY:%Y%m%d}M{n}"


def _amount(n: int) -> int:
    return 100 + (n * 7919) % 9_999_900


def _group(n: int, rows: int) -> int:
    return (n - 1) * GROUPS // rows + 1


def _pmt_id(g: int) -> str:
    return f"{MESSAGE_ID[:29]}-{g:05d}"


# ----------------------------------------------------------------------------------------------
# child processes (as in bench/settle.py: each heavy phase in a fresh interpreter)


# ---- setup ---------------------------------------------------------------------------------------


def phase_setup(url: str, rows: int) -> dict[str, Any]:
    """N merchants with a card, settled and submitted in one pain.001: set-based SQL, one transaction."""
    from sqlalchemy import Integer, String, func, literal, select
    from sqlalchemy import insert as sa_insert

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.db.types import UTCDateTime
    from settleguard.ledger.model import Account, EntryKind
    from settleguard.merchants.repository import ensure_fee_schedules
    from settleguard.payouts.model import PayoutStatus

    t0 = time.perf_counter()
    engine = open_engine(url)
    t_migrate = time.perf_counter() - t0

    def lit(v: Any, type_: Any = None) -> Any:
        return literal(v, type_) if type_ is not None else literal(v)

    settled_at = datetime(2026, 11, 21, 3, tzinfo=UTC)
    submitted, created = lit(SUBMITTED_AT, UTCDateTime), lit(settled_at, UTCDateTime)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE bench_n (n INTEGER PRIMARY KEY, amount INTEGER, fee INTEGER, "
                             "grp INTEGER)")
        conn.exec_driver_sql(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
            "INSERT INTO bench_n SELECT n, 100 + (n * 7919) % 9999900, n % 500, (n - 1) * ? / ? + 1 FROM seq",
            (rows, GROUPS, rows))
        seq = _temp_table()
        n, amount, fee, grp = seq.c.n, seq.c.amount, seq.c.fee, seq.c.grp
        schedule = ensure_fee_schedules(conn)["small_micro"]
        conn.execute(sa_insert(t.merchants).from_select(
            ["id", "merchant_no", "kind", "registered_name", "legal_person", "business", "mcc", "city", "cycle",
             "fee_schedule_id", "status", "created_at"],
            select(n, lit("B") + func.printf("%014d", n), lit("personal"), lit("基准测试商户") + n.cast(String),
                   lit("张伟"), lit("便利店"), lit("5499"), lit("北京"), lit("T1"), lit(schedule, Integer),
                   lit("active"), created)))
        conn.execute(sa_insert(t.settlement_accounts).from_select(
            ["id", "merchant_id", "account_kind", "holder_name", "bank_code", "bank_name", "card_type", "pan_masked",
             "pan_cipher", "pan_nonce", "key_version", "status", "bound_at"],
            # never opened by the import: a random blob stands in for the sealed card number
            select(n, n, lit("personal"), lit("张伟"), lit("ICBC"), lit("中国工商银行"), lit("DC"),
                   lit("622202******") + func.printf("%04d", n % 10000), func.randomblob(32), func.randomblob(12),
                   lit(1, Integer), lit("active"), created)))
        run_id = 1
        conn.execute(sa_insert(t.settlement_runs).values(
            id=run_id, cycle_date=DAY, started_at=settled_at, finished_at=settled_at, merchants_settled=rows, txn_count=rows,
            net_fen=sum(_amount(i) for i in range(1, rows + 1)), payouts_created=rows))
        conn.execute(sa_insert(t.settlements).from_select(
            ["id", "run_id", "merchant_id", "cycle_date", "cycle", "value_date", "txn_count", "sale_fen", "void_fen",
             "refund_fen", "reversal_fen", "fee_fen", "net_fen", "created_at"],
            select(n, lit(run_id, Integer), n, lit(DAY), lit("T1"), lit(VALUE_DATE), lit(1, Integer), amount + fee,
                   lit(0, Integer), lit(0, Integer), lit(0, Integer), fee, amount, created)))
        # the run's entry (id 1): Dr clearing_receivable / Cr fee_income / Cr merchant_payable per merchant
        conn.execute(sa_insert(t.ledger_entries).values(id=1, kind=str(EntryKind.SETTLEMENT), run_id=run_id,
                                                        memo="bench settlement", created_at=settled_at))
        st = t.settlements
        conn.execute(sa_insert(t.ledger_postings).from_select(
            ["entry_id", "account", "merchant_id", "amount_fen"],
            select(lit(1, Integer), lit(str(Account.MERCHANT_PAYABLE)), st.c.merchant_id, -st.c.net_fen)))
        conn.execute(sa_insert(t.ledger_postings).from_select(
            ["entry_id", "account", "merchant_id", "amount_fen"],
            select(lit(1, Integer), lit(str(Account.CLEARING_RECEIVABLE)), lit(None, Integer),
                   func.sum(st.c.net_fen + st.c.fee_fen))))
        conn.execute(sa_insert(t.ledger_postings).from_select(
            ["entry_id", "account", "merchant_id", "amount_fen"],
            select(lit(1, Integer), lit(str(Account.FEE_INCOME)), lit(None, Integer), -func.sum(st.c.fee_fen))))
        # payouts, submitted in the pain.001 MESSAGE_ID (what export_pain001 records)
        conn.execute(sa_insert(t.payouts).from_select(
            ["id", "merchant_id", "settlement_id", "cycle_date", "value_date", "amount_fen", "currency", "status",
             "idempotency_key", "account_id", "attempt_count", "created_at", "updated_at", "instruction_no"],
            select(n, n, n, lit(DAY), lit(VALUE_DATE), amount, lit("CNY"), lit(str(PayoutStatus.SUBMITTED)),
                   lit(f"SG{DAY:%Y%m%d}M") + n.cast(String), n, lit(1, Integer), created, submitted,
                   lit(0, Integer))))
        ev = ["payout_id", "from_status", "to_status", "reason", "created_at"]
        conn.execute(sa_insert(t.payout_events).from_select(ev, select(
            n, lit(None, String), lit(str(PayoutStatus.CREATED)), lit("settlement run 1 (2026-11-20)"), created)))
        conn.execute(sa_insert(t.payout_events).from_select(ev, select(
            n, lit(str(PayoutStatus.CREATED)), lit(str(PayoutStatus.SUBMITTED)), lit(f"文件出款 in pain.001 {MESSAGE_ID}"),
            submitted)))
        conn.execute(sa_insert(t.ledger_entries).from_select(
            ["id", "kind", "merchant_id", "payout_id", "memo", "created_at"],
            select(n + 1, lit(str(EntryKind.SUBMIT)), n, n, lit("出款提交 payout submitted"), submitted)))
        for account, sign in ((Account.MERCHANT_PAYABLE, 1), (Account.PAYOUT_IN_TRANSIT, -1)):
            conn.execute(sa_insert(t.ledger_postings).from_select(
                ["entry_id", "account", "merchant_id", "amount_fen"],
                select(n + 1, lit(str(account)), n, amount * sign)))
        conn.execute(sa_insert(t.payout_attempts).from_select(
            ["id", "payout_id", "attempt_no", "kind", "idempotency_key", "channel", "account_id", "amount_fen",
             "requested_at", "batch_ref"],
            select(n, n, lit(1, Integer), lit("send"), lit(f"SG{DAY:%Y%m%d}M") + n.cast(String), lit("pain.001"), n,
                   amount, submitted, lit(f"{MESSAGE_ID}|{MESSAGE_ID[:29]}-") + func.printf("%05d", grp))))
        conn.exec_driver_sql("DROP TABLE bench_n")
    t_rows = time.perf_counter() - t1
    t2 = time.perf_counter()
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return {"migrate_s": round(t_migrate, 2), "rows_s": round(t_rows, 2), "analyze_s": round(time.perf_counter() - t2, 2)}


def _temp_table() -> Any:
    from sqlalchemy import Column, Integer, MetaData, Table

    return Table("bench_n", MetaData(), Column("n", Integer, primary_key=True), Column("amount", Integer),
                 Column("fee", Integer), Column("grp", Integer), prefixes=["TEMPORARY"])


# ---- the report file ---------------------------------------------------------------------------


def phase_generate(path: str, rows: int, seed: int) -> dict[str, Any]:
    """Write the pain.002 answering payouts 1..rows; returns what it says (counts per status, code)."""
    rng = random.Random(seed)
    expect: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    tx_status: Counter[str] = Counter()
    tmp = Path(path).with_suffix(".tmp")
    t0 = time.perf_counter()
    with tmp.open("w", encoding="utf-8") as f:
        w = f.write
        w(f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}">\n<CstmrPmtStsRpt>\n'
          f"<GrpHdr><MsgId>BANKRPT{seed}</MsgId><CreDtTm>2026-11-23T17:00:00+08:00</CreDtTm></GrpHdr>\n"
          f"<OrgnlGrpInfAndSts><OrgnlMsgId>{MESSAGE_ID}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>"
          "<GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>\n")
        n = 1
        for g in range(1, GROUPS + 1):
            inherit = g == GROUPS
            w(f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{_pmt_id(g)}</OrgnlPmtInfId>"
              + ("<PmtInfSts>ACSC</PmtInfSts>" if inherit else "") + "\n")
            while n <= rows and _group(n, rows) == g:
                key = _key(n)
                if inherit:
                    w(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId></TxInfAndSts>\n")
                    expect["succeeded"] += 1
                    tx_status["ACSC"] += 1
                    n += 1
                    continue
                u = rng.random()
                if u < 0.90:
                    a = _amount(n)
                    w(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
                      f'<OrgnlTxRef><Amt><InstdAmt Ccy="CNY">{a // 100}.{a % 100:02d}</InstdAmt></Amt></OrgnlTxRef>'
                      "</TxInfAndSts>\n")
                    expect["succeeded"] += 1
                    tx_status["ACSC"] += 1
                elif u < 0.97:
                    code, info, target = REJECTIONS[rng.randrange(len(REJECTIONS))]
                    w(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
                      f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn><AddtlInf>{info}</AddtlInf></StsRsnInf></TxInfAndSts>\n")
                    expect[target] += 1
                    codes[code] += 1
                    tx_status["RJCT"] += 1
                else:
                    w(f"<TxInfAndSts><OrgnlEndToEndId>{key}</OrgnlEndToEndId><TxSts>ACSP</TxSts></TxInfAndSts>\n")
                    expect["result_unknown"] += 1
                    tx_status["ACSP"] += 1
                n += 1
            w("</OrgnlPmtInfAndSts>\n")
        w("</CstmrPmtStsRpt>\n</Document>\n")
    os.replace(tmp, path)
    return {"seconds": round(time.perf_counter() - t0, 2), "bytes": os.path.getsize(path),
            "expect": dict(expect), "codes": dict(codes), "tx_status": dict(tx_status)}


# ---- timed import, floor, checks -------------------------------------------------------------------


def _statement_times(engine: Any, totals: dict[str, list[float]]) -> None:
    """Seconds and count per statement kind (first words of the SQL), from SQLAlchemy cursor events."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        words = " ".join(statement.split()).split(" ")
        label = " ".join(words[:3] if words[0].upper() in ("INSERT", "UPDATE", "DELETE") else words[:5])[:70]
        slot = totals.setdefault(label, [0.0, 0])
        slot[0] += time.perf_counter() - conn.info["bench_t0"].pop()
        slot[1] += 1


def phase_import(url: str, path: str, profile: str | None, statements: bool = False) -> dict[str, Any]:
    from settleguard.cases.service import SystemCases
    from settleguard.db.engine import open_engine
    from settleguard.payouts.files import import_report

    engine = open_engine(url)
    with engine.connect():
        pass  # connect (and run the pragmas) before the clock starts
    per_statement: dict[str, list[float]] = {}
    if statements:
        _statement_times(engine, per_statement)
    load = os.getloadavg()[0]
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    s = import_report(engine, Path(path), now=NOW, cases=SystemCases("Asia/Shanghai"))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    if prof is not None and profile:
        prof.disable()
        prof.dump_stats(profile)
    timed_statements = {k: [round(v[0], 3), int(v[1])] for k, v in
                        sorted(per_statement.items(), key=lambda kv: -kv[1][0])}
    t1 = time.perf_counter()
    again = import_report(engine, Path(path), now=NOW, cases=SystemCases("Asia/Shanghai"))
    t_again = time.perf_counter() - t1
    engine.dispose()
    return {"seconds": round(elapsed, 3), "cpu_s": round(cpu, 3), "statuses": s.statuses, "applied": s.applied,
            "ignored": s.ignored, "conflicts": s.conflicts, "statuses_per_s": round(s.statuses / elapsed),
            "load_at_start": round(load, 2), "again_already_imported": again.already_imported,
            "again_applied": again.applied, "again_s": round(t_again, 2),
            "send": {"succeeded": s.send.succeeded, "held": s.send.held, "retry_scheduled": s.send.retry_scheduled,
                     "unknown": s.send.unknown, "needs_review": s.send.needs_review},
            "categories": dict(s.send.categories),
            **({"statements_s_count": timed_statements} if statements else {})}


def phase_floor(path: str, repeat: int) -> dict[str, Any]:
    from lxml import etree

    times, count = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = 0
        for _event, el in etree.iterparse(path, events=("end",), tag=f"{{{NS}}}TxInfAndSts",
                                          resolve_entities=False, no_network=True, huge_tree=False):
            count += 1
            el.clear()
            prev = el.getprevious()
            if prev is not None and prev.tag == el.tag:
                el.getparent().remove(prev)
        times.append(time.perf_counter() - t0)
    return {"times_s": [round(x, 3) for x in times], "best_s": round(min(times), 3), "count": count,
            "lxml": ".".join(map(str, etree.LXML_VERSION))}


def phase_check(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.ledger.repository import check

    engine = open_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        problems = check(conn)
        statuses = dict(conn.execute(select(t.payouts.c.status, func.count()).group_by(t.payouts.c.status)).all())
        a = t.payout_attempts
        # the report's answers: on the send attempts they answer (or, for none here, rows of their own)
        report_codes = dict(conn.execute(select(a.c.code, func.count()).where(a.c.responded_at.is_not(None))
                                         .group_by(a.c.code)).all())
        attempts = dict(conn.execute(select(a.c.kind, func.count()).group_by(a.c.kind)).all())
        entries = dict(conn.execute(select(t.ledger_entries.c.kind, func.count())
                                    .group_by(t.ledger_entries.c.kind)).all())
        events = int(conn.execute(select(func.count()).select_from(t.payout_events)).scalar_one())
        alerts = dict(conn.execute(select(t.ops_alerts.c.kind, func.count()).group_by(t.ops_alerts.c.kind)).all())
        imports = int(conn.execute(select(func.count()).select_from(t.report_imports)).scalar_one())
    engine.dispose()
    return {"problems": len(problems), "first_problems": [p.message for p in problems[:5]],
            "statuses": statuses, "report_codes": report_codes, "attempts": attempts, "entries": entries,
            "events": events,
            "alerts": alerts, "report_imports": imports, "seconds": round(time.perf_counter() - t0, 2)}


def verify(rows: int, gen: dict[str, Any], imp: dict[str, Any], chk: dict[str, Any]) -> list[str]:
    """What must hold after a run; returns the failures (empty = all good)."""
    bad: list[str] = []
    expect = {k: v for k, v in gen["expect"].items() if v}
    if chk["problems"]:
        bad.append(f"ledger check: {chk['problems']} problem(s): {chk['first_problems']}")
    if chk["statuses"] != expect:
        bad.append(f"payout statuses {chk['statuses']} != expected from the file {expect}")
    if imp["statuses"] != rows or imp["applied"] != rows or imp["ignored"] or imp["conflicts"]:
        bad.append(f"import summary: {imp['statuses']} statuses, {imp['applied']} applied, {imp['ignored']} "
                   f"ignored, {imp['conflicts']} conflicts (expected {rows} / {rows} / 0 / 0)")
    codes = dict(gen["codes"])
    codes["ACSC"], codes["ACSP"] = gen["tx_status"].get("ACSC", 0), gen["tx_status"].get("ACSP", 0)
    if chk["report_codes"] != {k: v for k, v in codes.items() if v}:
        bad.append(f"answers by code {chk['report_codes']} != the file's {codes}")
    if chk["attempts"] != {"send": rows}:  # each answer on the unanswered send of its pain.001
        bad.append(f"attempts by kind {chk['attempts']}: expected the {rows} send attempts only")
    entries = chk["entries"]
    if (entries.get("payout_confirm", 0) != expect.get("succeeded", 0)
            or entries.get("payout_hold", 0) != expect.get("held", 0) or entries.get("payout_submit") != rows):
        bad.append(f"ledger entries {entries} do not match the statuses {expect}")
    moved = expect.get("succeeded", 0) + expect.get("result_unknown", 0) + 2 * (
        expect.get("held", 0) + expect.get("retry_scheduled", 0))
    if chk["events"] != 2 * rows + moved:
        bad.append(f"{chk['events']} payout events, expected {2 * rows + moved}")
    if not imp["again_already_imported"] or imp["again_applied"] or chk["report_imports"] != 1:
        bad.append("a second import of the same file was not recognised as already imported")
    return bad


# ---- orchestration --------------------------------------------------------------------------------


def _sqlite_files(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")]


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import sqlite3

    import lxml.etree
    import sqlalchemy

    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "lxml": ".".join(map(str, lxml.etree.LXML_VERSION)),
            "sqlalchemy": sqlalchemy.__version__, "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=1_000_000, help="payouts and statuses (1,000,000)")
    ap.add_argument("--repeat", type=int, default=1, help="timed imports, each on a fresh copy of the database")
    ap.add_argument("--floor-repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--profile", type=Path, default=None, help="write cProfile stats of the first import here")
    ap.add_argument("--statements", action="store_true",
                    help="time each SQL statement kind (cursor events; adds a little overhead)")
    args = ap.parse_args(argv)
    if args.rows < GROUPS or args.repeat < 1 or args.floor_repeat < 1:
        ap.error(f"--rows must be at least {GROUPS}; --repeat and --floor-repeat at least 1")
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "params": {"rows": args.rows, "repeat": args.repeat, "seed": args.seed},
                               "machine": _machine(), "runs": []}
    m = results["machine"]
    _log(f"machine: {m['nproc']} CPUs ({m['cpu']}), load {m['loadavg_at_start']}")

    base = workdir / f"returns-base-{args.rows}.sqlite"
    xml = workdir / f"returns-pain002-{args.rows}-{args.seed}.xml"
    for f in _sqlite_files(base):
        f.unlink(missing_ok=True)
    _log(f"setup: {args.rows:,} submitted payouts -> {base.name} (not timed) ...")
    results["setup"] = run_child("phase_setup", url=f"sqlite:///{base}", rows=args.rows)
    _log(f"setup: {results['setup']}")
    results["generate"] = gen = run_child("phase_generate", path=str(xml), rows=args.rows, seed=args.seed)
    _log(f"pain.002: {xml.name}, {gen['bytes'] / 2**20:,.0f} MiB, {gen['tx_status']}, written in {gen['seconds']} s")
    results["floor"] = floor = run_child("phase_floor", path=str(xml), repeat=args.floor_repeat)
    assert floor["count"] == args.rows, floor
    _log(f"floor (lxml iterparse, nothing done): {floor['times_s']} s")

    failures: list[str] = []
    for i in range(args.repeat):
        db = workdir / f"returns-run-{args.rows}.sqlite"
        for f in _sqlite_files(db):
            f.unlink(missing_ok=True)
        shutil.copyfile(base, db)
        url = f"sqlite:///{db}"
        profile = str(args.profile) if args.profile and i == 0 else None
        _log(f"run {i + 1}/{args.repeat}: import_report ...")
        imp = run_child("phase_import", url=url, path=str(xml), profile=profile, statements=args.statements)
        _log(f"run {i + 1}: {imp['seconds']} s, {imp['statuses_per_s']:,} statuses/s "
             f"(load {imp['load_at_start']}), peak RSS {imp['peak_rss_mb']} MiB")
        for label, (secs, count) in imp.get("statements_s_count", {}).items():
            if secs >= 0.01:
                _log(f"  {secs:8.3f} s  {count:7,}x  {label}")
        chk = run_child("phase_check", url=url)
        bad = verify(args.rows, gen, imp, chk)
        failures += [f"run {i + 1}: {b}" for b in bad]
        results["runs"].append({"import": imp, "check": chk, "failures": bad})
        for f in _sqlite_files(db):
            f.unlink(missing_ok=True)

    best = min(r["import"]["seconds"] for r in results["runs"])
    rate = args.rows / best
    results["summary"] = {"best_s": best, "statuses_per_s": round(rate), "floor_s": floor["best_s"],
                          "floor_statuses_per_s": round(args.rows / floor["best_s"]),
                          "ratio": round(best / floor["best_s"], 2), "target": TARGET, "pass": rate >= TARGET,
                          "checks_pass": not failures}
    results["loadavg_at_end"] = os.getloadavg()
    s = results["summary"]
    print()
    print(f"settleguard returns benchmark: pain.002 with {args.rows:,} statuses "
          f"({gen['bytes'] / 2**20:,.0f} MiB) applied to {args.rows:,} submitted payouts on SQLite; "
          f"{m['nproc']} CPUs, load {m['loadavg_at_start'][0]:.2f} at start")
    print(f"{'step':<44}{'seconds':>10}{'statuses/s':>14}{'x floor':>9}{'CPU s':>9}{'load':>6}")
    print(f"{'floor: lxml iterparse, nothing done 基线':<44}{s['floor_s']:>10.2f}{s['floor_statuses_per_s']:>14,}"
          f"{1.0:>9.2f}")
    for i, r in enumerate(results["runs"], 1):
        t, imp = r["import"]["seconds"], r["import"]
        print(f"{f'import_report run {i} 导入并应用':<44}{t:>10.2f}{args.rows / t:>14,.0f}"
              f"{t / s['floor_s']:>9.2f}{imp['cpu_s']:>9.1f}{imp['load_at_start']:>6.1f}")
    print(f"target >= {TARGET:,} statuses/s: {'PASS' if s['pass'] else 'FAIL'} ({s['statuses_per_s']:,}/s best)")
    for f in failures:
        print(f"CHECK FAILED: {f}")
    if not failures:
        print("checks: ledger check clean; statuses, codes, entries and events match the file; re-import is a no-op")
    out = workdir / "returns-result.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {out}")
    base.unlink(missing_ok=True)
    return 0 if s["pass"] and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
