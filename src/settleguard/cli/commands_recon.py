"""``settleguard recon import|run|breaks|show``: bank statements in, matching and breaks (对账). See
docs/reconciliation.md.

Exit codes: 0 done (import: or already imported, nothing changed), 2 refused or bad arguments (nothing stored;
an import names the file and the element or line, zh then en).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from settleguard.cli.layout import local, zone_note
from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import Label, parse_day, parse_id
from settleguard.cli.runtime import Runtime
from settleguard.labels import (
    PAYOUT_STATUS,
    RECON_ACTION,
    RECON_BREAK_STATUS,
    RECON_BREAK_TYPE,
    RECON_RESOLUTION_STATUS,
    zh_en,
)
from settleguard.money import format_yuan

app = typer.Typer(help="对账 Reconciliation: import bank statements (camt.053 / camt.054 / bank files), "
                       "match them with payouts, list breaks.", no_args_is_help=True)

_ACTION_WORDS = {"inquiry": "出款转查询 payout back to inquiry", "return": "按退票挂账 held as a return",
                 "case": "已开工单 case opened", "alert": "已告警运维 ops alerted",
                 "left": "非完整退票，留待人工处理 not a plain return: left to people"}
_BALANCE_NAMES = {"OPBD": "期初余额 opening", "CLBD": "期末余额 closing", "PRCD": "上日余额 previous closing"}


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="camt.053 / camt.054 XML，或银行代付结果、账户明细文件 bank file")],
    profile: Annotated[str | None, typer.Option(
        "--profile", help="银行文件配置：名称或 .toml 路径（默认 XML 按 camt 读，其他按 generic）"
                          "bank file profile: name or .toml path")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """导入银行对账单（整文件原子、可重复导入）Import a bank statement file: atomic, idempotent."""
    from settleguard.reconciliation.bank_file import ProfileError
    from settleguard.reconciliation.model import StatementRejected
    from settleguard.reconciliation.service import import_statement_file

    rt: Runtime = ctx.obj
    if not file.is_file():
        fail(f"文件不存在 {file}", f"no such file {file}")
    engine = engine_or_fail(rt)
    if profile is None and _import_clearing(rt, engine, file, json_out):  # a UnionPay INN / RD clearing file
        return
    try:
        res = import_statement_file(engine, file, now=rt.now(), profile=profile, tz=rt.tz)
    except StatementRejected as exc:
        fail(f"文件被拒绝，未做任何更改：{exc.path} {exc.where}：{exc.zh}",
             f"file rejected, nothing changed: {exc.path} {exc.where}: {exc.en}")
    except ProfileError as exc:
        fail("银行文件配置有误，未做任何更改", "bad bank file profile, nothing changed", str(exc))
    if json_out:
        print_json(res.as_dict())
        return
    if res.already_imported:
        console.print(f"该文件已导入过，未做任何更改 already imported ({res.sha256[:12]}); nothing changed",
                      markup=False, highlight=False)
        return
    for s in res.statements:
        _print_statement(res.kind, s)


def _print_statement(kind: str, s: Any) -> None:
    t = s.totals
    out = [
        f"{kind} 对账单 statement {s.statement_id}  账号 account {s.account or '-'}",
        f"  读取 lines read {s.lines:,}（新增 new {s.new_lines:,}）；已记账 booked {t.booked:,}，"
        f"未决 pending {t.pending:,}，仅供参考 info {t.info:,}",
        f"  借方 debits {t.debits:,} 笔 {format_yuan(t.debit_fen)}；贷方 credits {t.credits:,} 笔 "
        f"{format_yuan(t.credit_fen)}（仅已记账 booked only）",
    ]
    for code, fen in s.balances.items():
        out.append(f"  {_BALANCE_NAMES.get(code, code)}：{format_yuan(fen)}")
    if s.balance_difference is not None:
        out.append("  期初 + 已记账 = 期末 ✓ opening + booked = closing" if s.balance_difference == 0 else
                   f"  余额不平：期初 + 已记账 − 期末 = {format_yuan(s.balance_difference)} "
                   f"balance does not prove: opening + booked − closing = {format_yuan(s.balance_difference)}")
    for line in out:
        console.print(line, markup=False, highlight=False)


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _yuan(fen: Any) -> str:
    return "-" if fen is None else format_yuan(int(fen))


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    day: Annotated[date, typer.Option("--date", parser=parse_day, help="对账日期 reconciliation date YYYY-MM-DD")],
    window_days: Annotated[int, typer.Option(
        "--window-days", min=0, max=30,
        help="出款日后允许银行记账的工作日数 business days allowed between value date and booking")] = 2,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """按日期对账：匹配银行流水与出款，记录差错（可重复运行）Match bank lines with payouts, record breaks."""
    from settleguard.reconciliation.breaks import run
    from settleguard.reconciliation.followup import describe_proof, follow_up

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    res = run(engine, day, now=rt.now(), window_days=window_days)
    done = follow_up(engine, rt.now(), tz=rt.tz, case_after_hours=rt.recon_case_hours)  # ledger_only, reversal, aged
    if json_out:
        print_json({**res.as_dict(), "follow_up": done.as_dict()})
        return
    _say(f"对账 reconciliation {day.isoformat()}（窗口 window {window_days} 个工作日 business days）")
    _say(f"  已记账流水 booked lines {res.lines_considered:,}；已匹配 matched {res.matched:,}；"
         f"差错 breaks {res.breaks:,}（新增 new {res.opened:,}，自动消除 cleared {res.cleared:,}）")
    for code, n in res.breaks_by_type.items():
        if n:
            _say(f"  {zh_en(RECON_BREAK_TYPE, code)}：{n:,}")
    _say("  余额核对一致 balances prove: opening + booked = closing" if res.drift_fen == 0 else
         f"  余额差异 balance drift：{_yuan(res.drift_fen)}")
    for line in (describe_proof(res.proof, RECON_BREAK_TYPE) if res.proof is not None else
                 ["  账实核对：没有带期初、期末余额的对账单 bank vs ledger: no statement with balances"]):
        _say(line)
    _say(f"  后续处理 follow-up：转查询 to inquiry {done.inquiries}，按退票挂账 held as returns {done.returns}，"
         f"开工单 cases {done.cases}，告警 alerts {done.alerts}")


@app.command("breaks")
def breaks_cmd(
    ctx: typer.Context,
    type_: Annotated[str | None, typer.Option("--type", help="差错类型 break type", parser=Label(
        RECON_BREAK_TYPE, "差错类型", "break type"))] = None,
    status: Annotated[str | None, typer.Option("--status", help="状态 status: open|cleared|resolved", parser=Label(
        RECON_BREAK_STATUS, "状态", "status"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """差错列表 List reconciliation breaks."""
    from settleguard.reconciliation.breaks import list_breaks

    rt: Runtime = ctx.obj
    rows = list_breaks(engine_or_fail(rt), type_, status)
    if json_out:
        print_json([_break_json(r) for r in rows])
        return
    if not rows:
        _say("没有差错 no breaks")
        return
    for r in rows:
        _say(f"#{r['id']}  {zh_en(RECON_BREAK_TYPE, r['type'])}  {zh_en(RECON_BREAK_STATUS, r['status'])}  "
             f"{_yuan(r['amount_fen'])}  出款 payout {r['payout_id'] or '-'}  EndToEndId {r['end_to_end_id'] or '-'}  "
             f"银行参考号 bank ref {r['bank_ref'] or '-'}  记账日 booked {r['booking_date'] or '-'}")


def _bank_word(line: dict[str, Any], what: str) -> str:
    from settleguard.reconciliation.model import DIRECTION_NAMES, STATUS_NAMES, Direction, EntryStatus

    try:
        zh, en = (DIRECTION_NAMES[Direction(line["direction"])] if what == "direction"
                  else STATUS_NAMES[EntryStatus(line["status"])])
    except ValueError:
        return str(line[what])
    return f"{zh} {en}"


def _break_json(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "type": r["type"], "status": r["status"], "amount_fen": r["amount_fen"],
            "end_to_end_id": r["end_to_end_id"], "bank_ref": r["bank_ref"],
            "booking_date": None if r["booking_date"] is None else r["booking_date"].isoformat(),
            "payout_id": r["payout_id"], "bank_line_id": r["bank_line_id"],
            "opened_at": None if r["opened_at"] is None else str(r["opened_at"]),
            "cleared_at": None if r["cleared_at"] is None else str(r["cleared_at"]), "detail": r["detail"]}


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    break_id: Annotated[int, typer.Argument(metavar="BREAK", help="差错 ID break id", parser=parse_id)],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """差错详情：银行一侧与出款一侧并列 A break with the bank side and our side side by side."""
    from settleguard.reconciliation.breaks import show

    rt: Runtime = ctx.obj
    got = show(engine_or_fail(rt), break_id)
    if got is None:
        fail(f"没有差错 {break_id}", f"no break {break_id}")
    b, line, payout = got["break"], got["bank_line"], got["payout"]
    if json_out:
        print_json({"break": _break_json(b), "bank_line": line, "payout": payout, "matches": got["matches"],
                    "resolutions": [r.as_dict() for r in _resolutions(rt, break_id)],
                    "actions": [{"action": a["action"], "payout_id": a["payout_id"], "case_id": a["case_id"],
                                 "at": str(a["created_at"])} for a in got.get("actions", [])]})
        return
    _say(f"差错 break #{b['id']}  {zh_en(RECON_BREAK_TYPE, b['type'])}  {zh_en(RECON_BREAK_STATUS, b['status'])}"
         f"  差额/金额 amount {_yuan(b['amount_fen'])}")
    _say(f"  发现于 opened {local(b['opened_at'], rt.tz)}"
         + (f"；消除于 cleared {local(b['cleared_at'], rt.tz)}" if b["cleared_at"] else "") + f"（{rt.tz}）")
    bank = [("银行流水 bank line", "-" if line is None else f"#{line['id']}"),
            ("金额 amount", "-" if line is None else f"{_yuan(line['amount_fen'])} {_bank_word(line, 'direction')}"),
            ("状态 status", "-" if line is None else _bank_word(line, "status")
             + (" 冲正 reversal" if line["reversal"] else "")),
            ("EndToEndId", (line or {}).get("end_to_end_id") or "-"),
            ("银行参考号 bank ref", b["bank_ref"] or "-"),
            ("记账日 booked", str((line or {}).get("booking_date") or b["booking_date"] or "-")),
            ("对账单 statement", (line or {}).get("statement_id") or "-")]
    ours = [("出款 payout", "-" if payout is None else f"#{payout['id']}"),
            ("金额 amount", "-" if payout is None else _yuan(payout["amount_fen"])),
            ("状态 status", "-" if payout is None else zh_en(PAYOUT_STATUS, payout["status"])),
            ("指令号 key", "-" if payout is None else str(payout["idempotency_key"])),
            ("收款卡 card", "-" if payout is None else str(payout["pan_masked"] or "-")),
            ("出款日 value date", "-" if payout is None else str(payout["value_date"])),
            ("商户 merchant", "-" if payout is None else str(payout["merchant_id"]))]
    _say(f"  {'银行一侧 bank side':<40}我方一侧 our side")
    for (bk, bv), (ok, ov) in zip(bank, ours, strict=True):
        _say(f"  {bk + '：' + bv:<40}{ok}：{ov}")
    if b["detail"]:
        import json

        _say("  详情 detail: " + json.dumps(b["detail"], ensure_ascii=False, default=str)[:600])
    _show_resolutions(rt, break_id)
    for a in got.get("actions", []):  # the follow-up (followup.py): inquiry, return, case, alert
        _say(f"  后续处理 follow-up {local(a['created_at'], rt.tz)}：{_ACTION_WORDS.get(a['action'], a['action'])}"
             + (f"  工单 case {a['case_id']}" if a["case_id"] else ""))


def _resolutions(rt: Runtime, break_id: int) -> list[Any]:
    from settleguard.reconciliation.resolve import list_for_break

    return list_for_break(engine_or_fail(rt), break_id)


def _show_resolutions(rt: Runtime, break_id: int) -> None:
    """The break's resolution history (差错处理记录), oldest first, local time."""
    from settleguard.reconciliation.resolve import history_lines

    items = _resolutions(rt, break_id)
    if not items:
        _say(f"  处理记录 resolutions：无 none（recon resolve {break_id} --note 说明 --by 姓名）")
        return
    _say("  处理记录 resolutions：")
    for line in history_lines(items, lambda at: local(at, rt.tz)):
        _say("  " + line)


