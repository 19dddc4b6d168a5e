"""``settleguard inbox scan|list``: the inbox directories (收件目录; inbox/, docs/operations.md "收件目录 Inbox")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime

if TYPE_CHECKING:
    from settleguard.inbox.model import Arrival

app = typer.Typer(help="收件目录 Inbox: files dropped into the inbox directories, imported by kind.",
                  no_args_is_help=True)


def _table(items: list[Arrival], tz: str, title: str) -> None:
    from rich.table import Table

    from settleguard import labels
    from settleguard.cli.layout import local, zone_note

    tbl = Table(title=title, caption=zone_note(tz))
    for col in ("收到 received", "文件 file", "类型 kind", "结果 result", "业务日 days", "原因 reason"):
        tbl.add_column(col, overflow="fold")
    for a in items:
        kind = labels.zh_en(labels.INBOX_KIND, a.kind) if a.kind else "未识别 not recognised"
        reason = "" if a.reason_zh is None else f"{a.reason_zh}\n{a.reason_en or ''}"
        tbl.add_row(local(a.received_at, tz), a.name, kind, labels.zh_en(labels.INBOX_STATUS, a.status),
                    ", ".join(d.isoformat() for d in a.business_days), reason[:600])
    console.print(tbl)


@app.command("scan")
def scan_cmd(
    ctx: typer.Context,
    directory: Annotated[list[Path] | None, typer.Option(
        "--dir", help="收件目录（可多次给出；默认 inbox_dirs）inbox directory (repeatable; default: inbox_dirs)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """立即扫描一次收件目录（与工作进程的第一步相同）Scan the inbox directories once now (the worker's first step).
    退出码 exit code: 0 nothing refused; 1 some file was refused (in rejected/, reason beside it)."""
    from settleguard.inbox.service import scan

    rt: Runtime = ctx.obj
    if not directory and not rt.settings.inbox_dirs:
        fail("未配置收件目录：设置 inbox_dirs（SETTLEGUARD_INBOX_DIRS）或使用 --dir",
             "no inbox directory configured: set inbox_dirs (SETTLEGUARD_INBOX_DIRS) or give --dir")
    engine_or_fail(rt)
    config = rt.inbox_config(directory or None)
    assert config is not None
    summary = scan(rt.engine, config, now=rt.now(), tz=rt.tz)
    if json_out:
        print_json(summary.as_dict(rt.tz))
    else:
        console.print(f"收件目录扫描 inbox scan：已导入 imported {summary.done}，已拒绝 rejected {summary.rejected}，"
                      f"重复 duplicates {summary.duplicate}，等待写完 still being written {summary.waiting}"
                      + (f"，补完移动 moves finished {summary.finished_moves}" if summary.finished_moves else ""),
                      markup=False, highlight=False)
        for d in summary.busy:
            console.print(f"另一次扫描正在处理 {d}，已跳过 another scan holds {d}: skipped", markup=False, highlight=False)
        if summary.arrivals:
            _table(summary.arrivals, rt.tz, "本次处理的文件 files taken")
    if summary.rejected:
        raise typer.Exit(1)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    day: Annotated[date | None, typer.Option("--date", help="业务日或收到日 YYYY-MM-DD（默认今天）business day or day "
                                                            "received (default: today)", parser=parse_day)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """收件目录收到了什么：某天收到的文件，或涵盖该业务日的文件 What arrived: files received on the day (local
    time) or covering it as a business day."""
    from zoneinfo import ZoneInfo

    from settleguard.inbox import repository
    from settleguard.inbox.service import arrival_dict

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    zone = ZoneInfo(rt.tz)
    d = day or rt.now().astimezone(zone).date()
    since = datetime.combine(d, time(0), zone)
    until = datetime.combine(d + timedelta(days=1), time(0), zone)
    with engine.connect() as conn:
        items = repository.arrivals_for_day(conn, d, since=since, until=until)
    if json_out:
        out: dict[str, Any] = {"date": d.isoformat(), "timezone": rt.tz, "files": [arrival_dict(a, rt.tz)
                                                                                   for a in items]}
        print_json(out)
        return
    if not items:
        console.print(f"{d} 收件目录没有收到文件 no inbox files for {d}", markup=False, highlight=False)
        return
    _table(items, rt.tz, f"收件目录 inbox · {d}")
