"""``settleguard payouts send|list|show|release|cancel|export``."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.panel import Panel
from rich.table import Table

from settleguard import labels
from settleguard.cli.layout import local, zone_note
from settleguard.cli.output import bar, console, fail, print_json
from settleguard.cli.params import Label, parse_day, parse_id
from settleguard.cli.runtime import Runtime
from settleguard.labels import CATEGORY, PAYOUT_STATUS, zh_en
from settleguard.money import format_yuan
from settleguard.payouts.model import PayoutStatus

if TYPE_CHECKING:
    from settleguard.payouts.service import SendSummary

app = typer.Typer(help="出款 Payouts.", no_args_is_help=True)

# statuses with a reason (a failure, a hold) whose category the list shows (payouts.details.NO_REASON)
HAS_REASON = frozenset(str(s) for s in PayoutStatus) - {"created", "submitted", "succeeded", "released", "cancelled",
                                                        "split"}


def _local(rt: Runtime, at: Any) -> str:
    """A time in the business time zone (Beijing time), to the second; the zone is named once (zone_note)."""
    return local(at, rt.settings.timezone)


def _today(rt: Runtime, now: datetime) -> Any:
    return now.astimezone(ZoneInfo(rt.settings.timezone)).date()


def send_summary_json(s: SendSummary) -> dict[str, Any]:
    return {"sent": s.sent, "inquired": s.inquired, "succeeded": s.succeeded, "succeeded_fen": s.succeeded_fen,
            "held": s.held, "held_fen": s.held_fen, "retry_scheduled": s.retry_scheduled, "result_unknown": s.unknown,
            "needs_review": s.needs_review, "split": s.split, "paused_banks": sorted(s.skipped_banks),
            "categories": dict(s.categories), "reasons": dict(s.reasons)}


def print_send_summary(s: SendSummary, title: str) -> None:
    tbl = Table(title=title)
    tbl.add_column("结果 outcome")
    tbl.add_column("笔数 count", justify="right")
    tbl.add_column("金额 amount", justify="right")
    tbl.add_row("已发送 sent", f"{s.sent:,}", "")
    tbl.add_row("已查询 inquired", f"{s.inquired:,}", "")
    tbl.add_row("成功 succeeded", f"{s.succeeded:,}", format_yuan(s.succeeded_fen))
    tbl.add_row("挂账 held", f"{s.held:,}", format_yuan(s.held_fen))
    tbl.add_row("待重试 retry scheduled", f"{s.retry_scheduled:,}", "")
    tbl.add_row("结果未明 result unknown", f"{s.unknown:,}", "")
    tbl.add_row("待复核 needs review", f"{s.needs_review:,}", "")
    tbl.add_row("已拆分 split", f"{s.split:,}", "")
    console.print(tbl)
    if s.skipped_banks:
        console.print(f"暂停出款的银行 paused banks (circuit open): {', '.join(sorted(s.skipped_banks))}")
    for reason, n in s.reasons.most_common(10):
        console.print(f"  {n:>5} × {reason}")


@app.command("send")
def send_cmd(
    ctx: typer.Context,
    as_of: Annotated[date | None, typer.Option("--as-of", parser=parse_day,
                                               help="出款日 pay date YYYY-MM-DD (default today)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """运行一次出款：放行已换卡的挂账、检查卡状态、查询结果未明的、发送到期的。
    One worker cycle: release card-held payouts, refresh stale card statuses, inquire, send."""
    from settleguard.worker import cycle

    rt: Runtime = ctx.obj
    now = rt.now()
    day = as_of or _today(rt, now)
    with bar("出款 sending payouts", None) as b:
        c = cycle(rt.engine, rt.channel, rt.vault, rt.verifier, as_of=day, now=now, opts=rt.payout_options(),
                  cards=rt.card_settings(), progress=b.advance, tz=rt.tz, delivery=rt.delivery_settings())
    if json_out:
        print_json({**send_summary_json(c.send), "released": c.released.released,
                    "cards_checked": c.cards.checked, "cards_unusable": c.cards.unusable})
        return
    if c.released.released:
        console.print(f"已放行 released {c.released.released:,} 笔挂账出款 held payouts "
                      f"({format_yuan(c.released.released_fen)}) 换卡后重新出款 after card fixes")
    if c.cards.checked:
        console.print(f"已检查卡状态 card statuses checked: {c.cards.checked:,}; 不可用 unusable: {c.cards.unusable:,}")
    print_send_summary(c.send, f"出款结果 payout results · {day}")


class Fmt(StrEnum):
    pain001 = "pain.001"


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="输出文件 output file")],
    fmt: Annotated[Fmt, typer.Option("--format", help="文件格式 file format")] = Fmt.pain001,
    as_of: Annotated[date | None, typer.Option("--as-of", parser=parse_day,
                                               help="出款日 pay date YYYY-MM-DD (default today)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """把到期出款写成 pain.001.001.09 批量文件 Write every due payout into a pain.001.001.09 batch."""
    from settleguard.channels.iso20022.pain001 import Pain001Error
    from settleguard.payouts.files import export_pain001

    rt: Runtime = ctx.obj
    now = rt.now()
    day = as_of or _today(rt, now)
    try:
        res = export_pain001(rt.engine, rt.vault, rt.batch_config(), out, as_of=day, now=now,
                             opts=rt.payout_options())
    except Pain001Error as exc:
        fail("无法生成出款文件，未做任何更改", "cannot write the payout file; nothing changed", str(exc))
    except OSError as exc:  # e.g. a missing directory: the claim was rolled back with the file
        fail(f"无法写入 {out}，未做任何更改", f"cannot write {out}; nothing changed",
             f"{type(exc).__name__}: {exc.strerror or exc}")
    if json_out:
        print_json({"path": str(res.path) if res.path else None, "message_id": res.message_id, "count": res.count,
                    "total_fen": res.total_fen, "held_no_card": res.held_no_card, "unreadable": res.unreadable})
        return
    if res.unreadable:
        console.print(f"[yellow]{res.unreadable} 笔出款的卡号无法用当前密钥解密，已转人工复核，未写入文件 "
                      f"{res.unreadable} payout(s) whose card number does not decrypt were moved to needs review, "
                      "not exported[/yellow]")
    if res.path is None:
        console.print(f"没有到期的出款 nothing due on {day}" + (f"; 无卡挂账 held (no card): {res.held_no_card}"
                                                          if res.held_no_card else ""))
        return
    console.print(f"已写出 wrote {res.path}: MsgId {res.message_id}, {res.count:,} 笔 payouts, "
                  f"合计 total {format_yuan(res.total_fen)}. 文件含完整卡号，权限 0600 (full account numbers).")


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="状态 status filter: 挂账 / held, 失败 / failed, …",
                                               parser=Label(PAYOUT_STATUS, "状态", "status"))] = None,
    merchant: Annotated[str | None, typer.Option(help="商户编号 merchant number")] = None,
    category: Annotated[str | None, typer.Option(help="失败分类 failure category: 银行卡信息错误 / card_info_error, …",
                                                 parser=Label(CATEGORY, "分类", "category"))] = None,
    limit: Annotated[int, typer.Option(help="每页行数 rows per page", min=1)] = 50,
    after: Annotated[int, typer.Option(help="从此 ID 之后开始 start after this id (paging)", min=0)] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出出款 List payouts (paginated with --after)."""
    from settleguard.payouts import repository as repo

    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        rows = repo.listing(conn, status=status, merchant_no=merchant, category=category, limit=limit, after_id=after)
    if json_out:
        print_json(rows)
        return
    tbl = Table(title="出款 payouts")
    for col in ("ID", "商户 merchant", "出款日 value", "金额 amount", "状态 status", "分类 category", "最近应答 last answer"):
        tbl.add_column(col)
    for r in rows:
        st = str(r["status"])
        tbl.add_row(str(r["id"]), str(r["merchant_no"]), str(r["value_date"]), format_yuan(int(r["amount_fen"])),
                    zh_en(PAYOUT_STATUS, st), zh_en(CATEGORY, r["category"]) if st in HAS_REASON else "",
                    f"{r['last_code'] or ''} {r['last_message'] or ''}")
    console.print(tbl)
    if len(rows) == limit:
        console.print(f"下一页 next page: --after {rows[-1]['id']}")


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    payout_id: Annotated[int, typer.Argument(help="出款 ID payout id", parser=parse_id)],
    lang: Annotated[str, typer.Option(help="指引语言 guidance language zh|en")] = "zh",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """出款详情：全部状态变化、每次尝试、诊断与处理指引 Full history with diagnoses and guidance."""
    from settleguard.payouts.details import detail

    rt: Runtime = ctx.obj
    with rt.engine.connect() as conn:
        found = detail(conn, payout_id, lang)
    if found is None:
        fail(f"没有出款 {payout_id}", f"no payout {payout_id}", code=1)
        return
    p, events, attempts, parts = found["payout"], found["events"], found["attempts"], found["parts"]
    diagnosis, english = found["diagnosis"], found["diagnosis_en"]  # people read zh first, then en
    if json_out:
        print_json({"payout": p, "events": events, "attempts": attempts, "parts": parts, "diagnosis": diagnosis})
        return
    st = str(p["status"])
    console.print(Panel.fit(
        f"商户 merchant {p['merchant_no']} {p['registered_name']}\n金额 amount {format_yuan(int(p['amount_fen']))} · "
        f"出款日 value date {p['value_date']}\n状态 status {zh_en(PAYOUT_STATUS, st)}"
        + (f" · 分类 category {zh_en(CATEGORY, p['category'])}" if p["category"] and st in HAS_REASON else "")
        + (f"\n下次尝试 next attempt {_local(rt, p['next_attempt_at'])}" if p["next_attempt_at"] else ""),
        title=f"出款 payout {payout_id}"))
    tl = Table(title="状态变化 timeline")
    for col in ("时间 at", "从 from", "到 to", "原因 reason"):
        tl.add_column(col)
    for e in events:
        tl.add_row(_local(rt, e["created_at"]), zh_en(PAYOUT_STATUS, e["from_status"]), zh_en(PAYOUT_STATUS, e["to_status"]),
                   labels.event_reason(str(e["reason"])))
    console.print(tl)
    at = Table(title="尝试 attempts")
    for col in ("#", "类型 kind", "幂等键 key", "结果 outcome", "应答 answer", "分类 category", "决定 decision"):
        at.add_column(col)
    for a in attempts:
        at.add_row(str(a["attempt_no"]), zh_en(labels.ATTEMPT_KIND, a["kind"]), str(a["idempotency_key"]),
                   zh_en(labels.OUTCOME, a["outcome"], "等待应答 awaiting answer"),
                   f"{a['code'] or ''} {a['message'] or ''}", zh_en(CATEGORY, a["category"]),
                   zh_en(labels.DECISION, a["decision"]))
    console.print(at)
    if parts:
        console.print("拆分 parts: " + ", ".join(f"#{x['id']} {format_yuan(int(x['amount_fen']))} "
                                                f"{zh_en(PAYOUT_STATUS, x['status'])}"
                                                for x in parts))
    if diagnosis:
        en_steps = list(english["guidance"]) if english else []
        steps = "\n".join(f"{i}. {g}" + (f"\n   {en_steps[i - 1]}" if i <= len(en_steps) else "")
                          for i, g in enumerate(diagnosis["guidance"], 1))
        meaning = str(diagnosis.get("meaning", "")) + (f" · {english['meaning']}" if english else "")
        console.print(Panel(f"{zh_en(CATEGORY, diagnosis['category'])} · {meaning}\n{steps}",
                            title="诊断与处理 diagnosis and what to do"))
    console.print(zone_note(rt.settings.timezone), style="dim")


