"""API load benchmark: mixed reads against ``settleguard serve`` on PostgreSQL, open loop at a fixed rate.

Not a unit test. Run ``python bench/api_load.py`` (``--rate``, ``--seconds``, ``--merchants``; ``--help``).

1. setup (not timed, a child process): a fresh PostgreSQL schema (dropped at the end unless ``--keep``),
   migrated, with N merchants (default 100,000), each with an active settlement card (every tenth also a
   replaced one) and one payout of 2026-11-20 in a mixed status — 80 % succeeded, 5 % held (户名不符),
   5 % retry_scheduled (bank busy), 3 % needs_review (risk block), 3 % submitted, 2 % result_unknown,
   2 % created — with its status events and send attempt (code, message, diagnosis category and rule as
   the payout service records them), written with set-based SQL (generate_series) into the same tables
   (``db.tables``), then VACUUM ANALYZE (what autovacuum leaves on a live database); one operator and
   ``--merchant-users`` merchant users (argon2id) with API tokens through ``access.service``;
2. the server: ``python -m settleguard --db URL serve --workers N`` (the command operators run; N server
   processes, default 1) in a child process;
3. the load (a child process): aiohttp, open loop — request i is sent at t0 + i / rate whatever the
   answers before it — for ``--warmup`` seconds (not counted) and then ``--seconds``; the mix: operator
   payout lists filtered by status / merchant number / category with offsets, payout and merchant
   details, diagnose, /metrics; merchant users' own lists and details and another merchant's payout
   (must be 404). Latency is measured from the request's scheduled time to the end of the answer (so
   a late client counts against the server, no coordinated omission); ``service`` latency from the
   actual send is reported too.

Prints a table and writes ``<workdir>/api-load-result.json``. Target (issue 7): p99 <= 50 ms and no
error (a transport error, a timeout or an unexpected status); the exit status is 1 when missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchkit import log as _log
from benchkit import run_child

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
VALUE_DATE = date(2026, 11, 23)
CREATED = datetime(2026, 11, 21, 3, tzinfo=UTC)
SENT = datetime(2026, 11, 23, 1, tzinfo=UTC)
TARGET_P99_MS = 50.0
# client connections: requests beyond them wait in the client, still timed from their scheduled time
# (httpx's pool costs grow with its connections: at 500 the generator used most of a core)
CONNECTIONS = 64
PASSWORD = "bench-correct-horse"
# (n % 100 below, status, attempt outcome, code, message): the payout mix
MIX = [
    (80, "succeeded", "succeeded", "0000", "交易成功"),
    (85, "held", "failed", "3031", "账号户名不符"),
    (90, "retry_scheduled", "failed", "2000", "银行系统繁忙，请稍后重试"),
    (93, "needs_review", "failed", "3999", "交易被风控拦截"),
    (96, "submitted", None, None, None),
    (98, "result_unknown", "unknown", None, "连接超时"),
    (100, "created", None, None, None),
]
# the request mix: (weight, kind); "mer_*" are sent with a merchant user's token
# (/metrics at 1 %, 2 scrapes/s at 200 requests/s, is still far more than a Prometheus server's one per 15 s)
REQUESTS = [
    (24, "list_status"), (5, "list_merchant_no"), (5, "list_category"), (15, "payout_show"),
    (10, "merchant_show"), (10, "diagnose"), (1, "metrics"),
    (10, "mer_list"), (10, "mer_payout_show"), (5, "mer_merchant_show"), (5, "mer_other_payout"),
]


# ---- setup ------------------------------------------------------------------------------------------


def _status_case(column: str) -> str:
    """A SQL CASE over ``n % 100`` picking ``column`` (1: status, 2: outcome, 3: code, 4: message) of MIX."""
    def lit(v: Any) -> str:
        return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"
    idx = {"status": 1, "outcome": 2, "code": 3, "message": 4}[column]
    return "CASE " + " ".join(f"WHEN mod(n, 100) < {row[0]} THEN {lit(row[idx])}" for row in MIX) + " END"


def phase_setup(url: str, merchants: int, merchant_users: int) -> dict[str, Any]:
    """N merchants, cards and a day of payouts with events and attempts: set-based SQL, one transaction."""
    from settleguard.access.model import Role
    from settleguard.access.service import add_user, issue_token
    from settleguard.db.engine import open_engine
    from settleguard.diagnosis import classify
    from settleguard.merchants.repository import ensure_fee_schedules

    t0 = time.perf_counter()
    engine = open_engine(url)
    t_migrate = time.perf_counter() - t0
    diag = {code: classify("allinpay", code, message) for _, _, _, code, message in MIX if code and code != "0000"}
    t1 = time.perf_counter()
    with engine.begin() as conn:
        schedule = ensure_fee_schedules(conn)["small_micro"]
        sql = conn.exec_driver_sql
        sql("CREATE TEMP TABLE bench_n ON COMMIT DROP AS SELECT n, 100 + mod(n * 7919, 9999900) AS amount, "
            f"{_status_case('status')} AS status, {_status_case('outcome')} AS outcome, {_status_case('code')} AS code, "
            f"{_status_case('message')} AS message FROM generate_series(1, %(rows)s) AS n", {"rows": merchants})
        sql("ALTER TABLE bench_n ADD COLUMN category varchar(32), ADD COLUMN rule_id varchar(64), "
            "ADD COLUMN decision varchar(16)")
        for code, d in diag.items():
            sql("UPDATE bench_n SET category = %(c)s, rule_id = %(r)s, decision = %(d)s WHERE code = %(code)s",
                {"c": str(d.category), "r": d.rule, "d": str(d.decision), "code": code})
        sql("UPDATE bench_n SET category = 'result_unknown', decision = 'inquire' WHERE outcome = 'unknown'")
        sql("INSERT INTO merchants (id, merchant_no, kind, registered_name, legal_person, business, mcc, city, cycle, "
            "fee_schedule_id, status, created_at) SELECT n, 'B' || lpad(n::text, 14, '0'), 'personal', "
            "'基准测试商户' || n, '张伟', '便利店', '5499', '北京', 'T1', %(s)s, 'active', %(at)s FROM bench_n",
            {"s": schedule, "at": CREATED})
        card = ("INSERT INTO settlement_accounts (id, merchant_id, account_kind, holder_name, bank_code, bank_name, "
                "card_type, pan_masked, pan_cipher, pan_nonce, key_version, status, bound_at, replaced_at, card_status, "
                "verified_at) SELECT {id}, n, 'personal', '张伟', 'ICBC', '中国工商银行', 'DC', "
                "'622202******' || lpad(mod(n, 10000)::text, 4, '0'), decode(md5(n::text), 'hex'), "
                "substring(decode(md5('x' || n), 'hex') from 1 for 12), 1, {status}, %(at)s, {replaced}, 'normal', %(at)s "
                "FROM bench_n {where}")
        # a random-looking blob stands in for the sealed card number (never opened by the API)
        sql(card.format(id="n", status="'active'", replaced="NULL", where=""), {"at": CREATED})
        sql(card.format(id="%(rows)s + n", status="'replaced'", replaced="%(at)s", where="WHERE mod(n, 10) = 0"),
            {"at": CREATED, "rows": merchants})
        sql("INSERT INTO payouts (id, merchant_id, cycle_date, value_date, amount_fen, currency, status, "
            "idempotency_key, account_id, attempt_count, next_attempt_at, last_code, last_message, created_at, "
            "updated_at, instruction_no, category) SELECT n, n, %(day)s, %(vd)s, amount, 'CNY', status, "
            "'SG20261120M' || n, n, CASE WHEN outcome IS NULL AND status = 'created' THEN 0 ELSE 1 END, "
            "CASE WHEN status = 'retry_scheduled' THEN %(sent)s + interval '30 minutes' END, code, message, "
            "%(at)s, CASE WHEN status = 'created' THEN %(at)s ELSE %(sent)s END, 0, category FROM bench_n",
            {"day": DAY, "vd": VALUE_DATE, "sent": SENT, "at": CREATED})
        ev = "INSERT INTO payout_events (payout_id, from_status, to_status, reason, created_at) "
        sql(ev + "SELECT n, NULL, 'created', 'settlement run 1 (2026-11-20)', %(at)s FROM bench_n", {"at": CREATED})
        sql(ev + "SELECT n, 'created', 'submitted', '实时出款 sent', %(sent)s FROM bench_n WHERE status <> 'created'",
            {"sent": SENT})
        sql(ev + "SELECT n, 'submitted', CASE WHEN outcome = 'succeeded' THEN 'succeeded' WHEN outcome = 'unknown' "
            "THEN 'result_unknown' ELSE 'failed' END, coalesce(code || ' ', '') || coalesce(message, ''), %(sent)s "
            "FROM bench_n WHERE outcome IS NOT NULL", {"sent": SENT})
        sql(ev + "SELECT n, 'failed', status, 'diagnosis ' || category || ': ' || decision, %(sent)s FROM bench_n "
            "WHERE outcome = 'failed'", {"sent": SENT})
        sql("INSERT INTO payout_attempts (payout_id, attempt_no, kind, idempotency_key, channel, account_id, "
            "amount_fen, requested_at, responded_at, outcome, code, message, raw_response, category, rule_id, "
            "decision) SELECT n, 1, 'send', 'SG20261120M' || n, 'allinpay', n, amount, %(sent)s, "
            "CASE WHEN outcome IS NOT NULL THEN %(sent)s END, outcome, code, message, "
            "CASE WHEN code IS NOT NULL THEN '{\"RET_CODE\":\"' || code || '\"}' END, category, rule_id, decision "
            "FROM bench_n WHERE status <> 'created' ORDER BY n", {"sent": SENT})
        counts = dict(sql("SELECT status, count(*) FROM payouts GROUP BY status").all())
    t_rows = time.perf_counter() - t1
    t2 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM too: the visibility map a live database's autovacuum keeps (index-only counts)
        conn.exec_driver_sql("VACUUM ANALYZE")
        # and the checkpoint a live database would have had long since: without it the bulk load's dirty
        # pages are flushed by a checkpoint during the measured minute
        conn.exec_driver_sql("CHECKPOINT")
    t_analyze = time.perf_counter() - t2
    t3 = time.perf_counter()
    tokens: dict[str, Any] = {}
    add_user(engine, username="bench-oper", password=PASSWORD, role=Role.OPERATOR, merchant_no=None,
             display_name="基准运营", now=SENT, actor="bench")
    tokens["operator"] = issue_token(engine, username="bench-oper", name="bench", now=SENT, actor="bench").token
    step = max(1, merchants // max(1, merchant_users))
    tokens["merchants"] = []
    for i in range(merchant_users):
        mid = 1 + i * step
        if mid > merchants:
            break
        name = f"bench-m{mid}"
        add_user(engine, username=name, password=PASSWORD, role=Role.MERCHANT, merchant_no=f"B{mid:014d}",
                 display_name=name, now=SENT, actor="bench")
        tokens["merchants"].append([mid, issue_token(engine, username=name, name="bench", now=SENT,
                                                     actor="bench").token])
    t_users = time.perf_counter() - t3
    engine.dispose()
    return {"payouts_by_status": counts, "migrate_s": round(t_migrate, 2), "rows_s": round(t_rows, 2),
            "analyze_s": round(t_analyze, 2), "users_s": round(t_users, 2), "tokens": tokens}


# ---- load -------------------------------------------------------------------------------------------


def _plan(n: int, merchants: int, own: list[list[Any]], seed: int) -> list[dict[str, Any]]:
    """``n`` requests (method, path, params, body, token role, expected status), drawn with ``seed``."""
    import random

    rnd = random.Random(seed)
    kinds = [k for w, k in REQUESTS for _ in range(w)]
    statuses = ["held", "retry_scheduled", "needs_review", "succeeded", "submitted", "result_unknown"]
    categories = ["card_info_error", "system_or_network_fault", "risk_or_compliance_block", "result_unknown"]
    out = []
    for _ in range(n):
        kind = rnd.choice(kinds)
        mid, tok = own[rnd.randrange(len(own))]
        r: dict[str, Any] = {"kind": kind, "method": "GET", "params": None, "json": None, "token": "operator",
                             "expect": 200}
        if kind == "list_status":
            r["path"] = "/api/v1/payouts"
            r["params"] = {"status": rnd.choice(statuses), "limit": 50, "offset": 50 * rnd.randrange(5)}
        elif kind == "list_merchant_no":
            r["path"] = "/api/v1/payouts"
            r["params"] = {"merchant_no": f"B{rnd.randint(1, merchants):014d}"}
        elif kind == "list_category":
            r["path"] = "/api/v1/payouts"
            r["params"] = {"category": rnd.choice(categories), "limit": 20}
        elif kind == "payout_show":
            r["path"] = f"/api/v1/payouts/{rnd.randint(1, merchants)}"
            r["params"] = {"lang": rnd.choice(["zh", "en"])}
        elif kind == "merchant_show":
            r["path"] = f"/api/v1/merchants/{rnd.randint(1, merchants)}"
        elif kind == "diagnose":
            code, message = rnd.choice([("3031", "账号户名不符"), ("3008", "余额不足"), (None, "收款账户已冻结"),
                                        ("2000", "银行系统繁忙，请稍后重试")])
            r.update(method="POST", path="/api/v1/diagnose",
                     json={"scheme": "allinpay", "code": code, "message": message, "lang": "zh"})
        elif kind == "metrics":
            r["path"] = "/metrics"
        else:
            r["token"] = tok
            if kind == "mer_list":
                r["path"] = "/api/v1/payouts"
            elif kind == "mer_payout_show":
                r["path"] = f"/api/v1/payouts/{mid}"  # payout n is merchant n's
            elif kind == "mer_merchant_show":
                r["path"] = f"/api/v1/merchants/{mid}"
            else:
                other = mid % merchants + 1
                r.update(path=f"/api/v1/payouts/{other}", expect=404)
        out.append(r)
    return out


def phase_load(base_url: str, tokens: dict[str, Any], merchants: int, rate: float, seconds: float, warmup: float,
               seed: int, server_pid: int, pg_port: int) -> dict[str, Any]:
    """Open-loop load at ``rate`` requests/s; latencies of the requests after the warm-up."""
    import asyncio

    import aiohttp
    import psutil

    n_warm, n_main = int(warmup * rate), int(seconds * rate)
    plan = _plan(n_warm + n_main, merchants, tokens["merchants"], seed)
    server = psutil.Process(server_pid)
    procs = [server, *server.children(recursive=True)]

    def cpu() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())

    def backends() -> dict[int, float]:
        """CPU seconds of the PostgreSQL backends serving the server's connections (by client port)."""
        ports = {c.laddr.port for p in procs if p.is_running() for c in p.net_connections("tcp")
                 if c.raddr and c.raddr.port == pg_port}
        out = {}
        for b in psutil.process_iter(["name", "username"]):
            try:
                if b.info["username"] != "postgres":
                    continue
                if any(c.raddr and c.raddr.port in ports for c in b.net_connections("tcp")):
                    out[b.pid] = sum(b.cpu_times()[:2])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    async def run() -> dict[str, Any]:
        records: list[tuple[int, str, float, float, int | str]] = []
        # aiohttp, not httpx: at 60 requests/s httpx's async client used 93 % of a core here (the generator,
        # not the server, set the pace); aiohttp's client costs a fraction of that (docs/benchmarks.md)
        connector = aiohttp.TCPConnector(limit=CONNECTIONS, ttl_dns_cache=None)
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=timeout) as client:
            loop = asyncio.get_running_loop()
            marks: dict[str, Any] = {}

            async def one(i: int, req: dict[str, Any], at: float) -> None:
                token = tokens["operator"] if req["token"] == "operator" else req["token"]
                start = loop.time()
                try:
                    async with client.request(req["method"], req["path"], params=req["params"], json=req["json"],
                                              headers={"Authorization": f"Bearer {token}"}) as resp:
                        await resp.read()
                        outcome: int | str = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    outcome = type(exc).__name__
                end = loop.time()
                records.append((i, req["kind"], end - at, end - start, outcome))

            def take_start_marks() -> None:
                marks["client0"], marks["load0"] = time.process_time(), os.getloadavg()
                marks["cpu0"], marks["wall0"] = cpu(), time.perf_counter()
                marks["pg0"] = backends()

            tasks = []
            t0 = loop.time() + 0.2
            for i, req in enumerate(plan):
                at = t0 + i / rate
                if i == n_warm:
                    # on a thread: reading every process's connections (psutil) takes a few hundred ms, and
                    # the requests due meanwhile must still be sent on time
                    start_marks = asyncio.create_task(asyncio.to_thread(take_start_marks))
                delay = at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, req, at)))
            last_sent = loop.time()
            await asyncio.gather(*tasks, start_marks)
            marks["cpu1"], marks["wall1"], marks["pg1"] = cpu(), time.perf_counter(), backends()
            marks["client1"] = time.process_time()
            marks["load1"] = os.getloadavg()
            marks["send_lag_s"] = last_sent - (t0 + (len(plan) - 1) / rate)
            marks["main_t0"], marks["end"] = t0 + n_warm / rate, loop.time()
        return {"records": records, "marks": marks}

    got = asyncio.run(run())
    recs = [r for r in got["records"] if r[0] >= n_warm]
    m = got["marks"]
    expected = {i: plan[i]["expect"] for i in range(len(plan))}
    errors: dict[str, int] = {}
    for i, kind, _, _, outcome in recs:
        if outcome != expected[i]:
            key = f"{kind}: {outcome}"
            errors[key] = errors.get(key, 0) + 1

    def pct(values: list[float]) -> dict[str, float]:
        values = sorted(values)
        if not values:
            return {}
        def q(p: float) -> float:
            return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1)
        return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": round(1000 * values[-1], 1)}

    by_kind = {}
    for _, kind in REQUESTS:
        mine = [r for r in recs if r[1] == kind]
        by_kind[kind] = {"n": len(mine), **pct([r[2] for r in mine])}
    wall = m["end"] - m["main_t0"]
    # the slowest seconds (by scheduled time): a stall shows as one second with many slow answers
    per_second: dict[int, list[float]] = {}
    for i, _, lat, _, _ in recs:
        per_second.setdefault(int((i - n_warm) / rate), []).append(lat)
    worst = sorted(((round(1000 * max(v), 1), sec, len([x for x in v if x > 0.05])) for sec, v in per_second.items()),
                   reverse=True)[:5]
    return {"requests": len(recs), "warmup_requests": n_warm, "latency_ms": pct([r[2] for r in recs]),
            "service_latency_ms": pct([r[3] for r in recs]), "by_kind": by_kind, "errors": errors,
            "error_count": sum(errors.values()), "achieved_rps": round(len(recs) / wall, 1),
            "send_lag_ms": round(1000 * m["send_lag_s"], 1),
            "server_cpu_ms_per_request": round(1000 * (m["cpu1"] - m["cpu0"]) / max(1, len(recs)), 2),
            # backends that ended during the run are missed: a lower bound
            "pg_backend_cpu_ms_per_request": round(1000 * sum(v - m["pg0"].get(k, 0.0) for k, v in m["pg1"].items())
                                                   / max(1, len(recs)), 2),
            "client_cpu_util": round((m["client1"] - m["client0"]) / (m["wall1"] - m["wall0"]), 2),
            "server_cpu_s": round(m["cpu1"] - m["cpu0"], 1), "server_cpu_util": round(
                (m["cpu1"] - m["cpu0"]) / (m["wall1"] - m["wall0"]), 2),
            "load_at_start": m["load0"], "load_at_end": m["load1"],
            "worst_seconds": [{"second": sec, "max_ms": mx, "over_50ms": n} for mx, sec, n in worst]}


