"""``settleguard settle --date D``."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from settleguard.cli.output import console, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime
from settleguard.money import format_yuan


def settle_cmd(
    ctx: typer.Context,
    date_: Annotated[date, typer.Option("--date", parser=parse_day, help="业务日期 business day YYYY-MM-DD")],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """结算一个业务日 Settle one business day: settlements, ledger entries, payouts (idempotent)."""
    from settleguard.db.engine import DatabaseError
    from settleguard.settlement.engine import settle

    rt: Runtime = ctx.obj
    day = date_
    today = rt.now().astimezone(ZoneInfo(rt.settings.timezone)).date()
    if day > today:  # its transactions cannot all be in yet: settling it now would close it too early
        fail(f"业务日期 {day} 在未来（今天是 {today}，北京时间），未结算", f"business day {day} is in the future "
             f"(today is {today} in Beijing); nothing was settled")
    try:
        with console.status(f"结算中 settling {day} ..."):
            r = settle(rt.engine, day, rt.now())
    except DatabaseError as exc:
        fail("无法打开数据库", "cannot open the database", str(exc))
    if json_out:
        print_json({"run_id": r.run_id or None, "cycle_date": day.isoformat(), "merchants_settled": r.merchants_settled,
                    "txn_count": r.txn_count, "net_fen": r.net_fen, "fee_fen": r.fee_fen,
                    "payouts_created": r.payouts_created, "payout_fen": r.payout_fen,
                    "carried_merchants": r.carried_merchants})
        return
    if r.run_id == 0:
        console.print(f"{day} 没有待结算的商户，未做任何更改 nothing to settle for {day}; nothing changed")
        return
    tbl = Table(title=f"结算批次 settlement run #{r.run_id} · {day}")
    tbl.add_column("项目 item")
    tbl.add_column("数值 value", justify="right")
    tbl.add_row("结算商户 merchants settled", f"{r.merchants_settled:,}")
    tbl.add_row("交易笔数 transactions", f"{r.txn_count:,}")
    tbl.add_row("手续费 fees", format_yuan(r.fee_fen))
    tbl.add_row("结算净额 net", format_yuan(r.net_fen))
    tbl.add_row("新建出款 payouts created", f"{r.payouts_created:,} · {format_yuan(r.payout_fen)}")
    tbl.add_row("余额结转 balance carried (net ≤ 0)", f"{r.carried_merchants:,}")
    console.print(tbl)
