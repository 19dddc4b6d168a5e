"""``settleguard worker``, ``settleguard channels status`` and ``settleguard returns import``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from settleguard.cli.commands_payouts import print_send_summary, send_summary_json
from settleguard.cli.output import bar, console, fail, print_json
from settleguard.cli.runtime import Runtime
from settleguard.db.engine import normalise_url
from settleguard.money import format_yuan
from settleguard.payouts import repository as repo

channels_app = typer.Typer(help="出款通道 Payout channels: circuit breakers per bank.", no_args_is_help=True)
returns_app = typer.Typer(help="银行回执 Bank reports: pain.002 status reports, camt.054 returns (退票).",
                          no_args_is_help=True)


def worker_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="只运行一轮 run one cycle and exit")] = False,
    interval: Annotated[float, typer.Option(help="每轮间隔秒数 seconds between cycles")] = 30.0,
    json_out: Annotated[bool, typer.Option("--json", help="每轮输出一行 JSON one JSON line per cycle")] = False,
) -> None:
    """出款工作进程：放行、查卡、查询、发送，循环执行 The payout worker: releases, card checks, inquiries
    and sends, cycle after cycle. PostgreSQL: several may run at once. SQLite: one at a time."""
    from settleguard.payouts.worker import CycleSummary, WorkerBusy, run, single_worker_lock

    rt: Runtime = ctx.obj
    tz = ZoneInfo(rt.settings.timezone)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def report(c: CycleSummary) -> None:
        if json_out:
            print_json({**send_summary_json(c.send), "released": c.released.released, "cards_checked": c.cards.checked,
                        "cards_unusable": c.cards.unusable})
        else:
            print_send_summary(c.send, f"出款一轮 worker cycle · {rt.now():%Y-%m-%d %H:%M:%S}")

    url = make_url(normalise_url(rt.settings.db))
    sqlite_file = url.database if url.drivername.startswith("sqlite") and url.database not in (None, ":memory:") else None
    try:
        if sqlite_file:
            with single_worker_lock(Path(f"{sqlite_file}.worker.lock")):
                _run(rt, run, stop, interval, once, report, tz)
        else:
            _run(rt, run, stop, interval, once, report, tz)
    except WorkerBusy as exc:
        fail("SQLite 数据库上已有一个工作进程在运行", "another worker is already running on this SQLite database",
             str(exc), code=3)


def _run(rt: Runtime, run: Any, stop: threading.Event, interval: float, once: bool, report: Any,
         tz: ZoneInfo) -> None:
    run(rt.engine, rt.channel, rt.vault, rt.verifier, clock=rt.now, today=lambda now: now.astimezone(tz).date(),
        stop=stop, interval=interval, opts=rt.payout_options(), cards=rt.card_settings(),
        max_cycles=1 if once else None, on_cycle=report)


@channels_app.command("status")
def channels_status_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """各银行熔断状态与待发出款 Circuit breaker per bank, payouts waiting, recent alerts."""
    rt: Runtime = ctx.obj
    now = rt.now()
    opts = rt.payout_options()
    with rt.engine.connect() as conn:
        circuits = repo.circuits(conn)
        waiting = repo.due_counts_by_bank(conn)
        alerts = repo.alerts(conn, 10)
    banks = sorted(set(circuits) | set(waiting))
    rows: list[dict[str, Any]] = []
    for b in banks:
        c = circuits.get(b)
        state = str(c.state) if c else "closed"
        probe_at = (c.opened_at + opts.breaker.cool_down) if c and c.opened_at and state != "closed" else None
        rows.append({"bank_code": b, "state": state, "failures": c.failures if c else 0,
                     "opened_at": c.opened_at if c else None, "probe_after": probe_at,
                     "allows": c.allows(now, opts.breaker) if c else -1, "waiting": waiting.get(b, 0)})
    if json_out:
        print_json({"channel": rt.channel.name, "banks": rows, "alerts": alerts})
        return
    zh = {"closed": "正常", "open": "已暂停", "half_open": "试探中"}
    tbl = Table(title=f"出款通道 channel {rt.channel.name} · 熔断 circuit breakers")
    for col in ("银行 bank", "状态 state", "窗口内故障 faults", "暂停于 opened", "试探于 probe after", "待发 waiting"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(r["bank_code"], f"{zh.get(r['state'], '')} {r['state']}", str(r["failures"]),
                    str(r["opened_at"] or ""), str(r["probe_after"] or ""), f"{r['waiting']:,}")
    console.print(tbl)
    for a in alerts:
        console.print(f"[{a['created_at']}] {a['kind']}: {a['message']}")


@returns_app.command("import")
def returns_import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="pain.002 或 camt.054 文件 file")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导入银行状态报告或退票通知并处理（整文件原子、可重复导入）Apply a pain.002 status report or a
    camt.054 notification (returns, 退票): atomic, idempotent."""
    from settleguard.channels.iso20022.reports import ReportRejected
    from settleguard.payouts.files import import_report

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    try:
        with bar(f"导入 importing {file.name}", None) as b:
            s = import_report(rt.engine, file, now=rt.now(), opts=rt.payout_options(), progress=b.advance)
    except ReportRejected as exc:
        fail("文件被拒绝，未做任何更改", "file rejected, nothing changed", str(exc))
    if json_out:
        print_json({"kind": s.kind, "sha256": s.sha256, "statuses": s.statuses, "applied": s.applied,
                    "ignored": s.ignored, "conflicts": s.conflicts, "returned": s.returned,
                    "returned_fen": s.returned_fen, "already_imported": s.already_imported,
                    **send_summary_json(s.send)})
        return
    if s.already_imported:
        console.print(f"该文件已导入过，未做任何更改 already imported ({s.sha256[:12]})")
        return
    console.print(f"{s.kind}: {s.statuses:,} 条 items; 已处理 applied {s.applied:,}; 忽略 ignored {s.ignored:,}; "
                  f"矛盾 conflicts {s.conflicts:,}; 退票 returned {s.returned:,} ({format_yuan(s.returned_fen)})")
    print_send_summary(s.send, "回执处理结果 report results")
