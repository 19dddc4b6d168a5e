"""``settleguard history MERCHANT --from D --to D [--json]`` (a merchant's days: volume, failures by category,
holds, anomalies, fee rate) and ``settleguard feedback report [--json]`` (guidance feedback per failure category and
rule: helpful, fixed, median recovery). See docs/history.md.

Exit codes: 0 shown; 2 refused or bad arguments (an unknown merchant, a range backwards or over 366 days)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime
from settleguard.labels import CATEGORY, label
from settleguard.money import format_yuan

feedback_app = typer.Typer(help="处理建议反馈 Guidance feedback: helpful or not, fixed or not, recovery time.",
                           no_args_is_help=True)


def _pct(ppm: int | None) -> str:
    return "-" if ppm is None else f"{ppm / 10_000:.2f}%"


def _cat(code: str) -> str:
    zh, en = CATEGORY.get(code, (code, code))
    return f"{zh} {en}"


def history_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Argument(help="商户编号 merchant number")],
    start: Annotated[date, typer.Option("--from", help="起始日 first day YYYY-MM-DD", parser=parse_day)],
    end: Annotated[date, typer.Option("--to", help="截止日 last day YYYY-MM-DD", parser=parse_day)],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """查看商户历史 A merchant's days: sales and refunds, payout failures by category, holds, risk scores, fee
    rate."""
    from settleguard.history.model import HistoryRefused
    from settleguard.history.service import merchant_history

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    try:
        h = merchant_history(engine, start, end, rt.zone, merchant_no=merchant.strip())
    except HistoryRefused as exc:
        fail(exc.zh, exc.en)
    if json_out:
        print_json(h.as_dict())
        return
    tot = h.totals()
    console.print(f"[bold]{escape(h.merchant_no)}[/] {escape(h.name)} · {start} – {end}\n"
                  f"消费 sales {tot['sales']:,} 笔 · {format_yuan(tot['sale_fen'])} · 退货 refunds "
                  f"{tot['refunds']:,} 笔 · {format_yuan(tot['refund_fen'])} · 手续费 fees "
                  f"{format_yuan(tot['fee_fen'])} · 出款失败 payout failures {tot['failures']} · 挂账 holds "
                  f"{tot['holds']}")
    tbl = Table()
    cols = ["日期 day", "消费笔数 sales", "消费金额 sale amount", "退货 refunds", "退货金额 refund amount",
            "费率 fee rate", "失败 failures", "失败分类 categories", "挂账 holds"]
    if h.has_risk:
        cols.append("风险分 risk score")
    for i, c in enumerate(cols):
        tbl.add_column(c, overflow="fold", no_wrap=i == 0, min_width=10 if i in (0, 7) else None)
    for d in h.days:
        cats = "；".join(f"{label(CATEGORY, c, 'zh')} {n}" for c, n in sorted(d.failures_by_category.items())) or "-"
        row = [d.day.isoformat(), f"{d.sales:,}", format_yuan(d.sale_fen), f"{d.refunds:,}", format_yuan(d.refund_fen),
               _pct(d.fee_ppm), str(d.failures), cats,
               f"{d.holds}（{format_yuan(d.hold_fen)}）" if d.holds else "0"]
        if h.has_risk:
            row.append("-" if d.risk_score is None else f"{d.risk_score}（{', '.join(d.risk_rules)}）")
        tbl.add_row(*(escape(x) for x in row))
    console.print(tbl)
    if h.categories:
        count = {c: sum(d.failures_by_category.get(c, 0) for d in h.days) for c in h.categories}
        console.print("失败分类 failure categories: " + "；".join(escape(f"{_cat(c)} {count[c]}") for c in h.categories))
    if not h.has_risk:
        console.print("未启用风险评分（无风险表），未显示异常列 no risk tables: the anomaly column is left out")
    if h.months:
        mt = Table(title="按月费率 monthly fee rate (合同 contracted / 实际 effective)")
        for c in ("月份 month", "卡 card", "消费金额 sales", "手续费 fees", "合同 contracted", "实际 effective"):
            mt.add_column(c)
        cards = {1: "借记卡 debit", 2: "信用卡 credit", 3: "扫码 QR"}
        for m in h.months:
            mt.add_row(str(m["month"]), cards.get(int(m["card_type"]), str(m["card_type"])), format_yuan(m["sale_fen"]),
                       format_yuan(m["fee_fen"]), _pct(m["contracted_ppm"]), _pct(m["effective_ppm"]))
        console.print(mt)


@feedback_app.command("report")
def report_cmd(ctx: typer.Context,
               json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """按失败分类和规则汇总反馈 Per failure category and rule: feedback marked helpful, payouts fixed after the
    failure, median recovery time."""
    from settleguard.feedback.service import report

    rt: Runtime = ctx.obj
    rows = report(engine_or_fail(rt))
    if json_out:
        print_json([r.as_dict() for r in rows])
        return
    if not rows:
        console.print("还没有失败或反馈 no failures and no feedback yet")
        return
    tbl = Table(title="处理建议效果 How guidance worked")
    for c in ("分类 category", "规则 rule", "反馈 feedback", "有用 helpful", "失败出款 failed payouts",
              "已修复 fixed", "恢复中位数 median recovery", "最近理由 latest reasons"):
        tbl.add_column(c, overflow="fold")
    for r in rows:
        share = "-" if r.helpful_share is None else f"{r.helpful} ({100 * r.helpful_share:.0f}%)"
        fixed = "-" if r.fixed_share is None else f"{r.fixed} ({100 * r.fixed_share:.0f}%)"
        hours = "-" if r.median_recovery_hours is None else f"{r.median_recovery_hours:.1f} 小时 h"
        tbl.add_row(escape(_cat(r.category)), escape(r.rule_id), str(r.feedback), share, str(r.failed_payouts), fixed,
                    hours, escape("；".join(r.reasons)) or "-")
    console.print(tbl)
