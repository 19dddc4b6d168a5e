"""Settlement benchmark: import and settle one 10-million-transaction day on SQLite and PostgreSQL.

Not a unit test. Run ``python bench/settle.py`` (``make bench``); ``--help`` lists the options.

Per backend it:

1. creates the benchmark merchants (``add_merchants``; not timed, reported for information),
2. imports the generated CSV with ``import_transactions`` (timed; rows/s, phase breakdown),
3. settles the day in a separate child process per run, so the run's peak RSS is its own
   (``VmHWM`` of the child, which an ``exec``'d child does not inherit from its parent), and
   times ``settlement.engine.settle`` (settlements, ledger entries and payouts included),
4. runs the ledger invariant check (``ledger.repository.check``; must find nothing),
5. on PostgreSQL, captures ``EXPLAIN (ANALYZE, BUFFERS)`` of the aggregation (with the settings
   ``settle`` uses, and with the server defaults) and of the real ``INSERT INTO settlements``.

The floor is DuckDB's GROUP BY merchant_id with the same sums over a Parquet file holding the
same rows (merchant_id, kind, amount_fen, fee_fen as stored by the importer), written with
pyarrow. The ratio is our settle time / DuckDB's time.

Everything heavy runs in spawned child processes; the parent only orchestrates, prints a table
and writes ``<workdir>/result.json``. Targets (issue): settle <= 5 s per backend, settle peak
RSS <= 1 GB, SQLite import >= 500,000 rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchkit import log as _log
from benchkit import run_child

DAY = date(2026, 11, 20)  # a Friday; T+1 value date is Monday 2026-11-23
NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"  # the business time zone (config.Settings.timezone)
SETTLE_TARGET_S = 5.0
RSS_TARGET_MB = 1024.0
IMPORT_TARGET_RPS = 500_000
OUTPUT_TABLES = ("case_payouts", "audit_events", "payout_attempts", "payout_events", "payouts", "ledger_postings",
                 "ledger_entries", "settlements", "settlement_runs")
ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------------------
# child processes


# ---- data generation ---------------------------------------------------------------------------


def _own_generator(n_rows: int, n_merchants: int, day: date, seed: int) -> Any:
    """Fallback when settleguard.sim.generator is missing or broken: same columns, vectorised."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, day.toordinal()])
    w = np.exp(rng.normal(0.0, 1.0, n_merchants))
    mi = np.repeat(np.arange(1, n_merchants + 1), rng.multinomial(n_rows, w / w.sum()))
    rng.shuffle(mi)
    secs = np.sort(rng.integers(0, 86_400, n_rows))
    mis = pa.array(mi).cast(pa.string())
    kind = rng.choice(4, n_rows, p=[0.975, 0.012, 0.008, 0.005])
    card = rng.choice(3, n_rows, p=[0.45, 0.25, 0.30])
    hh, mm, ss = (pa.array(x).cast(pa.string()) for x in (secs // 3600, secs // 60 % 60, secs % 60))

    def pad(a: Any, width: int) -> Any:
        return pc.utf8_lpad(a, width, "0")

    times = pc.binary_join_element_wise(f"{day.isoformat()}T", pad(hh, 2), ":", pad(mm, 2), ":", pad(ss, 2),
                                        "+08:00", "")
    return pa.table({
        "external_ref": pc.binary_join_element_wise(f"B{day:%Y%m%d}", pad(pa.array(np.arange(n_rows)).cast(
            pa.string()), 9), ""),
        "merchant_no": pc.binary_join_element_wise("B", pad(mis, 14), ""),
        "terminal_no": pc.binary_join_element_wise("T", pad(mis, 7), ""),
        "occurred_at": times,
        "kind": pa.array(["sale", "void", "refund", "reversal"]).take(pa.array(kind)),
        "card_type": pa.array(["debit", "credit", "qr"]).take(pa.array(card)),
        "amount_fen": pa.array(np.clip(np.rint(np.exp(rng.normal(np.log(45.0), 0.8, n_rows))) * 100, 50,
                                       5_000_000).astype(np.int64)),
    })


def _merchant_numbering(own: bool) -> tuple[Callable[[int], str], Callable[[int], str], str]:
    if not own:
        try:
            from settleguard.sim.generator import bench_merchant_no, bench_terminal_no

            return bench_merchant_no, bench_terminal_no, "settleguard.sim.generator"
        except ImportError:
            pass
    return (lambda i: f"B{i:014d}"), (lambda i: f"T{i:07d}"), "bench/settle.py (own)"


def phase_generate(rows: int, merchants: int, seed: int, csv_path: str, own: bool) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    t0 = time.perf_counter()
    source = "bench/settle.py (own)"
    table = None
    if not own:
        try:
            from settleguard.sim.generator import generate_bench_transactions

            table = generate_bench_transactions(rows, merchants, DAY, seed)
            source = "settleguard.sim.generator.generate_bench_transactions"
        except Exception as exc:  # noqa: BLE001 - the other module is work in progress
            print(f"  generator unusable ({exc!r}); using the bench's own", flush=True)
    if table is None:
        table = _own_generator(rows, merchants, DAY, seed)
    t_gen = time.perf_counter() - t0
    tmp = csv_path + ".tmp"
    table = table.select(["external_ref", "merchant_no", "terminal_no", "occurred_at", "kind", "card_type",
                          "amount_fen"])
    pcsv.write_csv(table, tmp, write_options=pcsv.WriteOptions(include_header=True, quoting_style="needed"))
    os.replace(tmp, csv_path)
    kinds = table["kind"].value_counts().to_pylist()
    return {"source": source, "rows": table.num_rows, "generate_s": round(t_gen, 2),
            "write_s": round(time.perf_counter() - t0 - t_gen, 2), "csv_bytes": os.path.getsize(csv_path),
            "kinds": {k["values"]: k["counts"] for k in kinds},
            "merchants_with_rows": int(pc.count_distinct(table["merchant_no"]).as_py())}


# ---- database setup ------------------------------------------------------------------------------


def phase_setup(url: str, merchants: int, own: bool) -> dict[str, Any]:
    """Migrate and register the benchmark merchants (one terminal each) with add_merchants."""
    import secrets

    from sqlalchemy import func, select

    from settleguard.cards.vault import Vault
    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.merchants.model import MerchantKind, NewMerchant
    from settleguard.merchants.repository import add_merchants
    from settleguard.settlement.model import Cycle

    merchant_no, terminal_no, numbering = _merchant_numbering(own)
    t0 = time.perf_counter()
    engine = open_engine(url)
    t_migrate = time.perf_counter() - t0
    vault = Vault({1: secrets.token_bytes(32)}, 1)

    def new(i: int) -> NewMerchant:
        corporate = i % 5 == 0
        return NewMerchant(
            merchant_no=merchant_no(i), kind=MerchantKind.CORPORATE if corporate else MerchantKind.PERSONAL,
            registered_name=f"基准测试商户{i}", legal_person="张伟", business="便利店", mcc="5499", city="北京",
            cycle=Cycle.D0 if i % 4 == 0 else Cycle.T1,
            fee_schedule="standard" if corporate or i % 3 == 0 else "small_micro",
            holder_name=f"基准测试商户{i}" if corporate else "张伟",
            account_kind="corporate" if corporate else "personal",
            pan=f"622202{i:013d}", bank_code="ICBC", bank_name="中国工商银行", card_type="DC",
            terminal_nos=(terminal_no(i),),
        )

    t1 = time.perf_counter()
    chunk = 10_000
    for start in range(1, merchants + 1, chunk):
        batch = [new(i) for i in range(start, min(start + chunk, merchants + 1))]
        with engine.begin() as conn:
            add_merchants(conn, batch, vault, NOW)
    t_merchants = time.perf_counter() - t1
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(t.merchants)).scalar_one())
    engine.dispose()  # closing the last SQLite connection checkpoints the WAL into the file
    return {"merchants": n, "numbering": numbering, "migrate_s": round(t_migrate, 2),
            "add_merchants_s": round(t_merchants, 2)}