@app.command("release")
def release_cmd(
    ctx: typer.Context,
    payout_id: Annotated[int, typer.Argument(help="出款 ID payout id", parser=parse_id)],
    note: Annotated[str, typer.Option(help="备注 note")] = "",
    actor: Annotated[str, typer.Option(help="操作员 operator")] = "operator",
    override: Annotated[bool, typer.Option("--override", help="覆盖：付到刚失败且未更换的结算卡（须填写 --reason）"
                                                              " pay the card that just failed, unchanged (needs --reason)")
                        ] = False,
    reason: Annotated[str, typer.Option(help="覆盖放行的原因 the override's written reason")] = "",
) -> None:
    """放行：挂账出款按当前结算卡重新出款；待复核出款立即重试 Release a held payout (new instruction to the
    current card) or retry a payout under review now. A payout held for a card problem is not released to the
    same, unchanged card unless --override --reason R."""
    from settleguard.payouts.release import PayoutActionRefused, release

    rt: Runtime = ctx.obj
    if reason.strip() and not override:
        fail("--reason 只用于 --override", "--reason goes with --override", code=1)
    try:
        new = release(rt.engine, payout_id, actor, rt.now(), note, override=override, reason=reason)
    except PayoutActionRefused as exc:
        fail(exc.zh, exc.en, code=1)
    console.print(f"出款 {payout_id} 已放行 released -> {zh_en(PAYOUT_STATUS, new)}")


@app.command("cancel")
def cancel_cmd(
    ctx: typer.Context,
    payout_id: Annotated[int, typer.Argument(help="出款 ID payout id", parser=parse_id)],
    reason: Annotated[str, typer.Option(help="原因（必填）reason (required)")],
    actor: Annotated[str, typer.Option(help="操作员 operator")] = "operator",
) -> None:
    """撤销出款，资金转入挂账 Cancel a payout with a reason; its money is held."""
    from settleguard.payouts.release import PayoutActionRefused, cancel

    rt: Runtime = ctx.obj
    try:
        cancel(rt.engine, payout_id, reason, actor, rt.now())
    except PayoutActionRefused as exc:
        fail(exc.zh, exc.en, code=1)
    console.print(f"出款 {payout_id} 已撤销 cancelled; 资金已挂账 funds held")
