"""Reconciliation benchmark (issue 20): a camt.053 of 1,000,000 statement lines against 1,000,000 paid payouts
on SQLite; ``recon import`` and ``recon run`` timed separately, against a DuckDB floor joining the same keys.

Not a unit test. Run ``python bench/recon.py`` (``--rows 100000`` to scale down; ``--help``).

1. setup (not timed, a child process): a fresh, migrated SQLite database with N merchants, each with an
   active settlement card, and one payout ``succeeded`` per merchant (value date 2026-11-23) with its
   ``send`` attempt under the payout's key — written with set-based SQL into the project's tables
   (``db.tables``), as bench/returns.py does. **Bypassed**: settlement, the ledger and sending (``recon run``
   reads payouts and attempts only).
2. writes (deterministic) one camt.053.001.08 statement (``BkToCstmrStmt/Stmt``, OPBD/CLBD that prove) with
   one booked ``Ntry`` per payout (``NtryDtls/TxDtls/Refs/EndToEndId`` = the payout's key, BkTxCd, AcctSvcrRef,
   booking date 2026-11-24) and injected anomalies per 1,000 payouts: one never booked (ledger_only) and in
   its place a debit with no key of ours (bank_only), one booked one fen off (amount_mismatch), one booked
   twice (duplicate_debit), one booked and then reversed (RvslInd credit: reversal).
3. times ``reconciliation.service.import_statement_file`` (what ``settleguard recon import`` calls: SHA-256,
   hardened streaming parse, checks, one transaction) in a fresh child;
4. times ``reconciliation.breaks.run(engine, 2026-11-26)`` (what ``settleguard recon run --date`` calls: load
   lines and payouts, plan, store matches and breaks, Chinese business-day calendar) in a fresh child;
5. the floor: the stored keys exported to Parquet (bank lines: id, EndToEndId, amount, direction, reversal;
   attempts: key, payout; payouts: id, amount), then DuckDB joining EndToEndId -> attempt key -> payout and
   the anti-joins both ways (matched, amount differences, lines without a payout, payouts without a line),
   best of ``--floor-repeat`` runs, reading the Parquet files included. Ratio = run time / floor time.
6. checks: breaks found per type equal the injected ones; matched lines equal DuckDB's exact matches; a second
   import of the same file changes nothing; a second run opens nothing.

Prints a table and writes ``<workdir>/recon-result.json``. Target (issue 20): run within 5x of the floor;
the exit status is 1 when a check fails (a missed ratio is reported, not an error: see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchkit import log as _log
from benchkit import run_child

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
VALUE_DATE = date(2026, 11, 23)  # Monday
BOOKED = "2026-11-24"
RUN_DATE = date(2026, 11, 26)  # Thursday: the 2-business-day window of Monday's payouts has passed
NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
BKTXCD = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
OPENING_FEN = 10**15
TARGET_RATIO = 5.0
# what happens to payout n, by n % 1000 (the rest: one booked debit under its key)
MISSING, OFF_BY_ONE, TWICE, REVERSED = 7, 13, 21, 29


def _key(n: int) -> str:
    return f"SG{DAY:%Y%m%d}M{n}"


def _amount(n: int) -> int:
    return 100 + (n * 7919) % 9_999_900


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# ---- setup ---------------------------------------------------------------------------------------


def phase_setup(url: str, rows: int) -> dict[str, Any]:
    """N merchants with a card and one paid payout each (with its send attempt): set-based SQL."""
    from sqlalchemy import Integer, String, func, literal, select
    from sqlalchemy import insert as sa_insert

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.db.types import UTCDateTime
    from settleguard.merchants.repository import ensure_fee_schedules

    t0 = time.perf_counter()
    engine = open_engine(url)
    t_migrate = time.perf_counter() - t0
    created = literal(datetime(2026, 11, 21, 3, tzinfo=UTC), UTCDateTime)
    sent = literal(datetime(2026, 11, 23, 1, tzinfo=UTC), UTCDateTime)
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE bench_n (n INTEGER PRIMARY KEY, amount INTEGER)")
        conn.exec_driver_sql(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
            "INSERT INTO bench_n SELECT n, 100 + (n * 7919) % 9999900 FROM seq", (rows,))
        from sqlalchemy import Column, MetaData, Table

        seq = Table("bench_n", MetaData(), Column("n", Integer, primary_key=True), Column("amount", Integer),
                    prefixes=["TEMPORARY"])
        n, amount = seq.c.n, seq.c.amount
        schedule = ensure_fee_schedules(conn)["small_micro"]
        conn.execute(sa_insert(t.merchants).from_select(
            ["id", "merchant_no", "kind", "registered_name", "legal_person", "business", "mcc", "city", "cycle",
             "fee_schedule_id", "status", "created_at"],
            select(n, literal("B") + func.printf("%014d", n), literal("personal"),
                   literal("基准测试商户") + n.cast(String), literal("张伟"), literal("便利店"), literal("5499"),
                   literal("北京"), literal("T1"), literal(schedule, Integer), literal("active"), created)))
        conn.execute(sa_insert(t.settlement_accounts).from_select(
            ["id", "merchant_id", "account_kind", "holder_name", "bank_code", "bank_name", "card_type", "pan_masked",
             "pan_cipher", "pan_nonce", "key_version", "status", "bound_at"],
            select(n, n, literal("personal"), literal("张伟"), literal("ICBC"), literal("中国工商银行"), literal("DC"),
                   literal("622202******") + func.printf("%04d", n % 10000), func.randomblob(32), func.randomblob(12),
                   literal(1, Integer), literal("active"), created)))
        conn.execute(sa_insert(t.payouts).from_select(
            ["id", "merchant_id", "cycle_date", "value_date", "amount_fen", "currency", "status", "idempotency_key",
             "account_id", "attempt_count", "created_at", "updated_at", "instruction_no"],
            select(n, n, literal(DAY), literal(VALUE_DATE), amount, literal("CNY"), literal("succeeded"),
                   literal(f"SG{DAY:%Y%m%d}M") + n.cast(String), n, literal(1, Integer), created, sent,
                   literal(0, Integer))))
        conn.execute(sa_insert(t.payout_attempts).from_select(
            ["id", "payout_id", "attempt_no", "kind", "idempotency_key", "channel", "account_id", "amount_fen",
             "requested_at", "responded_at", "outcome"],
            select(n, n, literal(1, Integer), literal("send"), literal(f"SG{DAY:%Y%m%d}M") + n.cast(String),
                   literal("simulator"), n, amount, sent, sent, literal("succeeded"))))
        conn.exec_driver_sql("DROP TABLE bench_n")
    t_rows = time.perf_counter() - t1
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return {"migrate_s": round(t_migrate, 2), "rows_s": round(t_rows, 2)}


# ---- the statement file ------------------------------------------------------------------------------


def phase_generate(path: str, rows: int) -> dict[str, Any]:
    """Write the camt.053; returns the lines written and the breaks injected."""
    t0 = time.perf_counter()
    expect = {"ledger_only": 0, "bank_only": 0, "amount_mismatch": 0, "duplicate_debit": 0, "reversal": 0}
    lines, exact, net = 0, 0, 0
    tmp = Path(path).with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        body: list[str] = []
        w = body.append

        def entry(ref: str, fen: int, key: str | None, cd: str = "DBIT", rvsl: bool = False) -> None:
            nonlocal lines, net
            lines += 1
            net += fen if cd == "CRDT" else -fen
            details = f"<NtryDtls><TxDtls><Refs><EndToEndId>{key}</EndToEndId></Refs></TxDtls></NtryDtls>" if key else ""
            w(f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="CNY">{_yuan(fen)}</Amt><CdtDbtInd>{cd}</CdtDbtInd>'
              + ("<RvslInd>true</RvslInd>" if rvsl else "")
              + f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{BOOKED}</Dt></BookgDt><ValDt><Dt>{BOOKED}</Dt></ValDt>"
              f"<AcctSvcrRef>B{ref}</AcctSvcrRef>{BKTXCD}{details}</Ntry>\n")

        for n in range(1, rows + 1):
            fate, fen, key = n % 1000, _amount(n), _key(n)
            if fate == MISSING:
                expect["ledger_only"] += 1
                expect["bank_only"] += 1
                entry(f"X{n}", 20_000_000_000 + n, None)  # a debit of no payout of ours (no key, no such amount)
            elif fate == OFF_BY_ONE:
                expect["amount_mismatch"] += 1
                entry(f"E{n}", fen + 1, key)
            elif fate == TWICE:
                expect["duplicate_debit"] += 1
                exact += 1
                entry(f"E{n}", fen, key)
                entry(f"D{n}", fen, key)
            elif fate == REVERSED:
                expect["reversal"] += 1
                exact += 1
                entry(f"E{n}", fen, key)
                entry(f"R{n}", fen, key, cd="CRDT", rvsl=True)
            else:
                exact += 1
                entry(f"E{n}", fen, key)
            if len(body) >= 10_000:
                f.write("".join(body))
                body.clear()
        closing = OPENING_FEN + net

        def bal(code: str, fen: int) -> str:
            return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">{_yuan(fen)}</Amt>"
                    f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{BOOKED}</Dt></Dt></Bal>")

        head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}"><BkToCstmrStmt>'
                "<GrpHdr><MsgId>BENCH-RECON</MsgId><CreDtTm>2026-11-25T06:00:00+08:00</CreDtTm></GrpHdr>\n"
                f"<Stmt><Id>STMT-{BOOKED}</Id><CreDtTm>2026-11-25T06:00:00+08:00</CreDtTm>"
                "<Acct><Id><Othr><Id>110060001012345</Id></Othr></Id><Ccy>CNY</Ccy></Acct>\n"
                + bal("OPBD", OPENING_FEN) + bal("CLBD", closing) + "\n")
        f.write("".join(body))
        f.write("</Stmt></BkToCstmrStmt></Document>\n")
    # the head is known only at the end (closing balance): prepend it by rewriting once
    final = Path(path)
    with final.open("w", encoding="utf-8") as out, tmp.open("r", encoding="utf-8") as src:
        out.write(head)
        while chunk := src.read(1 << 24):
            out.write(chunk)
    tmp.unlink()
    return {"seconds": round(time.perf_counter() - t0, 2), "bytes": final.stat().st_size, "lines": lines,
            "exact": exact, "expect": expect}


# ---- timed phases ----------------------------------------------------------------------------------


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def phase_import(url: str, path: str) -> dict[str, Any]:
    from settleguard.db.engine import open_engine
    from settleguard.reconciliation.service import import_statement_file

    engine = open_engine(url)
    with engine.connect():
        pass
    load = _load()
    t0, cpu0 = time.perf_counter(), time.process_time()
    res = import_statement_file(engine, Path(path), now=NOW)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t1 = time.perf_counter()
    again = import_statement_file(engine, Path(path), now=NOW)
    t_again = time.perf_counter() - t1
    engine.dispose()
    return {"seconds": round(elapsed, 2), "cpu_s": round(cpu, 2), "lines": res.new_lines,
            "lines_per_s": round(res.new_lines / elapsed), "load_at_start": load, "load_at_end": _load(),
            "again_already_imported": again.already_imported, "again_new_lines": again.new_lines,
            "again_s": round(t_again, 2)}


def phase_run(url: str, profile: str | None) -> dict[str, Any]:
    from settleguard.db.engine import open_engine
    from settleguard.reconciliation.breaks import run
    from settleguard.settlement.calendar import is_business_day

    engine = open_engine(url)
    with engine.connect():
        pass
    is_business_day(RUN_DATE)  # load the calendar before the clock starts
    load = _load()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0, cpu0 = time.perf_counter(), time.process_time()
    res = run(engine, RUN_DATE, now=NOW)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if prof is not None and profile:
        prof.disable()
        prof.dump_stats(profile)
    t1 = time.perf_counter()
    again = run(engine, RUN_DATE, now=NOW)
    t_again = time.perf_counter() - t1
    engine.dispose()
    return {"seconds": round(elapsed, 2), "cpu_s": round(cpu, 2), "lines": res.lines_considered,
            "lines_per_s": round(res.lines_considered / elapsed), "matched": res.matched,
            "matched_by_rule": res.rules, "breaks_by_type": {k: v for k, v in res.breaks_by_type.items() if v},
            "drift_fen": res.drift_fen, "load_at_start": load, "load_at_end": _load(),
            "again_s": round(t_again, 2), "again_opened": again.opened, "again_cleared": again.cleared}


def phase_export(url: str, workdir: str) -> dict[str, Any]:
    """The floor's input: the stored keys as Parquet (not timed)."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.parquet as pq

    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    out = {}
    for name, sql in (
            ("lines", "SELECT id, end_to_end_id, amount_fen, direction, reversal FROM bank_lines WHERE status = 'BOOK'"),
            ("attempts", "SELECT payout_id, idempotency_key FROM payout_attempts WHERE kind = 'send'"),
            ("payouts", "SELECT id, amount_fen FROM payouts WHERE status IN ('succeeded', 'returned')")):
        cur = db.execute(sql)
        cols = [d[0] for d in cur.description]
        data = list(zip(*cur.fetchall(), strict=True))
        table = pa.table({c: list(v) for c, v in zip(cols, data, strict=True)})
        target = Path(workdir) / f"recon-floor-{name}.parquet"
        pq.write_table(table, target)
        out[name] = {"rows": table.num_rows, "bytes": target.stat().st_size}
    db.close()
    return out


