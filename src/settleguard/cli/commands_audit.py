"""``settleguard audit verify|list|head``: the tamper-evident audit trail (审计日志)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from settleguard.audit import model
from settleguard.cli.output import console, err, print_json
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="审计日志 Audit trail: verify the hash chain, list events, export the head.",
                  no_args_is_help=True)


def _event_json(e: model.Event) -> dict[str, Any]:
    return {"id": e.id, "at": model.iso_utc(e.at), "actor": e.actor, "kind": e.kind,
            "subject_type": e.subject_type, "subject_id": e.subject_id, "payload": e.data(),
            "prev_hash": e.prev_hash, "hash": e.hash}


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    expect_head: Annotated[str | None, typer.Option(
        "--expect-head", help="ID:HASH 之前导出的链头 a head exported earlier (audit head)")] = None,
) -> None:
    """校验哈希链：被修改、删除、调换顺序的事件，以及覆盖的出款事件记录。
    Verify the chain: edited, deleted or reordered events and the rows they cover; exit 1 naming the first bad one."""
    from settleguard.audit.service import verify

    rt: Runtime = ctx.obj
    v = verify(rt.engine)
    problem = v.problem
    if problem is None and expect_head:
        from settleguard.audit import repository as repo

        sid, _, h = expect_head.partition(":")
        with rt.engine.connect() as conn:
            kept = repo.by_id(conn, int(sid)) if sid.strip().isdigit() else None
        if kept is None or kept.hash != h.strip():
            problem = model.Problem(int(sid) if sid.strip().isdigit() else 0, model.Fault.EDITED,
                                    f"导出的链头 {sid} 与数据库不一致（链被改写或截断）",
                                    f"the exported head {sid} does not match the database (chain rewritten or truncated)")
    if json_out:
        print_json({"ok": problem is None, "checked": v.checked, "head_id": v.head_id, "head_hash": v.head_hash,
                    "problem": None if problem is None else {"event_id": problem.event_id, "fault": str(problem.fault),
                                                             "zh": problem.zh, "en": problem.en}})
    elif problem is None:
        console.print(f"审计链完整 audit chain intact: {v.checked:,} 个事件 events, head {v.head_id} {v.head_hash}")
    else:
        err.print(f"[bold red]审计链被篡改[/] 第一个问题事件 first bad event: [bold]{problem.event_id}[/]")
        err.print(problem.zh, markup=False, highlight=False)
        err.print(problem.en, markup=False, highlight=False)
    if problem is not None:
        raise typer.Exit(1)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="类型或前缀 kind or prefix, e.g. payout, card.card_rebound")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="对象 TYPE:ID, e.g. payout:12, merchant:3")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出最近的审计事件 List the latest audit events, newest first."""
    from settleguard.audit import repository as repo

    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        events = repo.listing(conn, kind=kind, subject=subject, limit=limit)
    if json_out:
        print_json([_event_json(e) for e in events])
        return
    from settleguard.cli.layout import local, zone_note

    tz = rt.settings.timezone
    tbl = Table(title="审计事件 audit events", caption=zone_note(tz))  # stored and hashed in UTC (see --json)
    for col in ("编号 id", "时间 at", "操作人 actor", "类型 kind", "对象 subject", "内容 payload"):
        tbl.add_column(col)
    for e in events:
        payload = e.payload if len(e.payload) <= 80 else e.payload[:77] + "..."
        subj = f"{e.subject_type}:{e.subject_id}" if e.subject_type else ""
        tbl.add_row(str(e.id), local(e.at, tz), e.actor, e.kind, subj, payload)
    console.print(tbl)


@app.command("head")
def head_cmd(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """打印最新事件的编号和哈希，请另行保存 Print the latest event's id and hash, to keep elsewhere."""
    from settleguard.audit.service import head

    rt: Runtime = ctx.obj
    e = head(rt.engine)
    hid, h = (e.id, e.hash) if e else (0, model.GENESIS)
    if json_out:
        print_json({"id": hid, "hash": h, "at": model.iso_utc(e.at) if e else None})
    else:
        typer.echo(f"{hid}:{h}")
