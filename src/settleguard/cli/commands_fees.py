"""``settleguard fees audit|rates``: the fee audit (费率稽核) and a merchant's contracted and effective rates by
month. See docs/fees.md.

Exit codes: 0 audited, no finding; 1 audited, findings (a merchant charged other than contracted, or a rate
changed without a contract); 2 refused or bad arguments.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from settleguard.cli.output import bar, console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime
from settleguard.money import format_yuan

app = typer.Typer(help="费率稽核 Fee audit: fees recomputed from the contract in force, rate changes without a "
                       "contract; contracted and effective rates by month.", no_args_is_help=True)

KIND = {1: "消费 sale", 2: "撤销 void", 3: "退货 refund", 4: "冲正 reversal"}
CARD = {1: "借记卡 debit", 2: "信用卡 credit", 3: "扫码 QR"}


def _pct(ppm: int | None) -> str:
    return "-" if ppm is None else f"{ppm / 10_000:.4g}%"


def _rates_text(r: Any) -> str:
    cap = "" if r.debit_cap_fen is None else f"（封顶 cap {format_yuan(r.debit_cap_fen)}）"
    return (f"借记卡 debit {_pct(r.debit_ppm)}{cap}，信用卡 credit {_pct(r.credit_ppm)}，"
            f"扫码 QR {_pct(r.qr_ppm)}")


def _changed(r: Any) -> str:
    """What a schedule charges other than the contract: '信用卡 credit 0.6% → 0.7%'."""
    a, b = r.contracted, r.charged
    parts = [f"{CARD[c]} {_pct(x)} → {_pct(y)}" for c, x, y in ((1, a.debit_ppm, b.debit_ppm),
                                                               (2, a.credit_ppm, b.credit_ppm), (3, a.qr_ppm, b.qr_ppm))
             if x != y]
    if a.debit_cap_fen != b.debit_cap_fen:
        parts.append(f"借记卡封顶 debit cap {'-' if a.debit_cap_fen is None else format_yuan(a.debit_cap_fen)} → "
                     f"{'-' if b.debit_cap_fen is None else format_yuan(b.debit_cap_fen)}")
    since = f"（自 since {r.first_day}）" if r.first_day else ""
    return "，".join(parts) + since


def _as_json(a: Any) -> dict[str, Any]:
    return {
        "merchant_no": a.merchant_no, "name": a.name, "overcharged_fen": a.overcharged_fen,
        "undercharged_fen": a.undercharged_fen, "transactions": a.transactions, "audited": a.audited,
        "differences": [{"external_ref": d.external_ref, "cycle_date": d.cycle_date.isoformat(), "kind": d.kind,
                         "card_type": d.card_type, "amount_fen": d.amount_fen, "charged_fen": d.charged_fen,
                         "contracted_fen": d.contracted_fen} for d in a.sample],
        "rate_changes_without_contract": [
            {"contract_effective_from": None if r.effective_from is None else r.effective_from.isoformat(),
             "contracted": vars(r.contracted), "charged": vars(r.charged),
             "first_day": None if r.first_day is None else r.first_day.isoformat()} for r in a.drifts],
    }


@app.command("audit")
def audit_cmd(
    ctx: typer.Context,
    start: Annotated[date, typer.Option("--from", help="起始业务日 first business day YYYY-MM-DD", parser=parse_day)],
    end: Annotated[date, typer.Option("--to", help="截止业务日 last business day YYYY-MM-DD", parser=parse_day)],
    merchant: Annotated[str | None, typer.Option("--merchant", help="只稽核一个商户 one merchant only")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """按合同重算每笔手续费 Recompute every transaction's fee from the contract in force; report differences per
    merchant and rate changes that have no contract change behind them."""
    from settleguard.fees.audit import check_period, run
    from settleguard.fees.model import AuditRefused

    rt: Runtime = ctx.obj
    try:
        check_period(start, end)
    except AuditRefused as exc:
        fail(exc.zh, exc.en)
    engine = engine_or_fail(rt)
    try:
        if json_out:
            found = run(engine, start, end, merchant_no=merchant)
        else:
            with bar("稽核 auditing (业务日 business days)", None) as b:
                found = run(engine, start, end, merchant_no=merchant, progress=lambda n, total: b.update(n, total))
    except AuditRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json([_as_json(a) for a in found])
        raise typer.Exit(1 if found else 0)
    if not found:
        console.print(f"业务日 {start} 至 {end}：每笔手续费都与合同一致，没有无合同的费率变更\n"
                      f"Business days {start} to {end}: every fee matches its contract; no rate change without a "
                      "contract")
        return
    over = sum(a.overcharged_fen for a in found)
    under = sum(a.undercharged_fen for a in found)
    console.print(f"[bold]费率稽核 Fee audit[/] 业务日 business days {start} – {end}：{len(found)} 个商户有问题 "
                  f"merchants with findings · 多收 overcharged {format_yuan(over)} · 少收 undercharged "
                  f"{format_yuan(under)}")
    tbl = Table(show_lines=False)
    for col in ("商户 merchant", "名称 name", "差异笔数 differing", "多收 overcharged", "少收 undercharged",
                "无合同的费率变更 rate change without contract"):
        tbl.add_column(col, overflow="fold")
    for a in found:
        drift = "；".join(_changed(r) for r in a.drifts)
        tbl.add_row(escape(a.merchant_no), escape(a.name), f"{a.transactions} / {a.audited}",
                    format_yuan(a.overcharged_fen), format_yuan(a.undercharged_fen), escape(drift) or "-")
    console.print(tbl)
    drifted = [a for a in found if a.drifts]
    if drifted:
        console.print(f"\n[bold]无合同的费率变更 Rate changes without a contract[/]：{len(drifted)} 个商户的费率表实收费率与"
                      f"合同不一致（费率表被直接修改，合同未变更）{len(drifted)} merchants are charged other rates than "
                      "their contract says (the schedule was edited with no contract change). 合同 contracted: "
                      + "；".join(sorted({_rates_text(r.contracted) for a in drifted for r in a.drifts})))
    for a in found[:5]:
        if not a.sample:
            continue
        console.print(f"\n[bold]{escape(a.merchant_no)}[/] 差异交易（前 {len(a.sample)} 笔）differing transactions")
        t = Table()
        for col in ("业务日 day", "参考号 ref", "类型 kind", "卡 card", "金额 amount", "实收 charged", "合同 contracted"):
            t.add_column(col)
        for d in a.sample:
            t.add_row(str(d.cycle_date), escape(d.external_ref), KIND.get(d.kind, str(d.kind)),
                      CARD.get(d.card_type, str(d.card_type)), format_yuan(d.amount_fen), format_yuan(d.charged_fen),
                      format_yuan(d.contracted_fen))
        console.print(t)
    console.print("完整明细 full detail: --json")
    raise typer.Exit(1)


@app.command("rates")
def rates_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Argument(help="商户编号 merchant number")],
    months: Annotated[int, typer.Option("--months", min=1, max=36, help="最近几个月 months back")] = 12,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """每月合同费率与实际费率 A merchant's contracted and effective rate by month and card type."""
    from settleguard.fees.model import AuditRefused
    from settleguard.fees.rates import monthly_rates

    rt: Runtime = ctx.obj
    try:
        rows = monthly_rates(engine_or_fail(rt), merchant, months=months, today=rt.now().astimezone(rt.zone).date())
    except AuditRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        console.print(f"商户 {escape(merchant)} 最近 {months} 个月没有交易 no transactions in the last {months} months")
        return
    tbl = Table(title=f"商户 {escape(merchant)} 月度费率 monthly rates")
    for col in ("月份 month", "卡 card", "消费笔数 sales", "消费金额 sales amount", "手续费 fees", "合同费率 contracted",
                "实际费率 effective"):
        tbl.add_column(col)
    for r in rows:
        flag = "" if r.effective_ppm is None or r.contracted_ppm is None or r.matches else " [red]≠[/]"
        tbl.add_row(r.month, CARD.get(r.card_type, str(r.card_type)), str(r.sales), format_yuan(r.sale_fen),
                    format_yuan(r.fee_fen), r.contracted_text, _pct(r.effective_ppm) + flag)
    console.print(tbl)
    console.print("实际费率 = 当月手续费 ÷ 消费金额（借记卡有封顶时低于合同费率属正常）effective = fees ÷ sales (a debit "
                  "cap makes it lower than the contracted rate)")
