"""``settleguard worker``, ``settleguard channels status`` and ``settleguard returns import``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from settleguard import labels
from settleguard.cli.commands_payouts import print_send_summary, send_summary_json
from settleguard.cli.layout import local, zone_note
from settleguard.cli.output import bar, console, err, fail, print_json
from settleguard.cli.runtime import Runtime
from settleguard.money import format_yuan

channels_app = typer.Typer(help="出款通道 Payout channels: circuit breakers per bank.", no_args_is_help=True)
returns_app = typer.Typer(help="银行回执 Bank reports: pain.002 status reports, camt.054 returns (退票).",
                          no_args_is_help=True)


def worker_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="只运行一轮 run one cycle and exit")] = False,
    interval: Annotated[float | None, typer.Option(help="每轮间隔秒数 seconds between cycles (默认 default: "
                                                        "worker.interval, 30)", min=0.0)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="每轮输出一行 JSON one JSON line per cycle")] = False,
) -> None:
    """出款工作进程：放行、查卡、查询、发送，循环执行 The payout worker: releases, card checks, inquiries
    and sends, cycle after cycle. PostgreSQL: several may run at once. SQLite: one at a time."""
    from sqlalchemy.engine import make_url

    from settleguard.db.engine import normalise_url
    from settleguard.worker import CycleSummary, WorkerBusy, run, single_worker_lock

    rt: Runtime = ctx.obj
    tz = ZoneInfo(rt.settings.timezone)
    interval = rt.settings.worker_interval if interval is None else interval  # the flag wins (settleguard.toml)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def report(c: CycleSummary) -> None:
        if json_out:
            print_json({**send_summary_json(c.send), "released": c.released.released, "cards_checked": c.cards.checked,
                        "cards_unusable": c.cards.unusable,
                        "file_answers_flagged": c.overdue.flagged if c.overdue else 0})
        else:
            print_send_summary(c.send, f"出款一轮 worker cycle · {local(rt.now(), rt.settings.timezone)} "
                                       f"({zone_note(rt.settings.timezone)})")
            if c.overdue and c.overdue.flagged:
                console.print(f"文件出款超期未回执，已开工单 {c.overdue.flagged:,} 张 file payouts without an answer "
                              f"past due: {c.overdue.flagged:,} case(s) opened", markup=False)

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
        max_cycles=1 if once else None, on_cycle=report, tz=rt.tz, delivery=rt.delivery_settings(),
        recon_case_hours=rt.recon_case_hours, backup=rt.backup_policy(),
        day=_day_config(rt), risk_rules_file=rt.settings.risk_rules, inbox=rt.inbox_config())


def _day_config(rt: Runtime) -> Any:
    """The day's cycle when it is on (daycycle/); a bad ``day_*`` setting stops the worker naming it."""
    from settleguard.daycycle.model import ScheduleError

    if not rt.day_cycle_enabled:
        return None
    try:
        return rt.day_config()
    except ScheduleError as exc:
        fail(f"日终自动运行设置有误 {exc.key}：{exc.zh}", f"bad day cycle setting {exc.key}: {exc.en}", code=2)


