"""Partitioned vs unpartitioned transactions on PostgreSQL (issue 23 item 6; docs/benchmarks.md).

Not a unit test. ``python bench/partitions.py [--days 60 --rows 200000 --merchants 2000 --repeat 3]``.

Per mode (``partitioned``: migration 0025, one partition per day; ``plain``: the same schema downgraded to
0024), in its own fresh PostgreSQL schema:

1. registers the benchmark merchants (``add_merchants``, not timed),
2. fills ``--days`` earlier business days with ``--rows`` transactions each by INSERT ... SELECT (not timed;
   partitioned: their partitions made by ``db.partitions.ensure_days``), then VACUUM ANALYZE,
3. ``--repeat`` times, a new day: ``import_transactions`` of a generated CSV of ``--rows`` rows, then
   ``settlement.engine.settle`` of that day, each timed (wall, this process's CPU, the PostgreSQL server's CPU
   from /proc of every ``postgres`` process),
4. the planning and execution time of the settle aggregation and of a merchant's 30-day history query
   (EXPLAIN ANALYZE), and, partitioned only, the planning time of both with 365 day partitions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
PG = os.environ.get("SETTLEGUARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FIRST = date(2026, 9, 1)
TZ = "Asia/Shanghai"


def _server_cpu() -> float:
    """CPU seconds (user + system) of every running postgres process."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name.startswith("postgres"):
            f = stat[stat.rindex(")") + 2:].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # + reaped children (the postmaster's)
    return total / tick


class Timer:
    def __enter__(self) -> Timer:
        self.w, self.c, self.s = time.perf_counter(), time.process_time(), _server_cpu()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.w
        self.cpu = time.process_time() - self.c
        self.server = _server_cpu() - self.s

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 2), "client_cpu_s": round(self.cpu, 2), "server_cpu_s": round(self.server, 2)}


def _schema(name: str, drop: bool = False) -> str:
    admin = create_engine(PG)
    with admin.begin() as c:
        c.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        if not drop:
            c.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    return f"{PG}?options=-csearch_path%3D{name}"


def _fill(engine: Any, days: list[date], rows: int, merchants: int, partitioned: bool) -> float:
    from settleguard.db import partitions

    t0 = time.perf_counter()
    if partitioned:
        partitions.ensure_days(engine, days)
    with engine.connect() as c:
        lo, hi = c.execute(text("SELECT min(id), max(id) FROM merchants")).one()
    for d in days:
        with engine.begin() as c:
            c.execute(text(
                "INSERT INTO transactions (cycle_date, merchant_id, external_ref, terminal_id, kind, card_type, "
                "amount_fen, fee_fen, occurred_at, import_id) "
                "SELECT :d, :lo + (g * 7919) % (:hi - :lo + 1), 'F' || to_char(:d, 'YYYYMMDD') || lpad(g::text, 9, '0'), "
                "NULL, 1, (g % 3) + 1, 100 + (g * 31) % 50000, (g * 31) % 50000 / 200, "
                "(extract(epoch from CAST(:d AS timestamp)) * 1000000)::bigint + g * 400000, 0 "
                "FROM generate_series(1::bigint, :n) g ORDER BY 2, 3"), {"d": d, "lo": lo, "hi": hi, "n": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE transactions"))
        c.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


def _explain(engine: Any, sql: str, params: dict[str, Any]) -> dict[str, float]:
    """The best of 5 (the first also loads the partitions' relation cache entries into the session)."""
    best: dict[str, float] = {}
    with engine.connect() as c:
        c.execute(text("SET max_parallel_workers_per_gather = 2"))
        for _ in range(5):
            plan = c.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql), params).scalar_one()
            p = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
            for k, v in (("planning_ms", p["Planning Time"]), ("execution_ms", p["Execution Time"])):
                best[k] = round(min(best.get(k, v), v), 3)
    return best


AGG = ("SELECT merchant_id, count(*), sum(amount_fen) FILTER (WHERE kind = 1), sum(fee_fen) FROM transactions "
       "WHERE cycle_date = :d GROUP BY merchant_id")
HISTORY = ("SELECT cycle_date, count(*), sum(amount_fen) FROM transactions WHERE merchant_id = :m "
           "AND cycle_date >= :lo AND cycle_date < :hi GROUP BY cycle_date ORDER BY cycle_date")
