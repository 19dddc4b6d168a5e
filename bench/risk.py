"""Risk benchmark (issue 22): merchant features and the scan of one day of N transactions over M merchants, with
30 days of stored baselines, on SQLite and PostgreSQL; and a floor — DuckDB over Parquet computing the same
features, baselines and rules in the same run.

Not a unit test. ``python bench/risk.py`` (10,000,000 rows, 100,000 merchants, both backends);
``--rows``, ``--merchants``, ``--backend sqlite|postgresql|both``, ``--workdir`` (bench/out), ``--pg-url``,
``--seed``, ``--keep``.

Phases, each in a freshly spawned interpreter (benchkit.run_child), so one's memory does not count for another:

1. generate (not timed): the day's transactions as an Arrow table (numpy, seeded): merchant activity lognormal,
   sales / voids / refunds / reversals 97.5 / 1.2 / 0.8 / 0.5 %, debit / credit / QR 45 / 25 / 30 %, times mostly
   by day (3 % between 00:00 and 05:00), card tokens from a pool of 0.9 x rows (ordinary repeats), amounts
   lognormal in fen; 0.5 % of merchants get a planted pattern (round amounts, night sales, one card many times).
   Written to Parquet (the floor's input) with 30 days of baseline feature rows and the merchants' MCCs.
2. load (not timed): a fresh database (SQLite file / PostgreSQL schema), migrated; merchants; the transactions
   (SQLite: executemany in key order; PostgreSQL: COPY); the 30 baseline days into risk_features / risk_days.
3. scan (timed): ``risk.service.scan(engine, DAY, rules, ...)`` — features of the day (stored), baselines, scores,
   explanations, evidence and cases. Wall seconds, CPU seconds of this process (``time.process_time``; the
   PostgreSQL server's CPU is its own processes', read from pg_stat_statements-free /proc of the backend when
   local: reported as ``server_cpu_s`` when available), peak RSS.
4. floor (timed): DuckDB (in-process, all cores) reads the Parquet files and computes the same per-merchant
   counts, the card maximum, unmatched cancellations, the median / MAD baselines and the rule scores.

Prints a table and writes ``<workdir>/risk-result.json`` (with the load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchkit import log, run_child

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 2, tzinfo=UTC)
SH_OFFSET_US = 8 * 3600 * 1_000_000
BASE_DAYS = 30


def _paths(workdir: str, rows: int, merchants: int) -> dict[str, Path]:
    w = Path(workdir)
    tag = f"{rows}-{merchants}"
    return {"tx": w / f"risk-tx-{tag}.parquet", "base": w / f"risk-base-{tag}.parquet",
            "mcc": w / f"risk-mcc-{tag}.parquet", "db": w / f"risk-{tag}.db"}


# ---- 1. generate ------------------------------------------------------------------------------------------

def phase_generate(workdir: str, rows: int, merchants: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    p = _paths(workdir, rows, merchants)
    weights = np.exp(rng.normal(0.0, 1.0, merchants))
    counts = rng.multinomial(rows, weights / weights.sum())
    mid = np.repeat(np.arange(1, merchants + 1, dtype=np.int64), counts)  # sorted by merchant: key order
    kind = rng.choice(np.array([1, 2, 3, 4], dtype=np.int16), rows, p=[0.975, 0.012, 0.008, 0.005])
    card = rng.choice(np.array([1, 2, 3], dtype=np.int16), rows, p=[0.45, 0.25, 0.30])
    amount = np.maximum(np.round(rng.lognormal(np.log(4500.0), 0.8, rows)).astype(np.int64), 1)
    # a void / reversal cancels the merchant's previous sale (same amount); a refund returns part of it
    prev_same = np.concatenate([[False], mid[1:] == mid[:-1]])
    cancel = (kind != 1) & prev_same
    src = np.flatnonzero(cancel) - 1
    amount[cancel] = np.where(kind[cancel] == 3, np.maximum(amount[src] // 2, 1), amount[src])
    kind[src] = 1
    local_start = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp()) * 1_000_000 - SH_OFFSET_US
    night = rng.random(rows) < 0.03
    secs = np.where(night, rng.integers(0, 5 * 3600, rows), rng.integers(7 * 3600, 23 * 3600, rows))
    occurred = local_start + secs.astype(np.int64) * 1_000_000
    pool = max(int(rows * 0.9), 1)
    token_ids = rng.integers(0, pool, rows)
    # planted patterns on 0.5 % of the merchants
    planted = rng.choice(np.arange(1, merchants + 1), max(merchants // 200, 1), replace=False)
    kinds_planted = {"round": 0, "night": 0, "card": 0}
    pos = np.searchsorted(mid, planted)
    ends = np.searchsorted(mid, planted, side="right")
    for i, (a, b) in enumerate(zip(pos.tolist(), ends.tolist(), strict=True)):
        if b - a < 6:
            continue
        sel = slice(a, a + max((b - a) * 6 // 10, 6))
        which = ("round", "night", "card")[i % 3]
        kinds_planted[which] += 1
        kind[sel] = 1
        if which == "round":
            amount[sel] = rng.choice(np.array([50_000, 100_000, 99_900, 200_000]), sel.stop - sel.start)
        elif which == "night":
            occurred[sel] = local_start + rng.integers(3600, 4 * 3600, sel.stop - sel.start) * 1_000_000
        else:
            token_ids[sel] = pool + i
    hexes = np.char.mod("%016x", token_ids.astype(np.uint64))
    tokens = pa.array(np.char.add(hexes, hexes).astype(object), pa.string())
    refs = pa.array(np.char.mod("B%011d", np.arange(rows)).astype(object), pa.string())
    tx = pa.table({"merchant_id": mid, "external_ref": refs, "kind": kind, "card_type": card, "amount_fen": amount,
                   "occurred_at": occurred, "card_token": tokens})
    pq.write_table(tx, p["tx"], compression="zstd")
    # baselines: 30 days of stored feature rows, each merchant active most days around its expected volume
    lam = weights / weights.sum() * rows
    b_mid, b_day, b_cnt, b_fen, b_max = [], [], [], [], []
    for back in range(BASE_DAYS, 0, -1):
        active = rng.random(merchants) < np.minimum(0.6 + lam / 10, 0.98)
        ids = np.flatnonzero(active) + 1
        cnt = np.maximum(rng.poisson(lam[ids - 1]), 1)
        b_mid.append(ids)
        b_day.append(np.full(ids.size, (DAY - timedelta(days=back)).toordinal(), dtype=np.int64))
        b_cnt.append(cnt)
        b_fen.append(np.round(cnt * 6100 * rng.lognormal(0, 0.2, ids.size)).astype(np.int64))
        b_max.append(np.round(6100 * 4 * rng.lognormal(0, 0.3, ids.size)).astype(np.int64))
    base = pa.table({"merchant_id": np.concatenate(b_mid), "day_ordinal": np.concatenate(b_day),
                     "sale_count": np.concatenate(b_cnt), "sale_fen": np.concatenate(b_fen),
                     "max_sale_fen": np.concatenate(b_max)})
    pq.write_table(base, p["base"])
    mccs = np.array(["5812", "5411", "5499", "5311", "7011", "5999"])[rng.integers(0, 6, merchants)]
    pq.write_table(pa.table({"merchant_id": np.arange(1, merchants + 1, dtype=np.int64),
                             "mcc": pa.array(mccs.astype(object), pa.string())}), p["mcc"])
    return {"seconds": round(time.perf_counter() - t0, 1), "rows": rows, "baseline_rows": base.num_rows,
            "active_merchants": int((counts > 0).sum()), "planted": kinds_planted}


# ---- 2. load ----------------------------------------------------------------------------------------------

def _schema_url(pg_url: str, schema: str) -> str:
    sep = "&" if "?" in pg_url else "?"
    return f"{pg_url}{sep}options=-csearch_path%3D{schema}"


def phase_load(backend: str, url: str, workdir: str, rows: int, merchants: int) -> dict[str, Any]:
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq
    from sqlalchemy import insert

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.merchants.repository import ensure_fee_schedules

    t0 = time.perf_counter()
    p = _paths(workdir, rows, merchants)
    engine = open_engine(url)
    mcc = pq.read_table(p["mcc"])
    with engine.begin() as conn:
        schedule = ensure_fee_schedules(conn)["standard"]
        ids, codes = mcc["merchant_id"].to_pylist(), mcc["mcc"].to_pylist()
        batch = [{"id": i, "merchant_no": f"B{i:014d}", "kind": "personal", "registered_name": f"基准商户{i}",
                  "legal_person": "张伟", "business": "零售", "mcc": c, "city": "北京", "cycle": "T1",
                  "fee_schedule_id": schedule, "status": "active", "created_at": NOW} for i, c in zip(ids, codes,
                                                                                                  strict=True)]
        for i in range(0, len(batch), 20_000):
            conn.execute(insert(t.merchants), batch[i:i + 20_000])
    tx = pq.read_table(p["tx"])
    base = pq.read_table(p["base"])
    n = tx.num_rows
    day_txt = DAY.isoformat()
    if backend == "sqlite":
        raw = engine.raw_connection()
        cur = raw.cursor()
        cols = [tx[c].to_pylist() for c in ("merchant_id", "external_ref", "kind", "card_type", "amount_fen",
                                            "occurred_at", "card_token")]
        step = 500_000
        for s in range(0, n, step):
            cur.executemany(
                "INSERT INTO transactions (cycle_date, merchant_id, external_ref, terminal_id, kind, card_type, "
                "amount_fen, fee_fen, occurred_at, import_id, card_token) VALUES (?, ?, ?, NULL, ?, ?, ?, 0, ?, 1, ?)",
                [(day_txt, *r) for r in zip(*(c[s:s + step] for c in cols), strict=True)])
        b = [base[c].to_pylist() for c in ("day_ordinal", "merchant_id", "sale_count", "sale_fen", "max_sale_fen")]
        cur.executemany(
            "INSERT INTO risk_features (cycle_date, merchant_id, sale_count, sale_fen, max_sale_fen, round_count, "
            "night_count, credit_count, card_max, under_limit_count, over_mcc_count, void_count, refund_count, "
            "unmatched_count) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 1, 0, 0, 0, 0, 0)",
            [(date.fromordinal(d).isoformat(), m, c, f, x) for d, m, c, f, x in zip(*b, strict=True)])
        cur.executemany("INSERT INTO risk_days (cycle_date, merchants, txn_rows, params_digest, computed_at) "
                        "VALUES (?, 0, 0, 'bench', ?)",
                        [((DAY - timedelta(days=k)).isoformat(), NOW.isoformat()) for k in range(1, BASE_DAYS + 1)])
        raw.commit()
        cur.execute("ANALYZE")
        raw.close()
    else:
        raw = engine.raw_connection()
        dbapi: Any = raw.dbapi_connection
        full = pa.table({"cycle_date": pa.array([DAY] * n, pa.date32()), "merchant_id": tx["merchant_id"],
                         "external_ref": tx["external_ref"], "kind": tx["kind"], "card_type": tx["card_type"],
                         "amount_fen": tx["amount_fen"], "fee_fen": pa.array([0] * n, pa.int64()),
                         "occurred_at": tx["occurred_at"], "import_id": pa.array([1] * n, pa.int32()),
                         "card_token": tx["card_token"]})
        days = pc.cast(pc.cast(pc.subtract(base["day_ordinal"], 719163), pa.int32()), pa.date32())
        zeros = pa.array([0] * base.num_rows, pa.int64())
        feats = pa.table({"cycle_date": days, "merchant_id": base["merchant_id"], "sale_count": base["sale_count"],
                          "sale_fen": base["sale_fen"], "max_sale_fen": base["max_sale_fen"], "round_count": zeros,
                          "night_count": zeros, "credit_count": zeros, "card_max": zeros, "under_limit_count": zeros,
                          "over_mcc_count": zeros, "void_count": zeros, "refund_count": zeros,
                          "unmatched_count": zeros})
        with dbapi.cursor() as cur:
            for table, name in ((full, "transactions"), (feats, "risk_features")):
                for s in range(0, table.num_rows, 1_000_000):
                    buf = io.BytesIO()
                    pcsv.write_csv(table.slice(s, 1_000_000), buf, pcsv.WriteOptions(include_header=False))
                    with cur.copy(f"COPY {name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)") as cp:
                        cp.write(buf.getvalue())
            for k in range(1, BASE_DAYS + 1):
                cur.execute("INSERT INTO risk_days (cycle_date, merchants, txn_rows, params_digest, computed_at) "
                            "VALUES (%s, 0, 0, 'bench', %s)", (DAY - timedelta(days=k), NOW))
        dbapi.commit()
        with dbapi.cursor() as cur:
            dbapi.autocommit = True
            cur.execute("VACUUM ANALYZE transactions")
            cur.execute("VACUUM ANALYZE risk_features")
        raw.close()
    engine.dispose()
    return {"seconds": round(time.perf_counter() - t0, 1)}


# ---- 3. scan ------------------------------------------------------------------------------------------

def _server_cpu(engine: Any) -> tuple[int | None, float]:
    """(the PostgreSQL backend's pid, its CPU seconds so far) when the server runs on this machine."""
    with engine.connect() as conn:
        pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    return pid, _proc_cpu(pid)


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def phase_scan(backend: str, url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from settleguard.db import tables as t
    from settleguard.db.engine import open_engine
    from settleguard.risk.service import load_rules, scan

    engine = open_engine(url)
    rules = load_rules()
    pid, cpu0 = _server_cpu(engine) if backend == "postgresql" else (None, 0.0)
    c0, w0 = time.process_time(), time.perf_counter()
    res = scan(engine, DAY, rules, tz="Asia/Shanghai", now=NOW)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    server = _proc_cpu(pid) - cpu0 if pid is not None else None
    with engine.connect() as conn:
        f = t.risk_features
        sums = conn.execute(select(func.count().filter(f.c.sale_count > 0), func.sum(f.c.sale_count), func.sum(f.c.round_count),
                                   func.sum(f.c.night_count), func.sum(f.c.unmatched_count), func.max(f.c.card_max))
                            .where(f.c.cycle_date == DAY)).one()
    engine.dispose()
    return {"seconds": round(wall, 2), "cpu_s": round(cpu, 2),
            "server_cpu_s": None if server is None else round(server, 2),
            "phases": {k: round(v, 2) for k, v in res.seconds.items()}, "merchants": res.merchants,
            "flagged": len(res.flagged), "cases": len(res.cases_opened), "txn_rows": res.txn_rows,
            "check": [int(x or 0) for x in sums],
            "flagged_rules": _rule_counts([f.rules for f in res.flagged])}


def _rule_counts(rules: list[list[str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rs in rules:
        for r in rs:
            out[r] = out.get(r, 0) + 1
    return dict(sorted(out.items()))


# ---- 4. floor: DuckDB over Parquet ------------------------------------------------------------------------

def phase_floor(workdir: str, rows: int, merchants: int) -> dict[str, Any]:
    import duckdb

    from settleguard.risk.service import load_rules

    rules = load_rules()
    fp = rules.features
    p = _paths(workdir, rows, merchants)
    ends = ", ".join(str(e) for e in fp.round_endings_yuan)
    rnd = f"(amount_fen % {fp.round_multiple_yuan * 100} = 0 OR (amount_fen % 100 = 0 AND (amount_fen // 100) % 1000 IN ({ends})))"
    hour = f"(((occurred_at + {SH_OFFSET_US}) // 3600000000) % 24)"
    night = f"({hour} >= {fp.night_start_hour} AND {hour} < {fp.night_end_hour})"
    under = " OR ".join(f"(amount_fen >= {lo} AND amount_fen < {hi})" for lo, hi in fp.limit_bands_fen())
    mcc_case = ("CASE m.mcc " + " ".join(f"WHEN '{c}' THEN {y * 100}" for c, y in fp.mcc_max_ticket_yuan.items())
                + f" ELSE {fp.mcc_default_max_ticket_yuan * 100} END")
    lo_ord = (DAY - timedelta(days=rules.baseline.days)).toordinal()
    score_terms = []
    for r in rules.rules:
        col = {"round_share": "round_count / NULLIF(sale_count, 0)", "night_share": "night_count / NULLIF(sale_count, 0)",
               "credit_share": "credit_count / NULLIF(sale_count, 0)", "same_card_max": "card_max",
               "under_limit_share": "under_count / NULLIF(sale_count, 0)",
               "over_mcc_share": "over_count / NULLIF(sale_count, 0)", "unmatched_refunds": "unmatched",
               "amount_z": "amount_z", "count_z": "count_z", "silence_active_days": "silence_days",
               "reactivated_after_days": "reactivated_days"}[r.feature]
        score_terms.append(f"CASE WHEN coalesce(sale_count, 0) >= {r.min_sales} AND ({col}) {r.op} {r.threshold} "
                           f"THEN {r.weight} ELSE 0 END")
    b = rules.baseline
    sql = f"""
    WITH tx AS (SELECT * FROM read_parquet('{p["tx"]}')),
    m AS (SELECT * FROM read_parquet('{p["mcc"]}')),
    agg AS (
      SELECT tx.merchant_id, sum(CASE WHEN kind = 1 THEN 1 ELSE 0 END) AS sale_count,
        sum(CASE WHEN kind = 1 THEN amount_fen ELSE 0 END) AS sale_fen,
        max(CASE WHEN kind = 1 THEN amount_fen ELSE 0 END) AS max_sale,
        sum(CASE WHEN kind = 1 AND {rnd} THEN 1 ELSE 0 END) AS round_count,
        sum(CASE WHEN kind = 1 AND {night} THEN 1 ELSE 0 END) AS night_count,
        sum(CASE WHEN kind = 1 AND card_type = 2 THEN 1 ELSE 0 END) AS credit_count,
        sum(CASE WHEN kind = 1 AND ({under}) THEN 1 ELSE 0 END) AS under_count,
        sum(CASE WHEN kind = 1 AND amount_fen > {mcc_case} THEN 1 ELSE 0 END) AS over_count
      FROM tx JOIN m USING (merchant_id) GROUP BY tx.merchant_id),
    cards AS (SELECT merchant_id, max(n) AS card_max FROM (SELECT merchant_id, card_token, count(*) AS n FROM tx
              WHERE kind = 1 AND card_token IS NOT NULL GROUP BY merchant_id, card_token) GROUP BY merchant_id),
    base AS (SELECT * FROM read_parquet('{p["base"]}') WHERE day_ordinal >= {lo_ord}),
    wmax AS (SELECT merchant_id, max(max_sale_fen) AS wmax FROM base GROUP BY merchant_id),
    canc AS (SELECT v.merchant_id, count(*) AS unmatched FROM tx v LEFT JOIN wmax USING (merchant_id)
             LEFT JOIN agg USING (merchant_id)
             WHERE v.kind IN (2, 3, 4) AND NOT EXISTS (SELECT 1 FROM tx s WHERE s.merchant_id = v.merchant_id
               AND s.kind = 1 AND s.amount_fen = v.amount_fen)
               AND (v.kind <> 3 OR v.amount_fen > greatest(coalesce(wmax.wmax, 0), coalesce(agg.max_sale, 0)))
             GROUP BY v.merchant_id),
    med AS (SELECT merchant_id, count(*) AS days, median(sale_fen) AS a_med, median(sale_count) AS c_med,
            max(day_ordinal) AS last_day FROM base GROUP BY merchant_id),
    mad AS (SELECT base.merchant_id, median(abs(sale_fen - a_med)) AS a_mad, median(abs(sale_count - c_med)) AS c_mad
            FROM base JOIN med USING (merchant_id) GROUP BY base.merchant_id),
    feat AS (
      SELECT coalesce(agg.merchant_id, med.merchant_id) AS merchant_id, coalesce(agg.sale_count, 0) AS sale_count,
        agg.round_count, agg.night_count, agg.credit_count, agg.under_count, agg.over_count, cards.card_max,
        coalesce(canc.unmatched, 0) AS unmatched,
        CASE WHEN med.days >= {b.min_days} AND agg.sale_count > 0 THEN (agg.sale_fen - a_med) /
          greatest(1.4826 * a_mad, {b.mad_floor_share} * abs(a_med), {b.mad_floor_yuan * 100}) END AS amount_z,
        CASE WHEN med.days >= {b.min_days} AND agg.sale_count > 0 THEN (agg.sale_count - c_med) /
          greatest(1.4826 * c_mad, {b.mad_floor_share} * abs(c_med), 1) END AS count_z,
        CASE WHEN coalesce(agg.sale_count, 0) = 0 THEN coalesce(med.days, 0) ELSE 0 END AS silence_days,
        CASE WHEN agg.sale_count > 0 AND med.last_day IS NOT NULL THEN {DAY.toordinal()} - med.last_day - 1
          ELSE 0 END AS reactivated_days
      FROM agg FULL JOIN med USING (merchant_id) LEFT JOIN mad USING (merchant_id)
        LEFT JOIN cards USING (merchant_id) LEFT JOIN canc USING (merchant_id))
    SELECT merchant_id, least(100, {' + '.join(score_terms)}) AS score, sale_count, round_count, night_count,
      card_max, unmatched FROM feat
    """
    con = duckdb.connect()
    c0, w0 = time.process_time(), time.perf_counter()
    got = con.execute(sql).fetchall()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    flagged = sum(1 for r in got if r[1] >= rules.flag_score)
    active = [r for r in got if r[2] > 0]
    check = [len(active), sum(r[2] for r in active), sum(r[3] or 0 for r in active),
             sum(r[4] or 0 for r in active), sum(r[6] or 0 for r in got), max((r[5] or 0) for r in active)]
    return {"seconds": round(wall, 2), "cpu_s": round(cpu, 2), "flagged": flagged, "merchants": len(got),
            "check": check, "threads": int(con.execute("SELECT current_setting('threads')").fetchone()[0])}


# ---- orchestration ---------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--merchants", type=int, default=100_000)
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--workdir", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--pg-url", default=os.environ.get("SETTLEGUARD_TEST_PG",
                                                       "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the Parquet files and the SQLite database of an earlier run with the same sizes "
                         "(the SQLite scan then re-scans a scanned day: its cases exist and are not opened again)")
    a = ap.parse_args()
    Path(a.workdir).mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"rows": a.rows, "merchants": a.merchants, "loadavg_before": os.getloadavg(),
                              "python": sys.version.split()[0], "machine": platform.platform(),
                              "nproc": os.cpu_count(), "started": datetime.now(UTC).isoformat()}
    log(f"generate {a.rows:,} rows over {a.merchants:,} merchants")
    if a.reuse and _paths(a.workdir, a.rows, a.merchants)["tx"].exists():
        result["generate"] = {"reused": True}
    else:
        result["generate"] = run_child("phase_generate", workdir=a.workdir, rows=a.rows, merchants=a.merchants,
                                       seed=a.seed)
    log(f"  {result['generate']}")
    log("floor: DuckDB over Parquet")
    result["floor"] = run_child("phase_floor", workdir=a.workdir, rows=a.rows, merchants=a.merchants)
    log(f"  {result['floor']}")
    backends = ("sqlite", "postgresql") if a.backend == "both" else (a.backend,)
    for be in backends:
        schema = f"bench_risk_{os.getpid()}"
        reused = False
        if be == "sqlite":
            db = _paths(a.workdir, a.rows, a.merchants)["db"]
            reused = a.reuse and db.exists()
            for suffix in ("", "-wal", "-shm") if not reused else ():
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{db}"
        else:
            from sqlalchemy import create_engine, text

            admin = create_engine(a.pg_url)
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = _schema_url(a.pg_url, schema)
        try:
            log(f"{be}: load")
            result[f"{be}_load"] = {"reused": True} if reused else run_child(
                "phase_load", backend=be, url=url, workdir=a.workdir, rows=a.rows, merchants=a.merchants)
            log(f"  {result[f'{be}_load']}")
            log(f"{be}: scan (timed)")
            result[be] = run_child("phase_scan", backend=be, url=url)
            result[be]["ratio_to_floor"] = round(result[be]["seconds"] / max(result["floor"]["seconds"], 1e-9), 1)
            log(f"  {result[be]}")
        finally:
            if be == "postgresql" and not a.keep:
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    result["loadavg_after"] = os.getloadavg()
    out = Path(a.workdir) / "risk-result.json"
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print()
    print(f"{'':12} {'seconds':>8} {'cpu s':>8} {'server cpu':>10} {'peak RSS MB':>12} {'x floor':>8} {'flagged':>8}")
    f = result["floor"]
    print(f"{'duckdb floor':12} {f['seconds']:>8} {f['cpu_s']:>8} {'-':>10} {f['peak_rss_mb']:>12} {'1.0':>8} "
          f"{f['flagged']:>8}")
    for be in backends:
        r = result[be]
        print(f"{be:12} {r['seconds']:>8} {r['cpu_s']:>8} {str(r['server_cpu_s'] or '-'):>10} {r['peak_rss_mb']:>12} "
              f"{r['ratio_to_floor']:>8} {r['flagged']:>8}")
    print(f"load average before {result['loadavg_before']}, after {result['loadavg_after']}; {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