@channels_app.command("status")
def channels_status_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """各银行熔断状态与待发出款 Circuit breaker per bank, payouts waiting, recent alerts."""
    from settleguard.cases.overdue import overdue_files
    from settleguard.payouts import repository as repo

    rt: Runtime = ctx.obj
    now = rt.now()
    opts = rt.payout_options()
    with rt.engine.connect() as conn:
        circuits = repo.circuits(conn)
        waiting = repo.due_counts_by_bank(conn)
        alerts = repo.alerts(conn, 10)
        overdue = overdue_files(conn, now, business_days=rt.settings.file_answer_due_business_days,
                                tz=rt.settings.timezone)
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
        print_json({"channel": rt.channel.name, "banks": rows, "alerts": alerts,
                    "file_answers_overdue": [f.to_dict() for f in overdue]})
        return
    from settleguard.cards.bins import load_packaged_bins

    bins = load_packaged_bins()
    tz_name = rt.settings.timezone
    tbl = Table(title=f"出款通道 channel {labels.zh_en(labels.CHANNEL, rt.channel.name)} · 熔断 circuit breakers",
                caption=zone_note(tz_name))
    for col in ("银行 bank", "状态 state", "窗口内故障 faults", "暂停于 opened", "试探于 probe after", "待发 waiting"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(f"{bins.bank_name_zh(r['bank_code']) or ''} {r['bank_code']}".strip(),
                    labels.zh_en(labels.CIRCUIT, r["state"]), str(r["failures"]),
                    local(r["opened_at"], tz_name), local(r["probe_after"], tz_name), f"{r['waiting']:,}")
    console.print(tbl)
    for f in overdue:
        console.print(f"文件出款超期未回执 file answers overdue: pain.001 {f.message_id} · 发出 sent "
                      f"{local(f.sent_at, tz_name)} · 到期 due {local(f.due_at, tz_name)} "
                      f"· {f.payouts:,} 笔 payouts · 已开工单 flagged {f.flagged:,}",
                      markup=False, highlight=False)
    for a in alerts:
        console.print(f"[{local(a['created_at'], tz_name)}] {labels.zh_en(labels.ALERT_KIND, a['kind'])}: {a['message']}",
                      markup=False, highlight=False)


@returns_app.command("import")
def returns_import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="pain.002 或 camt.054 文件 file")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导入银行状态报告或退票通知并处理（整文件原子、可重复导入）Apply a pain.002 status report or a
    camt.054 notification (returns, 退票): atomic, idempotent. 退出码 exit code: 0 applied; 1 applied, but
    the file names references we never sent (listed; ops alert and case opened); 2 refused, nothing changed
    (bad file, OrgnlMsgId not ours, or nothing in it is ours)."""
    from settleguard.cases.service import SystemCases
    from settleguard.channels.iso20022.reports import ReportRejected
    from settleguard.payouts.files import NothingMatched, import_report

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    try:
        with bar(f"导入 importing {file.name}", None) as b:
            s = import_report(rt.engine, file, now=rt.now(), cases=SystemCases(rt.tz), opts=rt.payout_options(),
                              progress=b.advance)
    except NothingMatched as exc:
        fail("文件未涉及任何我们发出的出款，未导入（修正后可重新导入）",
             "the file matches no payout we sent: not imported (it can be imported again after a fix)",
             "\n".join([str(exc), *(u.describe() for u in exc.lines),
                         *([f"… 共 {exc.unknown} 条 {exc.unknown} in all"] if exc.unknown > len(exc.lines) else [])]))
    except ReportRejected as exc:
        fail("文件被拒绝，未做任何更改", "file rejected, nothing changed", str(exc))
    if json_out:
        print_json({"kind": s.kind, "sha256": s.sha256, "statuses": s.statuses, "applied": s.applied,
                    "ignored": s.ignored, "conflicts": s.conflicts, "returned": s.returned,
                    "returned_fen": s.returned_fen, "already_imported": s.already_imported,
                    "unknown": s.unknown, "unknown_lines": [u.to_dict() for u in s.unknown_lines],
                    "case_id": s.case_id, **send_summary_json(s.send)})
        if s.unknown:
            raise typer.Exit(1)
        return
    if s.already_imported:
        console.print(f"该文件已导入过，未做任何更改 already imported ({s.sha256[:12]})")
        return
    console.print(f"{s.kind}: {s.statuses:,} 条 items; 已处理 applied {s.applied:,}; 忽略 ignored {s.ignored:,}; "
                  f"矛盾 conflicts {s.conflicts:,}; 退票 returned {s.returned:,} ({format_yuan(s.returned_fen)})")
    print_send_summary(s.send, "回执处理结果 report results")
    if s.unknown:
        err.print(f"[bold yellow]警告[/] 文件中有 {s.unknown:,} 条我们从未发出的参考号（其余已处理），已告警并开工单 "
                  f"{s.case_id or '-'}\n[bold yellow]Warning[/] the file names {s.unknown:,} reference(s) we never sent "
                  f"(the rest was applied); ops alert raised, case {s.case_id or '-'} opened")
        for u in s.unknown_lines:
            err.print(u.describe(), markup=False, highlight=False)
        if s.unknown > len(s.unknown_lines):
            err.print(f"… 共 {s.unknown:,} 条 {s.unknown:,} in all", markup=False, highlight=False)
        raise typer.Exit(1)
