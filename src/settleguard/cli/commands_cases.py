"""``settleguard cases list|show|open|assign|contact|note|status|resolve|close`` (工单, docs/cases.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from settleguard import labels
from settleguard.cases import model as cm
from settleguard.cases.model import CaseStatus, Method, Party, Priority
from settleguard.cli.layout import FOLD, grouped, local, steps, these_payouts, zone_note
from settleguard.cli.output import console, fail, print_json
from settleguard.cli.params import BadArgument, Label, parse_id
from settleguard.cli.runtime import Runtime
from settleguard.labels import CASE_STATUS, CATEGORY, PAYOUT_STATUS, PRIORITY, zh_en
from settleguard.money import format_yuan

T = TypeVar("T")

app = typer.Typer(help="工单 Support cases.", no_args_is_help=True)

ActorOpt = Annotated[str, typer.Option("--actor", help="操作员 operator")]


def _status_label(s: str) -> str:
    return zh_en(CASE_STATUS, s)


def _local(rt: Runtime, at: Any) -> str:
    """To the second in the business zone; the zone is named once per output (zone_note)."""
    return local(at, rt.settings.timezone)


def _act(action: Callable[[], T]) -> T:
    """Run a case action; a refusal (closed case, unknown case, bad input) is printed zh/en, exit 1."""
    from settleguard.cases import service

    try:
        return action()
    except service.CaseActionRefused as exc:
        fail(exc.zh, exc.en, code=1)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="状态 status: 处理中 / open, 等待银行 / waiting_bank, …",
                                               parser=Label(CASE_STATUS, "状态", "status"))] = None,
    assignee: Annotated[str | None, typer.Option(help="处理人 assignee")] = None,
    merchant: Annotated[str | None, typer.Option(help="商户编号 merchant number")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="只看已超时 only cases past their SLA")] = False,
    limit: Annotated[int, typer.Option(help="每页行数 rows per page")] = 50,
    after: Annotated[int, typer.Option(help="从此 ID 之后开始 start after this id (paging)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """列出工单 List cases (paginated with --after)."""
    from settleguard.cases import repository as repo

    rt: Runtime = ctx.obj
    now = rt.now()
    with rt.engine.connect() as conn:
        rows = repo.listing(conn, status=status, assignee=assignee, merchant_no=merchant,
                            overdue_at=now if overdue else None, limit=limit, after_id=after)
    for r in rows:
        r["overdue"] = cm.is_overdue(CaseStatus(r["status"]), r["sla_due_at"], now)
    if json_out:
        print_json(rows)
        return
    console.print(_case_rows(rt, rows))
    if len(rows) == limit:
        console.print(f"下一页 next page: --after {rows[-1]['id']}")
    console.print(zone_note(rt.settings.timezone), style="dim")


def _case_rows(rt: Runtime, rows: list[dict[str, Any]]) -> Table:
    """One case per entry: its id, then the title on its own line and the facts on the next, wrapped to the
    terminal (a table of nine columns wrapped each title over nine lines at 120 columns)."""
    tbl = Table(title=f"工单 cases ({len(rows)})", title_justify="left", show_header=False, show_lines=True,
                expand=True)
    tbl.add_column("ID", no_wrap=True, justify="right")
    tbl.add_column(overflow=FOLD, ratio=1)
    for r in rows:
        body = Text(str(r["title"]), style="bold")
        who = f"处理人 {r['assignee']}" if r["assignee"] else "未指派 unassigned"
        body.append(f"\n{_status_label(str(r['status']))} · {zh_en(CATEGORY, r['category'])} · "
                    f"优先级 {zh_en(PRIORITY, r['priority'])} · 出款 {r['payouts']} 笔 payouts\n商户 {r['merchant_no']} · "
                    f"{who} · "
                    f"时限 SLA {_local(rt, r['sla_due_at'])}", style="")
        if r["overdue"]:
            body.append(" 超时 overdue", style="bold red")
        tbl.add_row(f"#{r['id']}", body)
    return tbl


def _print_payouts(payouts: list[dict[str, Any]]) -> None:
    """The case's payouts in one table, then each diagnosis once with the payouts it applies to
    (seven payouts failed for the same reason share one block of steps)."""
    tbl = Table(title=f"出款 payouts ({len(payouts)})", title_justify="left")
    tbl.add_column("出款 payout", no_wrap=True)  # the id over the idempotency key, each kept whole
    tbl.add_column("金额 amount", no_wrap=True, justify="right")
    tbl.add_column("出款日 value date", overflow=FOLD, min_width=10)
    tbl.add_column("状态 status", overflow=FOLD)
    tbl.add_column("最近失败应答 last failure", overflow=FOLD)
    for p in payouts:
        st = str(p["status"])
        tbl.add_row(f"{p['id']}\n{p['idempotency_key']}", format_yuan(int(p["amount_fen"])), str(p["value_date"]),
                    zh_en(PAYOUT_STATUS, st),
                    Text(f"{p['fail_code'] or ''} {p['fail_message'] or ''}".strip() or "-"))
    console.print(tbl)
    diagnosed = [p for p in payouts if p["diagnosis_zh"] and p["diagnosis_en"]]
    for _, group in grouped(diagnosed, _same_guidance):
        d_zh, d_en = group[0]["diagnosis_zh"], group[0]["diagnosis_en"]
        body = Table.grid()
        body.add_column(overflow=FOLD)
        body.add_row(Text(these_payouts([p["id"] for p in group]), style="bold"))
        body.add_row(Text(f"诊断 diagnosis {zh_en(CATEGORY, d_zh['category'])}：{d_zh.get('meaning', '')}"))
        body.add_row(steps(d_zh["guidance"]))
        body.add_row(Text(f"Diagnosis: {d_en.get('meaning', '')}"))
        body.add_row(steps(d_en["guidance"]))
        console.print(Panel(body, title="诊断与处理 diagnosis and steps", title_align="left"))


def _same_guidance(p: dict[str, Any]) -> tuple[Any, ...]:
    d_zh, d_en = p["diagnosis_zh"], p["diagnosis_en"]
    return (d_zh["category"], d_zh.get("meaning"), tuple(d_zh["guidance"]), d_en.get("meaning"),
            tuple(d_en["guidance"]))


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """工单详情：出款及诊断与处理指引、联系记录、备注、时限 Case details with payouts, diagnoses, contacts, notes."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    now = rt.now()
    with rt.engine.connect() as conn:
        detail = service.case_detail(conn, case_id, now)
    if detail is None:
        fail(f"没有工单 {case_id}", f"no case {case_id}", code=1)
        return
    if json_out:
        print_json(detail)
        return
    case, payouts, contacts, notes = detail["case"], detail["payouts"], detail["contacts"], detail["notes"]
    overdue = bool(case["overdue"])
    st = str(case["status"])
    sla = cm.sla_for(str(case["category"]), Priority(case["priority"]))
    head = Text(str(case["title"]), style="bold")  # in the body, not the panel's title: wrapped, never cut
    head.append(f"\n商户 merchant {case['merchant_no']} {case['registered_name']}\n"
                f"分类 category {zh_en(CATEGORY, case['category'])} · 优先级 priority "
                f"{zh_en(PRIORITY, case['priority'])} · 来源 source {zh_en(labels.CASE_SOURCE, case['source'])}\n状态 status {_status_label(st)} · 处理人 assignee "
                f"{case['assignee'] or '-'}\n时限 SLA {sla.describe()} → {_local(rt, case['sla_due_at'])}", style="")
    if overdue:
        head.append(" 已超时 overdue", style="bold red")
    if case["resolution"]:
        head.append(f"\n处理结果 resolution {case['resolution']}")
    console.print(Panel(head, title=f"工单 case {case_id}", title_align="left"))
    if payouts:
        _print_payouts(payouts)
    if contacts:
        tbl = Table(title="联系记录 contacts")
        for col in ("时间 at", "对象 party", "方式 method", "联系人 who", "内容 what was said", "记录人 by"):
            tbl.add_column(col)
        for c in contacts:
            tbl.add_row(_local(rt, c["at"]), zh_en(labels.PARTY, c["party"]),
                        zh_en(labels.METHOD, c["method"]), str(c["contact_name"] or ""),
                        str(c["summary"]), str(c["recorded_by"]))
        console.print(tbl)
    if notes:
        tbl = Table(title="备注 notes")
        for col in ("时间 at", "作者 author", "内容 note"):
            tbl.add_column(col)
        for n in notes:
            tbl.add_row(_local(rt, n["created_at"]), str(n["author"]), str(n["body"]))
        console.print(tbl)
    console.print(zone_note(rt.settings.timezone), style="dim")


