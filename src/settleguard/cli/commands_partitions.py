"""``settleguard db partitions [list|detach|attach]``: the day partitions of transactions on PostgreSQL and their
archive (分区与归档; docs/operations.md). On SQLite they say that partitioning is a PostgreSQL feature."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from settleguard.cli.output import console, engine_or_fail, err, fail, parse_date, print_json
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="分区与归档 Day partitions of transactions (PostgreSQL): list, detach for archive, attach back.",
                  invoke_without_command=True)


def _refused(exc: Exception) -> NoReturn:
    fail(getattr(exc, "zh", ""), getattr(exc, "en", str(exc)), code=2)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _list(rt: Runtime, json_out: bool) -> None:
    from settleguard.ops import partitions as svc

    try:
        found = svc.listing(engine_or_fail(rt))
    except svc.PartitionError as exc:
        _refused(exc)
    if json_out:
        print_json({"partitions": [p.to_dict() for p in found]})
        return
    from rich.table import Table

    table = Table("分区 partition", "业务日 business day", "状态 state", "行数(估) rows (est.)", "大小 size")
    for p in found:
        state = ("已挂载 attached" if p.attached else "已拆离 detached (archive)") if p.day else "默认 default"
        table.add_row(p.name, p.day.isoformat() if p.day else "-", state, f"{p.rows_estimate:,}", _size(p.bytes))
    console.print(table)
    default = next((p for p in found if p.day is None), None)
    if default is not None and default.rows_estimate > 0:
        err.print(f"[bold yellow]注意[/] 默认分区有 {default.rows_estimate:,} 行（应为空），下次导入该日时会移入日分区\n"
                  f"[bold yellow]Note[/] the default partition holds {default.rows_estimate:,} rows (it should be empty); "
                  "the next import of their day moves them into its partition", highlight=False)


@app.callback()
def partitions_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出交易表的日分区（范围、估计行数、大小）。List the day partitions of transactions (range, rows, size)."""
    if ctx.invoked_subcommand is None:
        _list(ctx.obj, json_out)


@app.command("list")
def list_cmd(ctx: typer.Context,
             json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """列出日分区 List the day partitions."""
    _list(ctx.obj, json_out)


@app.command("detach")
def detach_cmd(
    ctx: typer.Context,
    before: Annotated[str, typer.Option("--before", help="拆离此日之前的分区 detach the days before YYYY-MM-DD")],
    yes: Annotated[bool, typer.Option("--yes", help="执行（默认只列出计划） do it (default: show the plan only)")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """拆离已结算且已对账的日分区以便归档（拆离后为普通表，可 pg_dump 后删除）。
    Detach settled and reconciled day partitions before a date for archive (they stay as plain tables)."""
    from settleguard.ops import partitions as svc

    rt: Runtime = ctx.obj
    day = parse_date(before)
    engine = engine_or_fail(rt)
    try:
        res = svc.detach_before(engine, day, now=rt.now(), actor="cli", execute=yes)
    except svc.DetachRefused as exc:
        lines = [f"  {d}: {r.zh} / {r.en}" for d, rs in exc.days.items() for r in rs]
        fail("有业务日尚未结算或对账，未拆离任何分区", "days not settled and reconciled, nothing detached",
             "\n".join(lines), code=2)
    except svc.PartitionError as exc:
        _refused(exc)
    if json_out:
        print_json({"before": day.isoformat(), "executed": yes, "planned": [d.isoformat() for d in res.planned],
                    "detached": [{"day": x.day.isoformat(), "name": x.name, "rows": x.rows, "bytes": x.bytes,
                                  "method": x.method, "commands": svc.archive_commands(engine, x.name)}
                                 for x in res.detached]})
        return
    if not res.planned:
        console.print(f"{day} 之前没有可拆离的分区 no attached day partition before {day}", markup=False)
        return
    if not yes:
        console.print(f"将拆离 would detach {len(res.planned)} 个分区 partition(s): "
                      + ", ".join(d.isoformat() for d in res.planned), markup=False, highlight=False)
        console.print("加 --yes 执行 add --yes to detach", markup=False)
        return
    for x in res.detached:
        console.print(f"已拆离 detached {x.name} ({x.day}, {x.rows:,} 行 rows, {_size(x.bytes)}, {x.method})",
                      markup=False, highlight=False)
        console.print("  归档后删除 archive then drop:", markup=False)
        for c in svc.archive_commands(engine, x.name):
            typer.echo(f"    {c}")  # unwrapped: copied into a shell as they are


@app.command("attach")
def attach_cmd(
    ctx: typer.Context,
    day_text: Annotated[str, typer.Option("--date", help="业务日 business day YYYY-MM-DD")],
) -> None:
    """把已拆离（或 pg_restore 恢复）的日分区挂回。Attach an archived (or restored) day partition back."""
    from settleguard.ops import partitions as svc

    rt: Runtime = ctx.obj
    day = parse_date(day_text)
    try:
        name, rows, moved = svc.attach(engine_or_fail(rt), day, now=rt.now(), actor="cli")
    except svc.PartitionError as exc:
        _refused(exc)
    console.print(f"已挂回 attached {name} ({day}, {rows:,} 行 rows"
                  + (f"，其中 {moved:,} 行来自默认分区 of which {moved:,} moved from the default partition" if moved else "")
                  + ")", markup=False, highlight=False)
