"""``settleguard demo``: a realistic week, generated, imported, settled and paid."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from settleguard import labels
from settleguard.cli.output import console, fail, progress
from settleguard.cli.params import parse_day
from settleguard.cli.runtime import Runtime
from settleguard.demo_hooks import DEFAULT_START, Hooks
from settleguard.money import format_yuan

if TYPE_CHECKING:
    from settleguard.demo import DemoSummary


class _RichHooks(Hooks):
    def __init__(self) -> None:
        self._progress = progress()
        self._progress.start()
        self._task: Any = None

    def stage(self, name: str, total: int) -> None:
        self._task = self._progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def done(self) -> None:
        pass

    def stop(self) -> None:
        self._progress.stop()


def demo_cmd(
    ctx: typer.Context,
    merchants: Annotated[int, typer.Option(min=1, help="商户数 merchants")] = 2000,
    days: Annotated[int, typer.Option(min=1, max=366, help="天数 days")] = 7,
    seed: Annotated[int, typer.Option(help="随机种子 seed")] = 42,
    start: Annotated[date, typer.Option(help="首日 first day YYYY-MM-DD", parser=parse_day)] = DEFAULT_START,
    data_dir: Annotated[Path | None, typer.Option(help="交易文件目录 where the day files go")] = None,
    replace_demo: Annotated[bool, typer.Option(
        "--replace-demo", help="替换服务器上以前的演示数据库 replace an earlier demo database on a server "
                               "(PostgreSQL); an SQLite demo file is replaced without it")] = False,
) -> None:
    """演示：生成一周数据并结算出款 Demo: build a demo database (a new or empty one, or its own earlier demo
    database; any other is refused unchanged), then settle and pay a realistic week."""
    from settleguard.demo import DemoRefused, check_target, default_data_dir, masked_url, run_demo

    rt: Runtime = ctx.obj
    t0 = time.monotonic()
    try:
        check_target(rt.settings.db, replace_demo=replace_demo)  # before the key or the engine touch anything
    except DemoRefused as exc:
        fail(exc.zh, exc.en, exc.detail)
    console.print(f"[bold]结算卫士演示 settleguard demo[/] · {merchants:,} 商户 merchants · {days} 天 days · "
                  f"seed {seed} · {escape(masked_url(rt.settings.db))}", highlight=False)
    hooks = _RichHooks()
    try:
        s = run_demo(
            rt.settings.db, merchants=merchants, days=days, seed=seed, start=start,
            data_dir=data_dir or default_data_dir(rt.settings.db), vault=lambda: rt.vault,
            channel_factory=lambda: rt.channel, cutoffs=rt.cutoffs, hooks=hooks, replace_demo=replace_demo,
        )
    except DemoRefused as exc:  # the database changed between the check and the demo
        fail(exc.zh, exc.en, exc.detail)
    finally:
        hooks.stop()
    render(s, time.monotonic() - t0)


def render(s: DemoSummary, seconds: float) -> None:
    runs = Table(title="每日结算 daily settlement")
    for col in ("业务日 day", "商户 merchants", "交易 txns", "手续费 fees", "净额 net", "新建出款 payouts"):
        runs.add_column(col, justify="right")
    for r in s.runs:
        runs.add_row(str(r.cycle_date), f"{r.merchants_settled:,}", f"{r.txn_count:,}", format_yuan(r.fee_fen),
                     format_yuan(r.net_fen), f"{r.payouts_created:,}")
    console.print(runs)

    acct = s.account_totals
    summ = Table(title="汇总 summary")
    summ.add_column("项目 item")
    summ.add_column("数值 value", justify="right")
    summ.add_row("商户 merchants", f"{s.merchants:,}")
    summ.add_row("导入交易 transactions imported", f"{s.transactions:,}")
    summ.add_row("已出款商户 merchants paid", f"{s.merchants_paid:,}")
    summ.add_row("已出款金额 amount paid", format_yuan(acct.get("bank_provisions", 0)))
    summ.add_row("挂账金额 money held", format_yuan(acct.get("merchant_held", 0)))
    summ.add_row("在途金额 money in transit", format_yuan(acct.get("payout_in_transit", 0)))
    summ.add_row("待出款余额 still payable", format_yuan(acct.get("merchant_payable", 0)))
    n_carried, carried_fen = s.carried_negative
    if n_carried:
        summ.add_row("其中结转负余额 of which carried negative", f"{format_yuan(carried_fen)}（{n_carried:,} 商户 merchants）")
    summ.add_row("手续费收入 fee income", format_yuan(acct.get("fee_income", 0)))
    summ.add_row("换卡商户 merchants re-bound", f"{s.rebound:,}"
                 + (f"（{sum(s.rebind_refused.values())} 未换 not re-bound）" if s.rebind_refused else ""))
    summ.add_row("换卡后重新出款 released and re-paid", f"{s.released:,} · {format_yuan(s.repaid_fen)}")
    summ.add_row("账务核对 ledger check", "平衡 balanced" if s.ledger_problems == 0 else f"{s.ledger_problems} 问题 problems")
    summ.add_row("耗时 elapsed", f"{seconds:.1f} s")
    console.print(summ)
    if n_carried:
        from settleguard.cli.commands_ledger import carried_note

        console.print(carried_note(n_carried, carried_fen), highlight=False)

    st = Table(title="出款状态 payouts by status")
    for col in ("状态 status", "笔数 count", "金额 amount"):
        st.add_column(col, justify="right")
    for status, (n, amount) in sorted(s.payouts_by_status.items()):
        st.add_row(labels.zh_en(labels.PAYOUT_STATUS, status), f"{n:,}", format_yuan(amount))
    console.print(st)

    fails = Table(title="失败原因 failures by reason (attempts)")
    for col in ("应答码 code", "银行信息 bank message", "次数 count"):
        fails.add_column(col)
    for code, msg, n in s.failures:
        fails.add_row(code, msg, f"{n:,}")
    console.print(fails)
    if s.send.categories:
        cats = Table(title="失败分类 failures by category (diagnosis)")
        for col in ("分类 category", "次数 count"):
            cats.add_column(col)
        for cat, n in s.send.categories.most_common():
            cats.add_row(labels.zh_en(labels.CATEGORY, cat), f"{n:,}")
        console.print(cats)
    for reason, n in s.rebind_refused.most_common(5):
        console.print(f"未换卡 not re-bound: {n} × {reason}")
    console.print(f"交易文件 day files: {s.files[0].parent}" if s.files else "")
