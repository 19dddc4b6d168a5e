"""``settleguard demo``: a realistic week, generated, imported, settled and paid."""

from __future__ import annotations

import time
from collections.abc import Mapping
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
    _fee_audit(s)
    if getattr(s, "risk", None) is not None:
        _risk(s.risk)
    if s.recon is not None:
        _recon(s.recon)
    if s.terminals is not None:
        _terminals(s.terminals)
    for reason, n in s.rebind_refused.most_common(5):
        console.print(f"未换卡 not re-bound: {n} × {reason}")
    console.print(f"交易文件 day files: {s.files[0].parent}" if s.files else "")


def _fee_audit(s: Any) -> None:
    """What the fee audit found (issue 22): the credit rate the demo raised in a schedule with no contract."""
    over = sum(a.overcharged_fen for a in s.fee_audit)
    drifted = [a for a in s.fee_audit if a.drifts]
    if not s.fee_audit:
        console.print("费率稽核 fee audit：每笔手续费都与合同一致 every fee matches its contract")
        return
    line = (f"费率稽核 fee audit：{len(s.fee_audit)} 个商户多收 merchants overcharged {format_yuan(over)}"
            f"（{sum(a.transactions for a in s.fee_audit):,} 笔 transactions）；{len(drifted)} 个商户的费率被直接上调、"
            "没有合同变更 merchants' rate raised with no contract change")
    if s.fee_drift is not None:
        day, merchant_no, old, new = s.fee_drift
        line += f"：商户 merchant {merchant_no} 信用卡 credit {old / 10_000:g}% → {new / 10_000:g}%（{day} 起 from {day}）"
    console.print(line + "\n  明细 detail: settleguard fees audit --from … --to …", highlight=False)


def _risk(r: Any) -> None:
    """The risk scan summary (issue 22 item 7): each planted merchant found on its day with the rules that fired (by
    name), its score and case; whatever else was flagged, apart."""
    days = f"{r.days[0]}…{r.days[-1]}" if len(r.days) > 1 else (str(r.days[0]) if r.days else "-")
    console.print(f"风险扫描 risk scan：{len(r.days)} 天 days（{days}），评估 {r.merchants:,} 个商户 merchants evaluated；"
                  f"标记 flagged ≥ {r.flag_score} 分，开工单 case ≥ {r.case_score} 分 points", highlight=False)

    def rules_of(f: Any) -> str:
        return "；".join(f"{zh} {en}" for zh, en in f.names)

    def case_of(f: Any) -> str:
        return f"工单 case #{f.case_id}" if f.case_id is not None else "未开工单 no case (below the case score)"

    if not r.plants:
        console.print("  未注入风险商户（商户太少）no risky merchants planted (too few merchants)", highlight=False)
    for no, _pattern, zh, en, _rules, day in r.plants:
        f = r.found.get(no)
        if f is None:
            console.print(f"  ✗ 商户 merchant {no}（{zh} {en}）{day} 未发现 not found", highlight=False)
            continue
        mark = "✓" if r.verdict(no) else "✗"
        console.print(f"  {mark} 商户 merchant {no}（{zh} {en}）{day} 评分 score {f.score}，{case_of(f)}："
                      f"{rules_of(f)}", highlight=False)
    if r.history is not None:
        console.print(f"  沉寂商户此前的交易 the silent merchant's earlier trade：{r.history[0]}…{r.history[1]}"
                      "（演示首日之前导入，作为其 30 天基线 imported before the demo as its 30-day baseline）",
                      highlight=False)
    if r.plants:
        exact = all(r.verdict(p[0]) for p in r.plants) and not r.others
        console.print("  ✓ 与注入的风险商户完全一致 exactly the planted merchants" if exact else
                      "  ✗ 与注入的风险商户不一致 differs from the planted merchants", highlight=False)
    if r.others:
        console.print("  另有标记（非注入）also flagged, not planted：" + "；".join(
            f"{f.merchant_no} {f.day} 评分 score {f.score}（{rules_of(f)}）" for f in r.others[:20])
            + (f" … (+{len(r.others) - 20})" if len(r.others) > 20 else ""), highlight=False)
    last = r.days[-1] if r.days else "D"
    console.print(f"  明细 detail: settleguard risk list --date {last}；settleguard risk show MERCHANT", highlight=False)


def _found_line(label: str, found: Mapping[str, int], planted: Mapping[str, int],
                table: Mapping[str, tuple[str, str]]) -> str:
    shown = "，".join(f"{labels.zh_en(table, k)} {n}" for k, n in sorted(found.items(), key=lambda kv: kv[0])
                     if n) or "无 none"
    verdict = ("✓ 与注入的差错完全一致 exactly the planted ones" if dict(found) == dict(planted) else
               "✗ 与注入的不一致 differs from what was planted："
               + "，".join(f"{labels.zh_en(table, k)} {planted.get(k, 0)}→{found.get(k, 0)}"
                          for k in sorted(set(found) | set(planted))
                          if planted.get(k, 0) != found.get(k, 0)))
    return f"{label}：{shown}\n  {verdict}"