def _reset_outputs(engine: Any) -> None:
    """Remove everything a settlement run wrote, so the next run settles the day afresh."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # TRUNCATE leaves the tables as a fresh database has them (no statistics). Not VACUUM
            # ANALYZE: statistics saying "0 rows" make the planner choose a nested-loop anti join
            # for the "already settled" check, which then rescans the growing settlements table.
            conn.exec_driver_sql(f"TRUNCATE {', '.join(OUTPUT_TABLES)} RESTART IDENTITY")
        else:
            for name in OUTPUT_TABLES:
                conn.exec_driver_sql(f"DELETE FROM {name}")


# ---- import ------------------------------------------------------------------------------------------


def phase_import(url: str, csv_path: str, real_cutoffs: bool, truncate_first: bool) -> dict[str, Any]:
    from settleguard.db.engine import open_engine
    from settleguard.imports.transactions import import_transactions
    from settleguard.settlement.model import CutOffs

    engine = open_engine(url)
    if truncate_first:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("TRUNCATE transactions, imports RESTART IDENTITY")
            else:
                conn.exec_driver_sql("DELETE FROM transactions")
                conn.exec_driver_sql("DELETE FROM imports")
    with engine.connect():
        pass  # connect (and run the pragmas) before the clock starts
    marks: list[tuple[str, int, float]] = []

    def progress(stage: str, done: int, total: int) -> None:
        marks.append((stage, done, time.perf_counter()))

    cutoffs = CutOffs(timezone=TZ) if real_cutoffs else CutOffs(t1_hour=24, d0_hour=24, timezone=TZ)
    t0 = time.perf_counter()
    result = import_transactions(engine, Path(csv_path), cutoffs=cutoffs, now=NOW, progress=progress)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    phases: dict[str, float] = {}
    parsed = [m[2] for m in marks if m[0] == "parsed"]
    inserts = [m[2] for m in marks if m[0] == "insert"]
    if parsed and len(inserts) == 1:
        phases = {"sha256+read_csv": parsed[0] - t0, "prepare+insert": inserts[0] - parsed[0],
                  "commit (+ANALYZE on pg)": t0 + elapsed - inserts[0]}
    elif parsed and inserts:  # one progress call per inserted chunk: subtract one chunk's time
        per_chunk = (inserts[-1] - inserts[0]) / max(len(inserts) - 1, 1)
        prepare = max(inserts[0] - parsed[0] - per_chunk, 0.0)
        phases = {"sha256+read_csv": parsed[0] - t0, "prepare (validate, map, fee, sort)": prepare,
                  "insert": inserts[-1] - parsed[0] - prepare, "commit (+ANALYZE on pg)": t0 + elapsed - inserts[-1]}
    return {"rows": result.rows, "seconds": round(elapsed, 3), "rows_per_s": round(result.rows / elapsed),
            "cycle_dates": [d.isoformat() for d in result.cycle_dates],
            "phases_s": {k: round(v, 2) for k, v in phases.items()}}


# ---- settlement ----------------------------------------------------------------------------------


def _statement_timer(engine: Any, log: list[dict[str, Any]]) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        started = conn.info["bench_t0"].pop()
        log.append({"sql": statement, "params": params if isinstance(params, dict | tuple | list) else None,
                    "s": time.perf_counter() - started})


def _label(sql: str) -> str:
    words = " ".join(sql.split()).split(" ")
    head = " ".join(words[:3]).upper()
    if head.startswith("INSERT INTO"):
        return f"INSERT INTO {words[2]}"
    if head.startswith("UPDATE"):
        return f"UPDATE {words[1]}"
    if head.startswith("SELECT COUNT"):
        return "SELECT totals"
    return " ".join(words[:4])[:60]


class _PgMemorySampler:
    """Peak private memory (RSS - shared) of the PostgreSQL backend and its parallel workers."""

    def __init__(self, backend_pid: int) -> None:
        self.backend_pid = backend_pid
        self.peak_mb = 0.0
        self.max_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _PgMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            import psutil

            backend = psutil.Process(self.backend_pid)
            postmaster = backend.parent()
        except Exception:  # noqa: BLE001 - not on this host, or no permission: no sample
            return
        tag = f"parallel worker for PID {self.backend_pid}"
        while not self._stop.wait(0.05):
            total, workers = 0, 0
            try:
                procs = [backend]
                for p in postmaster.children():
                    try:
                        if tag in " ".join(p.cmdline()):
                            procs.append(p)
                            workers += 1
                    except psutil.Error:
                        continue
                for p in procs:
                    try:
                        mi = p.memory_info()
                        total += mi.rss - mi.shared
                    except psutil.Error:
                        continue
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.max_workers = max(self.max_workers, workers)


def phase_settle(url: str, days: list[str], reset_first: bool) -> dict[str, Any]:
    from settleguard.db.engine import open_engine
    from settleguard.settlement.engine import settle

    engine = open_engine(url)
    if reset_first:
        _reset_outputs(engine)
    engine.dispose()
    engine = open_engine(url)
    autovacuum = None
    with engine.connect() as conn:  # warm the pool: connecting is not part of the run
        backend_pid = 0
        if engine.dialect.name == "postgresql":
            backend_pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
            autovacuum = [r[0] for r in conn.exec_driver_sql(
                "SELECT left(query, 80) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").all()]
    log: list[dict[str, Any]] = []
    _statement_timer(engine, log)
    runs = []
    sampler = _PgMemorySampler(backend_pid) if backend_pid else None
    t0 = time.perf_counter()
    if sampler:
        sampler.__enter__()
    try:
        for d in days:
            r = settle(engine, date.fromisoformat(d), NOW)
            runs.append({"day": d, "run_id": r.run_id, "merchants_settled": r.merchants_settled,
                         "txn_count": r.txn_count, "net_fen": r.net_fen, "fee_fen": r.fee_fen,
                         "payouts_created": r.payouts_created, "payout_fen": r.payout_fen,
                         "carried_merchants": r.carried_merchants})
    finally:
        if sampler:
            sampler.__exit__()
    elapsed = time.perf_counter() - t0
    engine.dispose()
    per_stmt: dict[str, float] = {}
    for e in log:
        per_stmt[_label(e["sql"])] = per_stmt.get(_label(e["sql"]), 0.0) + e["s"]
    captured = []  # the statements of the first day's settle(), replayed under EXPLAIN later
    for e in log:
        captured.append({"sql": e["sql"], "params": e["params"]})
        if _head(e["sql"]).startswith("UPDATE SETTLEMENT_RUNS "):
            break
    return {"seconds": round(elapsed, 3), "txn_count": sum(r["txn_count"] for r in runs),
            "txns_per_s": round(sum(r["txn_count"] for r in runs) / elapsed), "runs": runs,
            "statements_s": {k: round(v, 3) for k, v in per_stmt.items()},
            "unaccounted_s (commit, python)": round(elapsed - sum(per_stmt.values()), 3),
            "pg_server_peak_private_mb": round(sampler.peak_mb, 1) if sampler else None,
            "pg_parallel_workers_seen": sampler.max_workers if sampler else None,
            "pg_autovacuum_at_start": autovacuum,
            "captured": captured}


def phase_check(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.ledger.repository import check

    engine = open_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        problems = check(conn)
        counts = {name: int(conn.execute(select(func.count()).select_from(getattr(t, name))).scalar_one())
                  for name in ("settlements", "ledger_entries", "ledger_postings", "payouts", "payout_events")}
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return {"problems": len(problems), "first_problems": [p.message for p in problems[:5]],
            "seconds": round(elapsed, 2), "rows": counts}


# ---- query plans ---------------------------------------------------------------------------------


def _agg_sql(dialect: Any, day: date) -> str:
    """The GROUP BY of settlement/engine.py, rebuilt with the same expressions."""
    from sqlalchemy import Date, case, func, literal, select

    from settleguard.db import tables as t
    from settleguard.settlement.model import TxnKind

    tx = t.transactions

    def sum_kind(kind: TxnKind) -> Any:
        return func.coalesce(func.sum(case((tx.c.kind == int(kind), tx.c.amount_fen), else_=0)), 0)

    q = (select(tx.c.merchant_id, func.count(), *(sum_kind(k) for k in TxnKind),
                func.coalesce(func.sum(tx.c.fee_fen), 0))
         .where(tx.c.cycle_date == literal(day, Date)).group_by(tx.c.merchant_id))
    # literal binds: the same SQL text works for EXPLAIN on either dialect without driver parameters
    return str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _summarise_plan(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    top = [ln.rstrip() for ln in lines if ln and not ln.startswith(" ") or "->" in ln
           or "Workers Planned" in ln or "Workers Launched" in ln or "Batches:" in ln
           or ln.startswith(("Planning Time", "Execution Time"))]
    return {
        "top": top[:24],
        "parallel": "Gather" in text,
        "seq_scan": "Seq Scan on transactions" in text,
        "index_scan": "Index Scan" in text or "Index Only Scan" in text,
        "hash_aggregate": "HashAggregate" in text,
        "group_aggregate": "GroupAggregate" in text,
        "spilled_to_disk": "Disk Usage" in text or "external merge" in text,
        "execution_ms": next((float(ln.split()[2]) for ln in lines if ln.startswith("Execution Time")), None),
    }


def _head(sql: str) -> str:
    return " ".join(sql.split()).upper()


_CTAS = re.compile(r"^\s*CREATE\s+(?:TEMP|TEMPORARY)\s+TABLE\s+\S+\s+AS\s+(.*)$", re.IGNORECASE | re.DOTALL)


def _aggregation_select(captured: list[dict[str, Any]], dialect: Any, day: date) -> tuple[str, str]:
    """The GROUP BY settle() ran: the SELECT of its CREATE TEMP TABLE AS if it used one, else rebuilt."""
    for c in captured:
        m = _CTAS.match(c["sql"])
        if m and not c["params"]:
            return m.group(1), "taken from settle()'s CREATE TEMP TABLE AS"
    return _agg_sql(dialect, day), "rebuilt by the bench from engine.py's expressions"


def _explain(conn: Any, sql: str, params: Any) -> tuple[str, float]:
    t0 = time.perf_counter()
    rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or {}).all()
    return "\n".join(r[0] for r in rows), time.perf_counter() - t0


def phase_explain_pg(url: str, day: str, captured: list[dict[str, Any]], with_defaults: bool,
                     workdir: str) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS), always in transactions that are rolled back.

    1. The aggregation SELECT with settle()'s session settings (its SET LOCAL statements).
    2. The whole settle() run replayed statement by statement on emptied output tables (TRUNCATE,
       as before a first run), each statement under EXPLAIN ANALYZE (which executes it), so
       every plan and its execution time is recorded: pg_plan_settle_run.txt.
    3. The aggregation SELECT under the server's default settings.
    """
    from settleguard.db.engine import open_engine

    engine = open_engine(url)
    agg_sql, agg_source = _aggregation_select(captured, engine.dialect, date.fromisoformat(day))
    sets = [c["sql"] for c in captured if _head(c["sql"]).startswith("SET ")]
    out: dict[str, Any] = {"settle_sets": sets, "aggregation_sql_source": agg_source}
    setting_names = "('work_mem', 'max_parallel_workers_per_gather', 'jit', 'random_page_cost')"

    def single(name: str, slug: str, pre: list[str]) -> None:
        with engine.connect() as conn:
            tx = conn.begin()
            try:
                for x in pre:
                    conn.exec_driver_sql(x)
                settings = dict(conn.exec_driver_sql(
                    f"SELECT name, current_setting(name) FROM pg_settings WHERE name IN {setting_names}").all())
                text, wall = _explain(conn, agg_sql, None)
                summary = _summarise_plan(text)
            except Exception as exc:  # noqa: BLE001 - e.g. the statement timeout under defaults
                text, wall, settings = f"failed: {exc}", 0.0, {}
                summary = {"top": [text.splitlines()[0]]}
            finally:
                tx.rollback()
        Path(workdir, f"pg_plan_{slug}.txt").write_text(f"-- {name}\n{text}\n")
        out[name] = {"settings": settings, "wall_s": round(wall, 3), **summary}

    single("aggregation SELECT, settle() settings", "aggregation", sets)

    # the run, statement by statement
    report: list[str] = []
    statements: list[dict[str, Any]] = []
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(OUTPUT_TABLES)} RESTART IDENTITY")
            for c in captured:
                head = _head(c["sql"])
                if head.startswith(("SET ", "DROP ", "BEGIN", "COMMIT")):
                    conn.exec_driver_sql(c["sql"], c["params"] or {})
                    continue
                text, wall = _explain(conn, c["sql"], c["params"])
                ms = next((float(ln.split()[2]) for ln in text.splitlines() if ln.startswith("Execution Time")), None)
                statements.append({"statement": _label(c["sql"]), "wall_s": round(wall, 3), "execution_ms": ms,
                                   **{k: v for k, v in _summarise_plan(text).items() if k != "top"},
                                   "top": _summarise_plan(text)["top"][:12]})
                report += [f"=== {_label(c['sql'])}: {wall:.3f} s", " ".join(c["sql"].split())[:400], text, ""]
        except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
            report.append(f"replay failed: {exc}")
            out["settle_run_replay_error"] = str(exc).splitlines()[0]
        finally:
            tx.rollback()
    Path(workdir, "pg_plan_settle_run.txt").write_text(
        "-- settle() replayed statement by statement under EXPLAIN (ANALYZE, BUFFERS) on emptied output "
        "tables, rolled back\n" + "\n".join(report) + "\n")
    out["settle run, statement by statement"] = statements

    if with_defaults:
        single("aggregation SELECT, server defaults", "aggregation_defaults", ["SET LOCAL statement_timeout = '180s'"])
    engine.dispose()
    return out