# --- 差错处理 resolving breaks, four eyes (reconciliation/resolve.py) -------------------------------------------

ByOpt = Annotated[str, typer.Option("--by", help="操作人姓名（必填）acting person (required)")]


def _refused(exc: Any) -> NoReturn:
    from rich.markup import escape  # the message may echo what was typed: never read it as markup

    fail(escape(f"{exc.zh}；未做任何更改"), escape(f"{exc.en}; nothing changed"))


def _resolution_out(rt: Runtime, res: Any, json_out: bool, headline: str) -> None:
    from settleguard.reconciliation.resolve import history_lines

    if json_out:
        print_json(res.as_dict())
        return
    _say(headline)
    for line in history_lines([res], lambda at: local(at, rt.tz)):
        _say(line)


@app.command("resolve")
def resolve_cmd(
    ctx: typer.Context,
    break_id: Annotated[int, typer.Argument(metavar="BREAK", help="差错 ID break id", parser=parse_id)],
    note: Annotated[str, typer.Option("--note", help="处理说明（必填）why and how (required)")],
    by: ByOpt,
    action: Annotated[str | None, typer.Option(
        "--action", help="处理方式 action: bank_receivable|write_off|adjust|hold|note|adjust_txn|reverse_txn"
                         "（默认按差错类型 default by break type）")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """提出差错处理方案（须另一名操作员批准后才动资金）Propose a break's resolution (maker)."""
    from settleguard.reconciliation.resolve import ResolutionRefused, propose

    rt: Runtime = ctx.obj
    try:
        res = propose(engine_or_fail(rt), break_id, action, note, by, rt.now())
    except ResolutionRefused as exc:
        _refused(exc)
    _resolution_out(rt, res, json_out, f"已提出处理方案 #{res.id}，待另一名操作员批准（recon approve {res.id} --by 姓名）"
                                       f" proposed resolution #{res.id}; another operator must approve it")


@app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    resolution_id: Annotated[int, typer.Argument(metavar="RESOLUTION", help="处理方案 ID resolution id",
                                                 parser=parse_id)],
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="批准意见 approval note")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """批准差错处理方案（提出人不能批准）：按方案记账，差错变为已处理 Approve a resolution (checker)."""
    from settleguard.reconciliation.resolve import ResolutionRefused, approve

    rt: Runtime = ctx.obj
    try:
        res = approve(engine_or_fail(rt), resolution_id, by, rt.now(), tz=rt.tz, note=note)
    except ResolutionRefused as exc:
        _refused(exc)
    _resolution_out(rt, res, json_out, f"已批准处理方案 #{res.id}，差错 #{res.break_id} 已处理 approved resolution "
                                       f"#{res.id}; break #{res.break_id} resolved")


@app.command("reject")
def reject_cmd(
    ctx: typer.Context,
    resolution_id: Annotated[int, typer.Argument(metavar="RESOLUTION", help="处理方案 ID resolution id",
                                                 parser=parse_id)],
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="驳回理由 why")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """驳回差错处理方案（不动资金，差错仍未解决）Reject a resolution: nothing moves, the break stays open."""
    from settleguard.reconciliation.resolve import ResolutionRefused, reject

    rt: Runtime = ctx.obj
    try:
        res = reject(engine_or_fail(rt), resolution_id, by, rt.now(), note=note)
    except ResolutionRefused as exc:
        _refused(exc)
    _resolution_out(rt, res, json_out, f"已驳回处理方案 #{res.id}，差错 #{res.break_id} 仍未解决 rejected resolution "
                                       f"#{res.id}; break #{res.break_id} stays open")


# --- clearing reconciliation (issue 20 item 3): UnionPay INN / RD files, `recon clearing --date D` -----------

def _import_clearing(rt: Runtime, engine: Any, file: Path, json_out: bool) -> bool:
    """Import ``file`` when it is a clearing file (INN detail or RD summary); False when it is not one."""
    from settleguard.reconciliation.clearing import clearing_kind, import_clearing_file
    from settleguard.reconciliation.model import StatementRejected

    if clearing_kind(file) is None:
        return False
    try:
        res = import_clearing_file(engine, file, now=rt.now(), tz=rt.tz)
    except StatementRejected as exc:
        fail(f"文件被拒绝，未做任何更改：{exc.path} {exc.where}：{exc.zh}",
             f"file rejected, nothing changed: {exc.path} {exc.where}: {exc.en}")
    if json_out:
        print_json(res.as_dict())
    elif res.already_imported:
        _say(f"该文件已导入过，未做任何更改 already imported ({res.sha256[:12]}); nothing changed")
    elif res.kind == "inn":
        t = res.totals
        _say(f"银联清算明细 UnionPay INN detail  清算日期 clearing date {res.clearing_dates[0]}")
        _say(f"  明细 lines {res.lines:,}（新增 new {res.new_lines:,}）；贷方交易金额 credit {_yuan(t['credit_fen'])}，"
             f"借方交易金额 debit {_yuan(t['debit_fen'])}，手续费 fees {_yuan(t['fee_fen'])}，"
             f"清算净额 net {_yuan(t['net_fen'])}")
    else:
        days = ", ".join(d.isoformat() for d in res.clearing_dates)
        _say(f"银联清算汇总表 UnionPay RD summary  清算日期 clearing date {days}")
        _say(f"  商户汇总 merchant sections {res.lines:,}（新增 new {res.new_lines:,}）")
    return True


@app.command("clearing")
def clearing_cmd(
    ctx: typer.Context,
    day: Annotated[date, typer.Option("--date", parser=parse_day, help="清算日期 clearing date YYYY-MM-DD")],
    cutoff_hour: Annotated[int, typer.Option(
        "--cutoff-hour", min=0, max=23,
        help="银联日切时刻（本地时间）：D 日窗口为 D-1 日该时刻至 D 日该时刻；0 = 自然日 network day cut-off hour")] = 23,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """清算对账：银联清算明细与 POS 交易逐笔核对（长款、短款、金额、手续费、汇总），可重复运行
    Compare the clearing file of a day with our POS transactions; record breaks (idempotent)."""
    from settleguard.reconciliation.clearing import NoClearingFile, run_clearing

    rt: Runtime = ctx.obj
    try:
        res = run_clearing(engine_or_fail(rt), day, now=rt.now(), tz=rt.tz, cutoff_hour=cutoff_hour)
    except NoClearingFile:
        fail(f"没有清算日 {day} 的银联清算明细 (INN)，请先导入：settleguard recon import INN…",
             f"no INN clearing file for {day}: import it first (settleguard recon import INN…)")
    if json_out:
        print_json(res.as_dict())
        return
    _say(f"清算对账 clearing reconciliation {day.isoformat()}")
    _say(f"  银联明细 network lines {res.network_lines:,}；我方银行卡交易 our card transactions {res.our_transactions:,}；"
         f"已核对 matched {res.matched:,}；差错 breaks {res.breaks:,}（新增 new {res.opened:,}，"
         f"自动消除 cleared {res.cleared:,}）")
    for code, n in res.breaks_by_type.items():
        if n:
            _say(f"  {zh_en(RECON_BREAK_TYPE, code)}：{n:,}")
    if res.summaries:
        bad = res.breaks_by_type.get("clearing_total_mismatch", 0)
        _say(f"  汇总表核对 summaries checked {res.summaries:,}：" + ("全部一致 all agree" if not bad else
             f"{bad:,} 个不符 disagree（recon breaks --type clearing_total_mismatch）"))
    else:
        _say("  未导入汇总表 (RD)，未核对合计 no RD summary imported: totals not checked")


@app.command("resolutions")
def resolutions_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="状态 status: proposed|approved|rejected（默认待复核 "
                                               "default proposed）", parser=Label(
        RECON_RESOLUTION_STATUS, "状态", "status"))] = "proposed",
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """差错处理方案列表（默认：待复核，供复核人处理）Resolutions, by default those awaiting approval."""
    from settleguard.reconciliation.resolve import listing

    rt: Runtime = ctx.obj
    items = listing(engine_or_fail(rt), status)
    if json_out:
        print_json([r.as_dict() for r in items])
        return
    if not items:
        _say("没有处理方案 no resolutions")
        return
    for r in items:
        _say(f"#{r.id}  差错 break #{r.break_id}  {zh_en(RECON_BREAK_TYPE, r.break_type)}  "
             f"{zh_en(RECON_ACTION, r.action)}  {zh_en(RECON_RESOLUTION_STATUS, r.status)}  {_yuan(r.amount_fen)}  "
             f"提出 proposed {local(r.proposed_at, rt.tz)} {r.proposed_by}")
    _say(zone_note(rt.tz))
