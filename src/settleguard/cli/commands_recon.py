"""``settleguard recon import|run|breaks|show``: bank statements in, matching and breaks (对账). See
docs/reconciliation.md.

Exit codes: 0 done (import: or already imported, nothing changed), 2 refused or bad arguments (nothing stored;
an import names the file and the element or line, zh then en).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from settleguard.cli.layout import local
from settleguard.cli.output import console, engine_or_fail, fail, print_json
from settleguard.cli.params import Label, parse_day, parse_id
from settleguard.cli.runtime import Runtime
from settleguard.labels import PAYOUT_STATUS, RECON_BREAK_STATUS, RECON_BREAK_TYPE, zh_en
from settleguard.money import format_yuan

app = typer.Typer(help="对账 Reconciliation: import bank statements (camt.053 / camt.054 / bank files), "
                       "match them with payouts, list breaks.", no_args_is_help=True)

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

    rt: Runtime = ctx.obj
    res = run(engine_or_fail(rt), day, now=rt.now(), window_days=window_days)
    if json_out:
        print_json(res.as_dict())
        return
    _say(f"对账 reconciliation {day.isoformat()}（窗口 window {window_days} 个工作日 business days）")
    _say(f"  已记账流水 booked lines {res.lines_considered:,}；已匹配 matched {res.matched:,}；"
         f"差错 breaks {res.breaks:,}（新增 new {res.opened:,}，自动消除 cleared {res.cleared:,}）")
    for code, n in res.breaks_by_type.items():
        if n:
            _say(f"  {zh_en(RECON_BREAK_TYPE, code)}：{n:,}")
    _say("  余额核对一致 balances prove: opening + booked = closing" if res.drift_fen == 0 else
         f"  余额差异 balance drift：{_yuan(res.drift_fen)}")


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
        print_json({"break": _break_json(b), "bank_line": line, "payout": payout, "matches": got["matches"]})
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
