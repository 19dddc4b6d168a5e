"""``settleguard statements export MERCHANT_NO --from D --to D --format xlsx|csv [--out FILE] [--json]``: a
merchant's statement (对账单) of business days D..D (docs/statements.md)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime

app = typer.Typer(help="对账单 Merchant statements: transactions, fees, net, payouts, held money.",
                  no_args_is_help=True)


class Fmt(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    merchant_no: Annotated[str, typer.Argument(help="商户编号 merchant no.")],
    start: Annotated[date, typer.Option("--from", parser=parse_day, help="起始业务日 first business day YYYY-MM-DD")],
    end: Annotated[date, typer.Option("--to", parser=parse_day, help="截止业务日 last business day YYYY-MM-DD")],
    fmt: Annotated[Fmt, typer.Option("--format", help="xlsx 或 or csv (UTF-8 BOM, 一个文件分段 one file, sections)")
                   ] = Fmt.xlsx,
    out: Annotated[Path | None, typer.Option(
        "--out", help="输出文件 output file (默认 default statement_<商户编号>_<起>_<止>.<格式> in the current directory)")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导出商户对账单 Export a merchant's statement (xlsx: 汇总 / 交易明细 / 出款 sheets; csv: the same sections)."""
    from settleguard.money import format_yuan
    from settleguard.statements.model import StatementRefused, check_period
    from settleguard.statements.service import export, filename

    rt: Runtime = ctx.obj
    try:
        check_period(start, end)  # before opening the database: bad input changes nothing, creates nothing
    except StatementRefused as exc:
        fail(exc.zh, exc.en)
    target = out or Path(filename(merchant_no.strip() if merchant_no.strip().isalnum() else "merchant", start, end,
                                  fmt.value))
    engine = engine_or_fail(rt)
    try:
        res = export(engine, merchant_no, start, end, fmt.value, target, now=rt.now(), zone=rt.zone)
    except StatementRefused as exc:
        fail(exc.zh, exc.en, code=1)
    except OSError as exc:
        fail(f"无法写入 {target}", f"cannot write {target}", str(exc))
    if json_out:
        print_json(res.to_dict())
        return
    st = res.statement
    t = st.totals
    console.print(f"已导出对账单 statement written: {res.path}（{res.size:,} 字节 bytes）", markup=False, highlight=False)
    console.print(f"{st.merchant['merchant_no']} {st.merchant['registered_name']} · {start} 至 to {end} · "
                  f"{st.lines_written:,} 笔交易 transactions · 净额 net {format_yuan(t.net_fen)} · "
                  f"手续费 fees {format_yuan(t.fee_fen)} · 出款 payouts {format_yuan(st.payout_fen)} · "
                  f"当前挂账 held now {format_yuan(st.held_now_fen)}", markup=False, highlight=False)