def _recon(r: Any) -> None:
    """The reconciliation summary (issue 20 item 7): breaks by type, and whether they are the planted ones."""
    t = Table(title="对账差错 reconciliation breaks (planted → found)")
    for col in ("差错类型 break type", "注入 planted", "发现 found"):
        t.add_column(col, justify="right")
    for code in sorted(set(r.planted) | set(r.found) | set(r.clearing_planted) | set(r.clearing_found)):
        planted = r.planted.get(code, 0) + r.clearing_planted.get(code, 0)
        found = r.found.get(code, 0) + r.clearing_found.get(code, 0)
        t.add_row(labels.zh_en(labels.RECON_BREAK_TYPE, code), f"{planted:,}", f"{found:,}")
    console.print(t)
    console.print(_found_line(f"银行对账 bank reconciliation（{r.statements} 份 camt.053 对账单 statements，"
                              f"{r.statement_lines:,} 笔流水 lines）", r.found, r.planted, labels.RECON_BREAK_TYPE),
                  highlight=False)
    if r.late is not None:
        console.print(f"  迟到记账 late booking：{r.late[0]} 在途 in transit"
                      f"{'' if r.late_in_transit else '（未见 not seen）'}，{r.late[1]} 记账后对上 matched"
                      f"{'' if r.late_matched else '（未对上 not matched）'}", highlight=False)
    if r.unpaid_by_bank:
        console.print(f"  银行流水账中没有的已付出款 paid payouts the bank's journal lacks：{r.unpaid_by_bank}",
                      highlight=False)
    if r.proof is not None:
        drift, explained, unexplained = r.proof
        console.print(f"  账实核对 bank vs ledger：差额 drift {format_yuan(drift)}，差错解释 explained by the breaks "
                      f"{format_yuan(explained)}，" + ("未解释差额为零 ✓ nothing unexplained" if unexplained == 0 else
                                                      f"未解释差额 unexplained {format_yuan(unexplained)} ✗"),
                      highlight=False)
    console.print(_found_line(f"清算对账 clearing reconciliation（{r.clearing_days} 天银联 INN/RD 文件 days of "
                              "UnionPay files）", r.clearing_found, r.clearing_planted, labels.RECON_BREAK_TYPE),
                  highlight=False)
    console.print("  明细 detail: settleguard recon breaks；settleguard ledger check", highlight=False)


def _terminals(t: Any) -> None:
    """The terminal health summary (issue 21 item 6): counts by health, findings by kind, planted vs found."""
    table = Table(title="终端体检 terminal health")
    table.add_column("项目 item")
    table.add_column("数值 value", justify="right")
    table.add_row("终端 terminals", f"{t.terminals:,}")
    for code in ("ok", "warning", "fault", "unknown"):
        if t.health.get(code) or code != "unknown":
            table.add_row(labels.zh_en(labels.TERMINAL_HEALTH, code), f"{t.health.get(code, 0):,}")
    for code, n in sorted(t.found.items()):
        table.add_row(f"遥测 telemetry · {labels.zh_en(labels.TERMINAL_FINDING, code)}", f"{n:,}")
    for kind, n in sorted(t.log_found.items()):
        zh, en = t.log_words.get(kind, (kind, kind))
        table.add_row(f"报文日志 message log · {zh} {en}", f"{n:,}")
    console.print(table)
    planted = {code: 1 for code in t.planted}
    # what the generated data itself causes (e.g. a terminal with no sale for days in a long demo) is not a planted
    # fault: named apart, so that the verdict is about the planted ones
    extra = {code: n for code, n in t.found.items() if code not in planted}
    console.print(_found_line("终端遥测 terminal telemetry", {c: t.found.get(c, 0) for c in planted}, planted,
                              labels.TERMINAL_FINDING), highlight=False)
    if extra:
        console.print("  另有生成数据本身带来的发现（非注入）also found, caused by the generated data (not planted)："
                      + "，".join(f"{labels.zh_en(labels.TERMINAL_FINDING, c)} {n}" for c, n in sorted(extra.items())),
                      highlight=False)
    console.print(_found_line(f"报文日志 message logs（{t.logs} 个终端 terminals，1 个正常 1 clean）", dict(t.log_found),
                              {kind: 1 for kind in t.log_planted}, t.log_words), highlight=False)
    console.print("  注入 planted：" + "；".join(f"{t.log_words[kind][0]} {t.log_words[kind][1]} @ 终端 terminal {tn}"
                                              for kind, tn in t.log_planted.items()), highlight=False)
    console.print("  明细 detail: settleguard terminals list --unhealthy；settleguard terminals analyze-log FILE",
                  highlight=False)