@app.command("open")
def open_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Option(help="商户编号 merchant number")],
    category: Annotated[str, typer.Option(help="分类 category (failure taxonomy, returned, complaint, other...)",
                                          parser=Label(CATEGORY, "分类", "category"))],
    title: Annotated[str, typer.Option(help="标题 title")],
    payout: Annotated[list[int] | None, typer.Option("--payout", help="关联出款 ID linked payout (repeatable)")] = None,
    priority: Annotated[str | None, typer.Option(help="优先级 priority p1..p4",
                                                 parser=Label(PRIORITY, "优先级", "priority"))] = None,
    actor: ActorOpt = "operator",
) -> None:
    """手工开工单 Open a case by hand."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    cid = _act(lambda: service.open_case(rt.engine, merchant_no=merchant, category=category, title=title,
                                         actor=actor, now=rt.now(), priority=Priority(priority) if priority else None,
                                         payout_ids=payout or [],
                                         tz=rt.settings.timezone))
    console.print(f"已开工单 case opened: {cid}")


@app.command("assign")
def assign_cmd(ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="工单 ID case id")],
               user: Annotated[str, typer.Argument(help="处理人 assignee")], actor: ActorOpt = "operator") -> None:
    """指派处理人（须为可处理工单的在职运营或客服）Assign a case to an enabled operator or support user."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    _act(lambda: service.assign(rt.engine, case_id, user, actor, rt.now()))
    console.print(f"工单 {case_id} 已指派给 assigned to {user}")