# ---- orchestration ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _schema_sql(base_url: str, sql: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def _pg_server(url: str) -> dict[str, Any]:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        settings = dict(conn.exec_driver_sql(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
            "'max_connections', 'random_page_cost', 'effective_cache_size', 'synchronous_commit')").all())
    engine.dispose()
    return {"version": version, "settings": settings}


def _start_server(url: str, port: int, workers: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "settleguard", "--db", url, "serve", "--port", str(port), "--workers", str(workers)]
    log = open(workdir / "api-load-server.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    import httpx

    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}); see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError(f"the server did not start in 60 s; see {log.name}")
        time.sleep(0.2)


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import aiohttp
    import sqlalchemy
    import uvicorn

    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "aiohttp": aiohttp.__version__,
            "uvicorn": uvicorn.__version__, "sqlalchemy": sqlalchemy.__version__, "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--merchants", type=int, default=100_000, help="merchants, each with a card and a payout")
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds at the same rate before, not counted")
    ap.add_argument("--workers", type=int, default=1, help="server processes (settleguard serve --workers)")
    ap.add_argument("--merchant-users", type=int, default=200, help="merchant users with tokens")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)")
    args = ap.parse_args(argv)
    if args.merchants < 2 or args.rate <= 0 or args.seconds <= 0 or args.workers < 1 or args.merchant_users < 1:
        ap.error("--merchants >= 2, --rate > 0, --seconds > 0, --workers >= 1, --merchant-users >= 1")
    from sqlalchemy.engine import make_url

    from settleguard.db.engine import normalise_url

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "params": {k: v for k, v in vars(args).items() if k not in ("workdir", "pg_url")},
                               "machine": _machine()}
    m = results["machine"]
    _log(f"machine: {m['nproc']} CPUs ({m['cpu']}), load {m['loadavg_at_start']}")
    base = normalise_url(args.pg_url)
    results["postgres"] = _pg_server(base)
    schema = f"bench_api_{os.getpid()}"
    _schema_sql(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    server: subprocess.Popen[bytes] | None = None
    try:
        _log(f"setup: schema {schema}, {args.merchants:,} merchants, cards, payouts, users (not timed) ...")
        setup = run_child("phase_setup", url=url, merchants=args.merchants, merchant_users=args.merchant_users)
        tokens = setup.pop("tokens")
        results["setup"] = setup
        _log(f"setup: rows {setup['rows_s']} s, VACUUM ANALYZE {setup['analyze_s']} s, users {setup['users_s']} s; "
             f"payouts {setup['payouts_by_status']}")
        port = _free_port()
        server = _start_server(url, port, args.workers, workdir)
        _log(f"server: pid {server.pid}, {args.workers} worker(s) on port {port}; load {os.getloadavg()}")
        _log(f"load: {args.rate:g} requests/s for {args.warmup:g} s warm-up + {args.seconds:g} s ...")
        load = run_child("phase_load", base_url=f"http://127.0.0.1:{port}", tokens=tokens, merchants=args.merchants,
                         rate=args.rate, seconds=args.seconds, warmup=args.warmup, seed=args.seed,
                         server_pid=server.pid, pg_port=make_url(base).port or 5432)
        results["load"] = load
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            _log(f"kept schema {schema}: {url}")
        else:
            _schema_sql(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    results["loadavg_at_end"] = os.getloadavg()
    lat = load["latency_ms"]
    ok = lat["p99"] <= TARGET_P99_MS and load["error_count"] == 0
    results["summary"] = {"p99_ms": lat["p99"], "target_p99_ms": TARGET_P99_MS, "errors": load["error_count"],
                          "pass": ok}
    print()
    print(f"settleguard API load: {args.rate:g} requests/s open loop for {args.seconds:g} s (+{args.warmup:g} s "
          f"warm-up), {args.merchants:,} merchants on PostgreSQL {results['postgres']['version']}, "
          f"{args.workers} uvicorn worker(s); {m['nproc']} CPUs, load {load['load_at_start'][0]:.2f} at start, "
          f"{load['load_at_end'][0]:.2f} at end")
    print(f"{'request':<22}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, s in load["by_kind"].items():
        if s["n"]:
            print(f"{kind:<22}{s['n']:>7}{s['p50']:>9.1f}{s['p95']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}")
    print(f"{'all':<22}{load['requests']:>7}{lat['p50']:>9.1f}{lat['p95']:>9.1f}{lat['p99']:>9.1f}{lat['max']:>9.1f}")
    sv = load["service_latency_ms"]
    print(f"{'all (from actual send)':<22}{load['requests']:>7}{sv['p50']:>9.1f}{sv['p95']:>9.1f}{sv['p99']:>9.1f}"
          f"{sv['max']:>9.1f}")
    print(f"achieved {load['achieved_rps']} requests/s; errors {load['error_count']} {load['errors'] or ''}; "
          f"server CPU {load['server_cpu_util']:.0%} of one core; client send lag at the end {load['send_lag_ms']} ms")
    print(f"CPU per request: server {load['server_cpu_ms_per_request']} ms, its PostgreSQL backends "
          f">= {load['pg_backend_cpu_ms_per_request']} ms; load generator {load['client_cpu_util']:.0%} of one core")
    print("slowest seconds: " + ", ".join(f"s{w['second']} max {w['max_ms']} ms ({w['over_50ms']} > 50 ms)"
                                          for w in load["worst_seconds"]))
    print(f"target p99 <= {TARGET_P99_MS:g} ms and no error: {'PASS' if ok else 'FAIL'}")
    out = workdir / "api-load-result.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