FLOOR_SQL = """
WITH l AS (SELECT * FROM read_parquet('{d}/recon-floor-lines.parquet')),
     a AS (SELECT * FROM read_parquet('{d}/recon-floor-attempts.parquet')),
     p AS (SELECT * FROM read_parquet('{d}/recon-floor-payouts.parquet')),
     j AS (SELECT l.id AS line_id, l.amount_fen AS bank_fen, p.id AS payout_id, p.amount_fen AS payout_fen
           FROM l JOIN a ON a.idempotency_key = l.end_to_end_id JOIN p ON p.id = a.payout_id
           WHERE l.direction = 'DBIT' AND CAST(l.reversal AS INTEGER) = 0)
SELECT (SELECT count(*) FROM j WHERE bank_fen = payout_fen) AS exact,
       (SELECT count(*) FROM j WHERE bank_fen <> payout_fen) AS differ,
       (SELECT count(*) FROM l WHERE l.direction = 'DBIT' AND CAST(l.reversal AS INTEGER) = 0
          AND l.id NOT IN (SELECT line_id FROM j)) AS bank_only,
       (SELECT count(*) FROM p WHERE p.id NOT IN (SELECT payout_id FROM j)) AS ledger_only,
       (SELECT count(*) FROM (SELECT payout_id FROM j GROUP BY payout_id HAVING count(*) > 1)) AS twice
"""


