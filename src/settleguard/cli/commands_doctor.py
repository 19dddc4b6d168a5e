"""``settleguard doctor``: health checks of this installation (ops/doctor.py), ok / warn / fail each, exit code
by the worst (0 ok, 1 warn, 2 fail)."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard.cli.output import console, print_json
from settleguard.cli.runtime import Runtime

_TIMES = (("last_beat", "最近心跳 last heartbeat"), ("newest", "最近 latest"), ("oldest", "最早 oldest"))
_MARK = {"ok": "[green]正常 ok[/]", "warn": "[yellow]警告 warn[/]", "fail": "[bold red]故障 fail[/]"}


def doctor_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """健康检查 Health checks: 数据库与迁移、卡号密钥、磁盘、时钟、工作进程心跳、通知积压、出款卡单、熔断、备份、对账单
    database and migrations, card key, disk, clock, worker heartbeat, notice backlog, stuck payouts, circuits,
    backups, bank statements. 退出码 exit code: 0 正常 ok, 1 警告 warn, 2 故障 fail. Changes nothing."""
    from rich.markup import escape
    from rich.table import Table

    from settleguard.cli.layout import FOLD, local, zone_note
    from settleguard.ops.doctor import run_checks
    from settleguard.ops.doctor_model import NAMES, exit_code, worst

    rt: Runtime = ctx.obj
    checks = run_checks(rt.doctor_input(), now=rt.now)
    code = exit_code(checks)
    if json_out:
        print_json({"status": str(worst(checks)), "exit_code": code, "checks": [c.to_dict() for c in checks]})
        raise typer.Exit(code)
    tz = rt.settings.timezone
    tbl = Table(title="健康检查 settleguard doctor", show_lines=False, caption=zone_note(tz))
    tbl.add_column("检查 check", no_wrap=True)
    tbl.add_column("结果 result", no_wrap=True)
    tbl.add_column("说明 details", overflow=FOLD)
    for c in checks:
        detail = f"{escape(c.zh)}\n{escape(c.en)}"
        times = [f"{zh_en} {local(c.facts[k], tz)}" for k, zh_en in _TIMES if isinstance(c.facts.get(k), str)]
        if times:
            detail += "\n" + escape(" · ".join(times))
        if c.status != "ok" and (c.hint_zh or c.hint_en):
            detail += f"\n[dim]→ {escape(c.hint_zh)}\n→ {escape(c.hint_en)}[/]"
        zh, en = NAMES.get(c.code, (c.code, c.code))
        tbl.add_row(f"{zh}\n{en}", _MARK[str(c.status)], detail)
    console.print(tbl)
    console.print(f"总体 overall: {_MARK[str(worst(checks))]}")
    raise typer.Exit(code)