def phase_explain_sqlite(url: str, day: str, captured: list[dict[str, Any]]) -> dict[str, Any]:
    from settleguard.db.engine import open_engine

    engine = open_engine(url)
    sql, source = _aggregation_select(captured, engine.dialect, date.fromisoformat(day))
    with engine.connect() as conn:
        plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()]
    engine.dispose()
    return {"query_plan": plan, "aggregation_sql_source": source}


# ---- the DuckDB floor ----------------------------------------------------------------------------------


def phase_export_parquet(url: str, day: str, parquet_path: str) -> dict[str, Any]:
    """The day's rows as stored by the importer (merchant_id, kind, amount_fen, fee_fen) -> Parquet."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from settleguard.db.engine import open_engine

    engine = open_engine(url)
    cols = ["merchant_id", "kind", "amount_fen", "fee_fen"]
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            buf = io.BytesIO()
            with raw.cursor() as cur, cur.copy(  # type: ignore[attr-defined]
                    f"COPY (SELECT {', '.join(cols)} FROM transactions WHERE cycle_date = %s) TO STDOUT (FORMAT csv)",
                    (date.fromisoformat(day),)) as cp:
                for block in cp:
                    buf.write(block)
            buf.seek(0)
            table = pcsv.read_csv(buf, read_options=pcsv.ReadOptions(column_names=cols),
                                  convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(cols, pa.int64())))
        else:
            cur = raw.cursor()  # SQLAlchemy stores a Date as 'YYYY-MM-DD' text on SQLite
            cur.execute(f"SELECT {', '.join(cols)} FROM transactions WHERE cycle_date = ?", (day,))
            parts = []
            while rows := cur.fetchmany(1_000_000):
                parts.append(np.array(rows, dtype=np.int64))
            cur.close()
            mat = np.concatenate(parts) if parts else np.empty((0, 4), dtype=np.int64)
            table = pa.table({c: mat[:, i].copy() for i, c in enumerate(cols)})
    finally:
        raw.close()
    engine.dispose()
    table = table.set_column(1, "kind", table["kind"].cast(pa.int16()))
    pq.write_table(table, parquet_path)
    return {"rows": table.num_rows, "seconds": round(time.perf_counter() - t0, 2),
            "bytes": os.path.getsize(parquet_path)}


FLOOR_SQL = """
SELECT merchant_id, count(*) AS txn_count,
       coalesce(sum(CASE WHEN kind = 1 THEN amount_fen ELSE 0 END), 0) AS sale_fen,
       coalesce(sum(CASE WHEN kind = 2 THEN amount_fen ELSE 0 END), 0) AS void_fen,
       coalesce(sum(CASE WHEN kind = 3 THEN amount_fen ELSE 0 END), 0) AS refund_fen,
       coalesce(sum(CASE WHEN kind = 4 THEN amount_fen ELSE 0 END), 0) AS reversal_fen,
       coalesce(sum(fee_fen), 0) AS fee_fen