def _parse_at(rt: Runtime, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise BadArgument(f"--at 的值「{text}」不是有效时间：应写作 2026-11-20T10:30（当地时间）",
                          f"--at {text!r} is not a valid time: expected e.g. 2026-11-20T10:30 (local time)") from None
    return at if at.tzinfo else at.replace(tzinfo=ZoneInfo(rt.settings.timezone))


@app.command("contact")
def contact_cmd(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
    party: Annotated[str, typer.Option(help="联系对象 bank_support | platform_hotline | merchant",
                                       parser=Label(labels.PARTY, "联系对象", "party"))],
    method: Annotated[str, typer.Option(help="方式 phone | online | on_site",
                                        parser=Label(labels.METHOD, "方式", "method"))],
    who: Annotated[str, typer.Option(help="联系人，如 工行客服 95588 工号1234 who (name, number)")],
    said: Annotated[str, typer.Option(help="沟通内容 what was said")],
    at: Annotated[str | None, typer.Option(help="联系时间 when (ISO; default now; local time zone)")] = None,
    actor: ActorOpt = "operator",
) -> None:
    """记录一次联系 Record a contact with the bank, the payment platform or the merchant."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    n = _act(lambda: service.add_contact(rt.engine, case_id, party=Party(party), method=Method(method), who=who, said=said,
                                         actor=actor, now=rt.now(), at=_parse_at(rt, at)))
    console.print(f"已记录联系 contact recorded: #{n} (工单 case {case_id})")


@app.command("note")
def note_cmd(ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
             text: Annotated[str, typer.Argument(help="备注 note")], actor: ActorOpt = "operator") -> None:
    """添加备注 Add a note."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    _act(lambda: service.add_note(rt.engine, case_id, text, actor, rt.now()))
    console.print(f"已添加备注 note added (工单 case {case_id})")


@app.command("status")
def status_cmd(ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
               target: Annotated[str, typer.Argument(help="open | waiting_bank | waiting_merchant",
                                                     parser=Label(CASE_STATUS, "状态", "status"))],
               actor: ActorOpt = "operator") -> None:
    """变更状态 Change a case's status (waiting for the bank or the merchant, or back to open)."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    _act(lambda: service.set_status(rt.engine, case_id, CaseStatus(target), actor, rt.now()))
    console.print(f"工单 {case_id} → {_status_label(target)}")


@app.command("resolve")
def resolve_cmd(ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
                resolution: Annotated[str, typer.Option(help="处理结果（必填）resolution (required)")],
                actor: ActorOpt = "operator") -> None:
    """解决工单 Resolve a case with a resolution."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    _act(lambda: service.resolve(rt.engine, case_id, resolution, actor, rt.now()))
    console.print(f"工单 {case_id} 已解决 resolved")


@app.command("close")
def close_cmd(ctx: typer.Context, case_id: Annotated[int, typer.Argument(help="工单 ID case id", parser=parse_id)],
              actor: ActorOpt = "operator") -> None:
    """关闭已解决的工单 Close a resolved case."""
    from settleguard.cases import service

    rt: Runtime = ctx.obj
    _act(lambda: service.close(rt.engine, case_id, actor, rt.now()))
    console.print(f"工单 {case_id} 已关闭 closed")
