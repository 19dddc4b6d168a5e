"""``settleguard payouts send|list``."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy import select

from settleguard.cli.output import bar, console, parse_date, print_json
from settleguard.cli.runtime import Runtime
from settleguard.db import tables as t
from settleguard.money import format_yuan
from settleguard.payouts.service import send_due

app = typer.Typer(help="出款 Payouts.", no_args_is_help=True)


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option("--as-of", help="出款日 pay date YYYY-MM-DD (default today)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """发送到期出款 Inquire about unclear payouts, then send every payout that is due."""
    rt: Runtime = ctx.obj
    now = rt.now()
    day = parse_date(as_of) if as_of else now.astimezone(ZoneInfo(rt.settings.timezone)).date()
    with bar("出款 sending payouts", None) as b:
        s = send_due(rt.engine, rt.channel, rt.vault, as_of=day, now=now, progress=b.advance)
    if json_out:
        print_json({"sent": s.sent, "inquired": s.inquired, "succeeded": s.succeeded, "succeeded_fen": s.succeeded_fen,
                    "held": s.held, "held_fen": s.held_fen, "retry_scheduled": s.retry_scheduled,
                    "result_unknown": s.unknown, "reasons": dict(s.reasons)})
        return
    tbl = Table(title=f"出款结果 payout results · {day}")
    tbl.add_column("结果 outcome")
    tbl.add_column("笔数 count", justify="right")
    tbl.add_column("金额 amount", justify="right")
    tbl.add_row("已发送 sent", f"{s.sent:,}", "")
    tbl.add_row("已查询 inquired", f"{s.inquired:,}", "")
    tbl.add_row("成功 succeeded", f"{s.succeeded:,}", format_yuan(s.succeeded_fen))
    tbl.add_row("挂账 held", f"{s.held:,}", format_yuan(s.held_fen))
    tbl.add_row("待重试 retry scheduled", f"{s.retry_scheduled:,}", "")
    tbl.add_row("结果未明 result unknown", f"{s.unknown:,}", "")
    console.print(tbl)
    for reason, n in s.reasons.most_common(10):
        console.print(f"  {n:>5} × {reason}")


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="状态 status filter")] = None,
    merchant: Annotated[str | None, typer.Option(help="商户编号 merchant number")] = None,
    limit: Annotated[int, typer.Option(help="最多行数 max rows")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出出款 List payouts."""
    rt: Runtime = ctx.obj
    p, m = t.payouts, t.merchants
    q = (select(p.c.id, m.c.merchant_no, p.c.merchant_id, p.c.cycle_date, p.c.value_date, p.c.amount_fen, p.c.status,
                p.c.idempotency_key, p.c.attempt_count, p.c.last_code, p.c.last_message)
         .join(m, m.c.id == p.c.merchant_id).order_by(p.c.id).limit(limit))
    if status:
        q = q.where(p.c.status == status)
    if merchant:
        q = q.where(m.c.merchant_no == merchant)
    with rt.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    if json_out:
        print_json(rows)
        return
    tbl = Table(title="出款 payouts")
    for col in ("ID", "商户 merchant", "周期 cycle", "出款日 value", "金额 amount", "状态 status", "最近应答 last answer"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(str(r["id"]), r["merchant_no"], str(r["cycle_date"]), str(r["value_date"]),
                    format_yuan(r["amount_fen"]), r["status"], f"{r['last_code'] or ''} {r['last_message'] or ''}")
    console.print(tbl)