FROM read_parquet(?)
GROUP BY merchant_id
"""


def phase_floor(parquet_path: str, repeat: int) -> dict[str, Any]:
    import duckdb
    import pyarrow.compute as pc

    con = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0]
    times = []
    result = None
    sql = FLOOR_SQL.replace("?", "'" + parquet_path.replace("'", "''") + "'")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = con.sql(sql).to_arrow_table()
        times.append(time.perf_counter() - t0)
    assert result is not None

    def total(c: str) -> int:
        return int(pc.sum(result[c]).as_py() or 0)

    net = total("sale_fen") - total("void_fen") - total("refund_fen") - total("reversal_fen") - total("fee_fen")
    return {"times_s": [round(x, 3) for x in times], "min_s": round(min(times), 3),
            "median_s": round(statistics.median(times), 3), "threads": threads[0] if threads else None,
            "duckdb": duckdb.__version__, "groups": result.num_rows, "txn_count": total("txn_count"),
            "net_fen": net, "fee_fen": total("fee_fen")}


# ----------------------------------------------------------------------------------------------
# parent: orchestration and report


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("sqlite3", "pyarrow", "numpy", "sqlalchemy", "psycopg", "duckdb"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "sqlite_version", None) or m.__version__
        except Exception:  # noqa: BLE001
            versions[mod] = "?"
    return {"nproc": os.cpu_count(), "mem_gb": round(mem_kb / 2**20, 1), "cpu": cpu,
            "kernel": platform.release(), "loadavg_at_start": os.getloadavg(), "versions": versions}


def _code_state() -> dict[str, Any]:
    """Git commit, dirty files and a digest of the package sources (other people edit them meanwhile)."""
    import hashlib
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True, check=False,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    h = hashlib.sha256()
    for f in sorted((ROOT / "src").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return {"head": git("rev-parse", "--short", "HEAD"), "dirty": git("status", "--short").splitlines(),
            "src_sha256": h.hexdigest()[:16]}


def _pg_server(url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        settings = dict(conn.exec_driver_sql(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers', "
            "'work_mem', 'max_parallel_workers_per_gather', 'max_parallel_workers', 'random_page_cost', "
            "'effective_cache_size', 'synchronous_commit', 'max_wal_size', 'autovacuum')").all())
    engine.dispose()
    return {"version": version, "settings": settings}


def _schema_sql(base_url: str, sql: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def _sqlite_files(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")]


def _copy_sqlite(src: Path, dst: Path) -> None:
    for f in _sqlite_files(dst):
        f.unlink(missing_ok=True)
    for s, d in zip(_sqlite_files(src)[:2], _sqlite_files(dst)[:2], strict=True):
        if s.exists():
            shutil.copyfile(s, d)


def run_backend(backend: str, args: argparse.Namespace, csv_path: Path, workdir: Path,
                results: dict[str, Any]) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    from settleguard.db.engine import normalise_url

    res: dict[str, Any] = {"backend": backend}
    schema = None
    if backend == "sqlite":
        db = workdir / "bench.sqlite"
        for f in _sqlite_files(db):
            f.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
    else:
        schema = f"bench_settle_{os.getpid()}"
        base = normalise_url(args.pg_url)
        res["server"] = _pg_server(base)
        _schema_sql(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
        res["schema"] = schema
    try:
        _log(f"{backend}: migrating and creating {args.merchants:,} merchants (not timed) ...")
        res["setup"] = run_child("phase_setup", url=url, merchants=args.merchants, own=args.own_generator)
        _log(f"{backend}: {res['setup']['merchants']:,} merchants in {res['setup']['add_merchants_s']} s")
        template = workdir / "bench-merchants.sqlite"
        if backend == "sqlite":
            _copy_sqlite(workdir / "bench.sqlite", template)

        imports = []
        for i in range(args.import_repeat):
            if i and backend == "sqlite":
                _copy_sqlite(template, workdir / "bench.sqlite")
            _log(f"{backend}: import {i + 1}/{args.import_repeat} of {csv_path.name} ...")
            imp = run_child("phase_import", url=url, csv_path=str(csv_path), real_cutoffs=args.real_cutoffs,
                            truncate_first=bool(i and backend == "postgresql"))
            imports.append(imp)
            _log(f"{backend}: imported {imp['rows']:,} rows in {imp['seconds']} s = {imp['rows_per_s']:,} rows/s "
                 f"(peak RSS {imp['peak_rss_mb']:,.0f} MB) {imp['phases_s']}")
        res["imports"] = imports
        days = imports[-1]["cycle_dates"]
        bench_day = DAY.isoformat() if DAY.isoformat() in days else days[0]

        if "floor_parquet" not in results:
            pq_path = workdir / f"floor-{args.rows}-{args.merchants}-{args.seed}.parquet"
            _log(f"{backend}: exporting the day's stored rows to {pq_path.name} (not timed) ...")
            results["floor_export"] = run_child("phase_export_parquet", url=url, day=bench_day,
                                                parquet_path=str(pq_path))
            results["floor_parquet"] = str(pq_path)

        settles = []
        for i in range(args.repeat):
            _log(f"{backend}: settle run {i + 1}/{args.repeat} of {', '.join(days)} (child process) ...")
            s = run_child("phase_settle", url=url, days=days, reset_first=i > 0)
            settles.append(s)
            extra = (f", pg backend+workers peak private {s['pg_server_peak_private_mb']} MB, "
                     f"parallel workers seen {s['pg_parallel_workers_seen']}, "
                     f"autovacuum at start {s['pg_autovacuum_at_start']}") if backend == "postgresql" else ""
            _log(f"{backend}: settled {s['txn_count']:,} txns in {s['seconds']} s = {s['txns_per_s']:,} txns/s, "
                 f"peak RSS {s['peak_rss_mb']:,.0f} MB{extra}")
            _log(f"{backend}:   statements {s['statements_s']}")
        res["settles"] = settles

        if backend == "postgresql":
            _log(f"{backend}: EXPLAIN (ANALYZE, BUFFERS) ...")
            res["plan"] = run_child("phase_explain_pg", url=url, day=bench_day, captured=settles[-1]["captured"],
                                    with_defaults=not args.no_default_plan, workdir=str(workdir))
            for name, p in res["plan"].items():
                if isinstance(p, dict) and "top" in p:
                    print(f"  -- {name}  {p.get('settings', {})}")
                    for ln in p["top"]:
                        print(f"     {ln}")
            print("  -- settle() replayed under EXPLAIN ANALYZE (pg_plan_settle_run.txt):")
            for st in res["plan"].get("settle run, statement by statement", []):
                print(f"     {st['statement']:<36} {st['wall_s']:7.3f} s  {' | '.join(st['top'][:1])[:90]}")
            if "settle_run_replay_error" in res["plan"]:
                print(f"     replay failed: {res['plan']['settle_run_replay_error']}")
        else:
            res["plan"] = run_child("phase_explain_sqlite", url=url, day=bench_day, captured=settles[-1]["captured"])
            print("  -- EXPLAIN QUERY PLAN (aggregation): " + " | ".join(res["plan"]["query_plan"]))
        for s in settles:
            s.pop("captured", None)

        _log(f"{backend}: ledger check ...")
        res["ledger_check"] = run_child("phase_check", url=url)
        lc = res["ledger_check"]
        _log(f"{backend}: ledger check found {lc['problems']} problem(s) in {lc['seconds']} s; rows {lc['rows']}")
    finally:
        if schema and not args.keep:
            _schema_sql(normalise_url(args.pg_url), f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            _log(f"{backend}: dropped schema {schema}")
    return res


def _fmt(v: float | None, spec: str = ",.2f") -> str:
    return "-" if v is None else format(v, spec)


def report(results: dict[str, Any]) -> list[str]:
    floor = results.get("floor", {})
    floor_s = floor.get("min_s")
    lines = []
    head = (f"{'backend':<11}{'import rows/s':>15}{'settle s (min/med/1st)':>26}{'txns/s':>13}"
            f"{'peak RSS MB':>13}{'floor s':>9}{'ratio':>8}  ledger")
    lines += [head, "-" * len(head)]
    verdicts = []
    for name, b in results["backends"].items():
        imp = statistics.median(i["rows_per_s"] for i in b["imports"])
        times = [s["seconds"] for s in b["settles"]]
        best, med = min(times), statistics.median(times)
        rss = max(s["peak_rss_mb"] for s in b["settles"])
        txns = b["settles"][0]["txn_count"]
        day_runs = [r for r in b["settles"][0]["runs"] if r["day"] == results["bench_day"]]
        ratio = best / floor_s if floor_s else None
        b["summary"] = {"import_rows_per_s": imp, "settle_min_s": best, "settle_median_s": med,
                        "settle_first_s": times[0], "txns_per_s_at_median": round(txns / med),
                        "settle_peak_rss_mb": rss, "floor_ratio_min": round(ratio, 1) if ratio else None,
                        "ledger_problems": b["ledger_check"]["problems"]}
        lines.append(f"{name:<11}{imp:>15,.0f}{f'{best:.2f} / {med:.2f} / {times[0]:.2f}':>26}"
                     f"{txns / med:>13,.0f}{rss:>13,.0f}{_fmt(floor_s, '.3f'):>9}{_fmt(ratio, '.1f'):>8}  "
                     f"{'ok' if b['ledger_check']['problems'] == 0 else str(b['ledger_check']['problems']) + ' problems'}")
        verdicts.append((f"{name}: settle median {med:.2f} s <= {SETTLE_TARGET_S:.0f} s", med <= SETTLE_TARGET_S))
        verdicts.append((f"{name}: settle peak RSS {rss:,.0f} MB <= {RSS_TARGET_MB:,.0f} MB", rss <= RSS_TARGET_MB))
        verdicts.append((f"{name}: ledger check empty", b["ledger_check"]["problems"] == 0))
        if floor:
            same = (floor["txn_count"] == sum(r["txn_count"] for r in day_runs)
                    and floor["net_fen"] == sum(r["net_fen"] for r in day_runs))
            verdicts.append((f"{name}: settlement totals equal the DuckDB floor's", same))
        if name == "sqlite":
            verdicts.append((f"sqlite: import {imp:,.0f} rows/s >= {IMPORT_TARGET_RPS:,}", imp >= IMPORT_TARGET_RPS))
    if floor:
        lines.append(f"floor: DuckDB {floor['duckdb']} ({floor['threads']} threads) GROUP BY over Parquet: "
                     f"min {floor['min_s']:.3f} s, median {floor['median_s']:.3f} s, {floor['groups']:,} groups; "
                     "ratio = our best settle time / floor min")
    lines.append("")
    for text, ok in verdicts:
        lines.append(f"{'PASS' if ok else 'FAIL'}  {text}")
    results["verdicts"] = [{"check": text, "pass": ok} for text, ok in verdicts]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--merchants", type=int, default=100_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--repeat", type=int, default=3, help="settlement runs (and DuckDB runs x2) per backend")
    ap.add_argument("--import-repeat", type=int, default=1, help="imports per backend (into a fresh table)")
    ap.add_argument("--real-cutoffs", action="store_true",
                    help="default cut-offs (T1 23:00, D0 22:00): late rows fall on the next day, and every "
                         "cycle day of the file is settled in the timed run; by default the cut-offs are "
                         "midnight so that all rows belong to one business day")
    ap.add_argument("--own-generator", action="store_true", help="do not use settleguard.sim.generator")
    ap.add_argument("--no-default-plan", action="store_true",
                    help="skip EXPLAIN ANALYZE under PostgreSQL's default settings (can take a while)")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.import_repeat < 1:
        ap.error("--repeat and --import-repeat must be at least 1")

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    results: dict[str, Any] = {"started_at": started.isoformat(timespec="seconds"), "argv": sys.argv[1:],
                               "params": {"rows": args.rows, "merchants": args.merchants, "seed": args.seed,
                                          "repeat": args.repeat, "import_repeat": args.import_repeat,
                                          "real_cutoffs": args.real_cutoffs, "day": DAY.isoformat()},
                               "machine": _machine(), "code": _code_state(), "backends": {},
                               "bench_day": DAY.isoformat()}
    m = results["machine"]
    _log(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gb']} GB, load {m['loadavg_at_start']}")
    _log(f"code: {results['code']['head']}, {len(results['code']['dirty'])} uncommitted file(s), "
         f"src digest {results['code']['src_sha256']}")

    csv_path = workdir / f"transactions-{args.rows}-{args.merchants}-{args.seed}.csv"
    _log(f"generating {args.rows:,} transactions for {args.merchants:,} merchants -> {csv_path} (not timed) ...")
    results["generate"] = run_child("phase_generate", rows=args.rows, merchants=args.merchants, seed=args.seed,
                                    csv_path=str(csv_path), own=args.own_generator)
    g = results["generate"]
    _log(f"generated with {g['source']} in {g['generate_s']} s, CSV {g['csv_bytes'] / 2**20:,.0f} MiB "
         f"written in {g['write_s']} s; {g['merchants_with_rows']:,} merchants have rows")

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        results["backends"][backend] = run_backend(backend, args, csv_path, workdir, results)

    if "floor_parquet" in results:
        _log(f"floor: DuckDB GROUP BY over {Path(results['floor_parquet']).name}, {args.repeat * 2} runs ...")
        results["floor"] = run_child("phase_floor", parquet_path=results["floor_parquet"], repeat=args.repeat * 2)
        _log(f"floor: {results['floor']['times_s']} s")

    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    end_state = _code_state()
    results["code"]["src_sha256_at_end"] = end_state["src_sha256"]
    results["loadavg_at_end"] = os.getloadavg()
    print()
    print(f"settleguard settlement benchmark: {args.rows:,} transactions, {args.merchants:,} merchants, "
          f"day {DAY}, seed {args.seed}; {m['nproc']} CPUs, {m['mem_gb']} GB")
    code = results["code"]
    print(f"code: {code['head']}{' + uncommitted changes' if code['dirty'] else ''}, src digest "
          f"{code['src_sha256']}" + ("" if code["src_sha256"] == code["src_sha256_at_end"] else
                                     f" -> {code['src_sha256_at_end']} (SOURCES CHANGED DURING THE RUN)"))
    for line in report(results):
        print(line)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for name in (f"result-{stamp}.json", "result.json"):
        (workdir / name).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults: {workdir / 'result.json'}")
    return 0 if all(v["pass"] for v in results["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