UNBOUNDED = "SELECT count(*) FROM transactions WHERE merchant_id = :m AND external_ref = :r"


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import settle as settle_bench  # bench/settle.py: the benchmark merchants
    from alembic import command

    from settleguard.db.engine import alembic_config, create
    from settleguard.imports.transactions import import_transactions
    from settleguard.settlement.engine import settle
    from settleguard.settlement.model import CutOffs
    from settleguard.sim.generator import generate_bench_transactions, write_transactions_csv

    schema = f"bench_parts_{mode}"
    url = _schema(schema)
    setup = settle_bench.phase_setup(url, args.merchants, False)
    engine = create(url)
    if mode == "plain":
        command.downgrade(alembic_config(engine), "0024")
    background = [FIRST + timedelta(days=i) for i in range(args.days)]
    fill_s = _fill(engine, background, args.rows, args.merchants, mode == "partitioned")
    runs = []
    for i in range(args.repeat):
        day = FIRST + timedelta(days=args.days + i)
        csv = workdir / f"{mode}-{day}.csv"
        write_transactions_csv(generate_bench_transactions(args.rows, args.merchants, day, 7), csv)
        now = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=3)
        with Timer() as ti:
            res = import_transactions(engine, csv, cutoffs=CutOffs(timezone=TZ), now=now)
        with Timer() as ts:
            run = settle(engine, day, now)
        assert res.rows == args.rows, res
        assert run.txn_count > 0, run
        runs.append({"day": day.isoformat(), "import": ti.as_dict(), "settle": ts.as_dict()})
        csv.unlink()
    last = FIRST + timedelta(days=args.days + args.repeat - 1)
    with engine.connect() as c:
        mid = c.execute(text("SELECT min(id) FROM merchants")).scalar_one()
        size = c.execute(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                              "WHERE c.relnamespace = to_regnamespace(current_schema())::oid AND c.relkind = 'r' "
                              "AND c.relname LIKE 'transactions%'")).scalar_one()
    plans = {"settle_agg": _explain(engine, AGG, {"d": last}),
             "history_30_days": _explain(engine, HISTORY, {"m": mid, "lo": last - timedelta(days=30), "hi": last}),
             "no_day_filter": _explain(engine, UNBOUNDED, {"m": mid, "r": "F000"})}
    out: dict[str, Any] = {"mode": mode, "setup": setup, "fill_s": round(fill_s, 1), "runs": runs, "plans": plans,
                           "transactions_bytes": int(size or 0)}
    if mode == "partitioned":  # planning with a year of partitions (empty ones added up to 365)
        from settleguard.db import partitions

        partitions.ensure_days(engine, [FIRST - timedelta(days=i) for i in range(1, 366 - args.days - args.repeat)])
        with engine.connect() as c:
            out["partitions_year"] = len(partitions.listing(c))
        out["plans_year"] = {
            "settle_agg": _explain(engine, AGG, {"d": last}),
            "history_30_days": _explain(engine, HISTORY, {"m": mid, "lo": last - timedelta(days=30), "hi": last}),
            "no_day_filter": _explain(engine, UNBOUNDED, {"m": mid, "r": "F000"})}
    engine.dispose()
    if not args.keep:
        _schema(schema, drop=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--merchants", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--modes", default="partitioned,plain")
    ap.add_argument("--keep", action="store_true", help="keep the schemas")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/sg-bench-partitions"))
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {"load_before": os.getloadavg(), "args": {k: str(v) for k, v in vars(args).items()}}
    for mode in args.modes.split(","):
        print(f"{datetime.now(UTC):%H:%M:%S} {mode} ...", flush=True)
        results[mode] = run_mode(mode, args, args.workdir)
        print(f"  load {os.getloadavg()}", flush=True)
    results["load_after"] = os.getloadavg()
    for mode in args.modes.split(","):
        r = results[mode]
        for k in ("import", "settle"):
            print(f"{mode:12s} {k:7s} median wall {statistics.median(x[k]['wall_s'] for x in r['runs']):6.2f} s  "
                  f"client cpu {statistics.median(x[k]['client_cpu_s'] for x in r['runs']):6.2f} s  "
                  f"server cpu {statistics.median(x[k]['server_cpu_s'] for x in r['runs']):6.2f} s")
        print(f"{mode:12s} plans {r['plans']}  year: {r.get('plans_year')}")
    (args.workdir / "result.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"result: {args.workdir / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