def phase_floor(workdir: str, repeat: int) -> dict[str, Any]:
    import duckdb

    times, cpus, got = [], [], None
    con = duckdb.connect()
    sql = FLOOR_SQL.format(d=workdir)
    for _ in range(repeat):
        t0, cpu0 = time.perf_counter(), time.process_time()  # process CPU: DuckDB's threads included
        got = con.sql(sql).to_arrow_table().to_pylist()[0]
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - cpu0)
    con.close()
    return {"times_s": [round(x, 3) for x in times], "best_s": round(min(times), 3), "result": got,
            "cpu_s": [round(x, 3) for x in cpus], "best_cpu_s": round(min(cpus), 3), "load_at_end": _load(),
            "duckdb": duckdb.__version__, "threads": os.cpu_count()}


def verify(gen: dict[str, Any], imp: dict[str, Any], run: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    bad: list[str] = []
    if imp["lines"] != gen["lines"]:
        bad.append(f"imported {imp['lines']} lines, the file has {gen['lines']}")
    if not imp["again_already_imported"] or imp["again_new_lines"]:
        bad.append("a second import of the same file was not recognised")
    want = {k: v for k, v in gen["expect"].items() if v}
    if run["breaks_by_type"] != want:
        bad.append(f"breaks {run['breaks_by_type']} != injected {want}")
    # duplicates: one of the two lines is matched; DuckDB's exact count has both
    if run["matched"] != gen["exact"]:
        bad.append(f"matched {run['matched']} lines, expected {gen['exact']}")
    fl = floor["result"]
    if fl["exact"] - fl["twice"] != run["matched"] or fl["differ"] != want.get("amount_mismatch", 0):
        bad.append(f"DuckDB's join {fl} disagrees with the run's matches {run['matched']}")
    if run["again_opened"] or run["again_cleared"]:
        bad.append("a second run changed breaks")
    if run["drift_fen"]:
        bad.append(f"drift {run['drift_fen']} on a statement that proves")
    return bad


def _machine() -> dict[str, Any]:
    import sqlite3

    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "loadavg_at_start": _load()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="payouts (and about as many statement lines)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--floor-repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile the run to <workdir>/recon-run.prof")
    ap.add_argument("--reuse", action="store_true", help="reuse the set-up database and file if present")
    args = ap.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"recon-{args.rows}.db"
    seed_db = work / f"recon-{args.rows}-setup.db"
    xml = work / f"recon-{args.rows}.xml"
    result: dict[str, Any] = {"rows": args.rows, "machine": _machine(), "started": datetime.now(UTC).isoformat()}
    if not (args.reuse and seed_db.exists() and xml.exists()):
        for p in (seed_db, xml):
            p.unlink(missing_ok=True)
        _log(f"setup: {args.rows:,} payouts")
        result["setup"] = run_child("phase_setup", url=f"sqlite:///{seed_db}", rows=args.rows)
        _log(f"  {result['setup']}")
    _log("generate camt.053")
    result["generate"] = run_child("phase_generate", path=str(xml), rows=args.rows)
    _log(f"  {result['generate']['lines']:,} lines, {result['generate']['bytes'] / 2**20:.0f} MiB")
    import shutil

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(seed_db, db)
    url = f"sqlite:///{db}"
    _log("recon import")
    result["import"] = imp = run_child("phase_import", url=url, path=str(xml))
    _log(f"  {imp}")
    _log("recon run")
    result["run"] = run = run_child("phase_run", url=url, profile=str(work / "recon-run.prof") if args.profile else None)
    _log(f"  {run}")
    result["export"] = run_child("phase_export", url=url, workdir=str(work))
    result["floor"] = floor = run_child("phase_floor", workdir=str(work), repeat=args.floor_repeat)
    _log(f"  floor {floor}")
    ratio = run["seconds"] / floor["best_s"]
    result["ratio_run_to_floor"] = round(ratio, 1)
    result["ratio_import_and_run_to_floor"] = round((imp["seconds"] + run["seconds"]) / floor["best_s"], 1)
    # on a shared machine wall times follow the load; CPU seconds (DuckDB's threads included) less so
    result["ratio_run_to_floor_cpu"] = round(run["cpu_s"] / max(floor.get("best_cpu_s", 0), 1e-3), 1)
    result["failures"] = bad = verify(result["generate"], imp, run, floor)
    result["loadavg_at_end"] = _load()
    out = work / "recon-result.json"
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print()
    print(f"{'phase':<14}{'lines':>12}{'seconds':>10}{'lines/s':>12}{'CPU s':>9}{'peak RSS MB':>13}  load")
    for name in ("import", "run"):
        r = result[name]
        print(f"recon {name:<8}{r['lines']:>12,}{r['seconds']:>10.2f}{r['lines_per_s']:>12,}{r['cpu_s']:>9.2f}"
              f"{r['peak_rss_mb']:>13.0f}  {r['load_at_start']}")
    print(f"{'DuckDB floor':<14}{'':>12}{floor['best_s']:>10.3f}{'':>12}{'':>9}{floor['peak_rss_mb']:>13.0f}")
    print(f"ratio run / floor: {ratio:.1f}x wall, {result['ratio_run_to_floor_cpu']:.1f}x CPU "
          f"(target {TARGET_RATIO:.0f}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'})")
    for b in bad:
        print("CHECK FAILED:", b)
    print(f"written {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
