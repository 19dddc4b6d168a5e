"""``settleguard merchants import|add|show|list|freeze|unfreeze|close``: merchant onboarding (商户入网).

See docs/merchants.md. Card numbers are printed masked only; ``merchants add`` asks for the card
number (hidden) when ``--card`` is left out, so it does not stay in the shell history.
Exit codes: 0 done, 1 refused (the problems are printed, nothing was registered), 2 error.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from settleguard.cli.output import bar, console, engine_or_fail, err, fail, print_json
from settleguard.cli.params import Label, parse_day
from settleguard.cli.runtime import Runtime
from settleguard.labels import MERCHANT_STATUS
from settleguard.merchants.model import (
    ENTITY_NAMES,
    STATUS_NAMES,
    EntityKind,
    MerchantStatus,
    Refused,
    StatusAction,
)

app = typer.Typer(help="商户入网与管理 Merchants: onboarding (import, add), show, list, freeze / unfreeze / close.",
                  no_args_is_help=True)

_BAR_BYTES = 256 * 1024  # files larger than this show a progress bar
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON output")]
ActorOpt = Annotated[str, typer.Option("--actor", help="操作员 operator")]


def _rules(rt: Runtime) -> Any:
    from settleguard.merchants.checks import Rules

    return Rules(enterprise_legal_person_account=rt.settings.enterprise_legal_person_account)


def _refused(exc: Any, json_out: bool) -> None:
    if json_out:
        print_json(exc.as_dict())
        raise typer.Exit(1 if exc.problems else 2)
    if exc.reason:
        fail(f"未导入：{exc.reason[0]}", f"nothing imported: {exc.reason[1]}", code=2)
    err.print(f"[bold red]错误[/] {exc.total} 个问题，未登记任何商户\n[bold red]Error[/] {exc.total} problem(s); "
              "no merchant was registered")
    for line in exc.lines():
        err.print(line, markup=False, highlight=False)
    raise typer.Exit(1)


def _action_refused(exc: Refused, json_out: bool) -> NoReturn:
    """A refused status change, contract change or terminal change: why, zh then en (or as JSON); exit 1."""
    if json_out:
        print_json({"changed": False, "zh": exc.zh, "en": exc.en})
        raise typer.Exit(1)
    fail(exc.zh, exc.en, code=1)


def _print_result(res: Any, json_out: bool) -> None:
    if json_out:
        print_json(res.as_dict())
        return
    if res.already_imported:
        console.print(f"该文件已导入过，未做任何更改 already imported (import #{res.import_id}, {res.rows} rows); "
                      "nothing changed")
        return
    console.print(f"已登记 registered [bold]{len(res.registered):,}[/] 个商户 merchant(s); "
                  f"未变化 unchanged {len(res.unchanged):,} ({res.rows:,} 行 rows"
                  + (f", {res.encoding}" if res.encoding else "") + ")")
    for w in res.warnings[:20]:
        console.print(f"[yellow]提示[/] {escape(w.text())}")


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="商户入网表 merchant file: CSV (UTF-8/GBK) or .xlsx (docs/merchants.md)")],
    encoding: Annotated[str | None, typer.Option(help="utf-8 或 gbk；默认自动识别 (default: detect)")] = None,
    limit: Annotated[int, typer.Option(help="最多列出的问题数 problems listed at most", min=1)] = 100,
    actor: ActorOpt = "operator",
    json_out: JsonOpt = False,
) -> None:
    """导入商户入网表 Import a merchant file: every row checked, all registered or none (idempotent)."""
    from settleguard.merchants.onboarding import OnboardingRejected, import_merchants

    rt: Runtime = ctx.obj
    engine = engine_or_fail(rt)
    vault = rt.vault
    big = file.is_file() and file.stat().st_size > _BAR_BYTES and not json_out
    try:
        with (bar(f"入网 onboarding {file.name}", None) if big else nullcontext()) as b:
            def progress(_stage: str, done: int, total: int) -> None:
                if b is not None:
                    b.update(done, total or None)

            res = import_merchants(engine, file, vault=vault, now=rt.now(), rules=_rules(rt), encoding=encoding,
                                   actor=actor, limit=limit, timezone=rt.settings.timezone, progress=progress)
    except OnboardingRejected as exc:
        _refused(exc, json_out)
        return
    _print_result(res, json_out)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    merchant_no: Annotated[str, typer.Option("--merchant-no", help="商户编号 merchant number")],
    name: Annotated[str, typer.Option("--name", help="商户名称（营业执照）registered name")],
    kind: Annotated[str, typer.Option("--kind", help="个体工商户 | 企业 | 小微 (individual | enterprise | micro)")],
    legal_person: Annotated[str, typer.Option("--legal-person", help="法人/经营者姓名 legal person")],
    id_number: Annotated[str, typer.Option("--id", help="法人/经营者身份证号 legal person's ID number")],
    mcc: Annotated[str, typer.Option("--mcc", help="MCC (merchants/mcc.csv)")],
    city: Annotated[str, typer.Option("--city", help="城市 city")],
    mobile: Annotated[str, typer.Option("--mobile", help="联系手机 contact mobile")],
    holder: Annotated[str, typer.Option("--holder", help="结算户名 account holder")],
    bank: Annotated[str, typer.Option("--bank", help="开户银行（代码或名称）bank code or name")],
    terminal: Annotated[list[str], typer.Option("--terminal", help="终端 SN:终端号:型号 serial:terminal no:model "
                                                                   "(repeat for several)")],
    effective: Annotated[date, typer.Option("--effective", help="费率生效日期 fee effective date YYYY-MM-DD",
                                            parser=parse_day)],
    uscc: Annotated[str, typer.Option("--uscc", help="统一社会信用代码 USCC (businesses)")] = "",
    business: Annotated[str, typer.Option("--business", help="经营类目 business (default: the MCC's name)")] = "",
    cycle: Annotated[str, typer.Option("--cycle", help="结算周期 T+1 | D+0")] = "T+1",
    debit_rate: Annotated[str, typer.Option("--debit-rate", help="借记卡费率 % debit rate")] = "0.5",
    debit_cap: Annotated[str, typer.Option("--debit-cap", help="借记卡封顶（元）debit cap, yuan; '' = none")] = "20",
    credit_rate: Annotated[str, typer.Option("--credit-rate", help="信用卡费率 % credit rate")] = "0.6",
    qr_rate: Annotated[str, typer.Option("--qr-rate", help="扫码费率 % QR rate")] = "0.38",
    holder_id: Annotated[str, typer.Option("--holder-id", help="结算人身份证号（对私结算）holder's ID (personal "
                                                               "account)")] = "",
    card: Annotated[str | None, typer.Option("--card", help="结算卡号/账号；省略时隐藏输入 card or account number; "
                                                           "asked (hidden) when left out")] = None,
    actor: ActorOpt = "operator",
    json_out: JsonOpt = False,
) -> None:
    """登记一个商户 Register one merchant (the same checks as the import)."""
    from settleguard.merchants.onboarding import OnboardingRejected, add_merchant

    rt: Runtime = ctx.obj
    if card is None:
        card = typer.prompt("结算卡号/账号 card or account number", hide_input=True)
    base = {"merchant_no": merchant_no, "registered_name": name, "kind": kind, "legal_person": legal_person,
            "legal_person_id": id_number, "uscc": uscc, "business": business, "mcc": mcc, "city": city,
            "contact_mobile": mobile, "cycle": cycle, "debit_rate": debit_rate, "debit_cap": debit_cap,
            "credit_rate": credit_rate, "qr_rate": qr_rate, "fee_effective_from": effective.isoformat(), "holder_name": holder,
            "holder_id": holder_id, "card_no": card, "bank": bank}
    rows = []
    for spec in terminal:
        parts = spec.split(":")
        if len(parts) != 3:
            fail(f"--terminal 应为 SN:终端号:型号，实际“{escape(spec[:60])}”",
                 f"--terminal must be serial:terminal no:model, got {spec[:60]!r}")
        rows.append({**base, "terminal_sn": parts[0], "terminal_no": parts[1], "terminal_model": parts[2]})
    engine = engine_or_fail(rt)
    try:
        res = add_merchant(engine, rows, vault=rt.vault, now=rt.now(), rules=_rules(rt), actor=actor,
                           timezone=rt.settings.timezone)
    except OnboardingRejected as exc:
        _refused(exc, json_out)
        return
    if json_out:
        print_json(res.as_dict())
    elif res.unchanged:
        console.print(f"商户 {escape(merchant_no)} 已登记且信息相同，未做更改 already registered with the same facts; "
                      "nothing changed")
    else:
        console.print(f"[bold green]已登记[/] registered merchant {escape(merchant_no)}")
        for w in res.warnings:
            console.print(f"[yellow]提示[/] {escape(w.text())}")


def _beijing(rt: Runtime, at: datetime | None) -> str:
    if at is None:
        return ""
    from settleguard.config import DEFAULT_TIMEZONE  # the one spelling of the default zone

    tz = rt.settings.timezone
    return f"{at.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M:%S} {'北京时间' if tz == DEFAULT_TIMEZONE else tz}"


def _status_label(status: str) -> str:
    try:
        zh, en = STATUS_NAMES[MerchantStatus(status)]
    except ValueError:
        return status
    return f"{zh} {en}"


def _entity_label(entity: str | None, kind: str) -> str:
    try:
        zh, en = ENTITY_NAMES[EntityKind(entity)] if entity else (("企业", "enterprise") if kind == "corporate"
                                                                   else ("个人", "personal"))
    except ValueError:
        return entity or kind
    return f"{zh} {en}"


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    merchant: Annotated[str, typer.Argument(metavar="MERCHANT", help="商户编号 merchant number")],
    json_out: JsonOpt = False,
) -> None:
    """查看商户 Show a merchant: identity (ID masked), contract, settlement account (masked), terminals."""
    from settleguard.merchants import repository as repo

    rt: Runtime = ctx.obj
    with engine_or_fail(rt).connect() as conn:
        m = repo.by_no(conn, merchant)
    if m is None:
        fail(f"商户 {merchant} 不存在", f"no merchant {merchant}")
        return
    if json_out:
        print_json(m)
        return
    rows = [
        ("商户编号 merchant no", m["merchant_no"]), ("商户名称 name", m["registered_name"]),
        ("类型 kind", _entity_label(m["entity_kind"], m["kind"])), ("状态 status", _status_label(m["status"])),
        ("法人 legal person", m["legal_person"]), ("法人身份证 ID", m["legal_person_id_masked"] or ""),
        ("统一社会信用代码 USCC", m["uscc"] or ""), ("MCC", f"{m['mcc']} {m['business']}"), ("城市 city", m["city"]),
        ("联系手机 mobile", m["contact_mobile"] or ""), ("结算周期 cycle", m["cycle"]),
        ("费率 fees", f"{m['fee_name_zh']} / {m['fee_name_en']}"),
        ("费率生效 fee effective", str(m["fee_effective_from"] or "")),
        ("入网时间 registered", _beijing(rt, m["created_at"])),
    ]
    if m["status_reason"]:
        rows.append(("状态原因 reason", f"{m['status_reason']} ({_beijing(rt, m['status_changed_at'])})"))
    tbl = Table(show_header=False)
    for k, v in rows:
        tbl.add_row(k, escape(str(v)))
    console.print(tbl)
    acc = Table(title="结算账户 settlement accounts")
    for col in ("卡号 card", "银行 bank", "户名 holder", "对公/对私 kind", "状态 status"):
        acc.add_column(col)
    for a in m["accounts"]:
        acc.add_row(escape(a["pan_masked"]), escape(f"{a['bank_name']} {a['bank_code']}"), escape(a["holder_name"]),
                    "对公 corporate" if a["account_kind"] == "corporate" else "对私 personal", a["status"])
    console.print(acc)
    terms = Table(title="终端 terminals")
    for col in ("终端号 terminal no", "序列号 SN", "型号 model", "状态 status"):
        terms.add_column(col)
    for x in m["terminals"]:
        terms.add_row(escape(x["terminal_no"]), escape(x["serial_no"] or ""), escape(x["model"]), x["status"])
    console.print(terms)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="正常 active | 冻结 frozen | 已注销 closed",
                                               parser=Label(MERCHANT_STATUS, "状态", "status"))] = None,
    city: Annotated[str | None, typer.Option("--city", help="城市 city")] = None,
    page: Annotated[int, typer.Option("--page", min=1, help="页码 page")] = 1,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="每页条数 per page")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """列出商户 List merchants (by merchant number, a page at a time)."""
    from settleguard.merchants import repository as repo

    rt: Runtime = ctx.obj
    with engine_or_fail(rt).connect() as conn:
        total, rows = repo.listing(conn, status=status, city=city, limit=limit, offset=(page - 1) * limit)
    if json_out:
        print_json({"total": total, "page": page, "limit": limit, "merchants": rows})
        return
    tbl = Table(title=f"商户 merchants · 共 {total} 个 total · 第 {page} 页 page")
    for col in ("商户编号 merchant no", "名称 name", "类型 kind", "MCC", "城市 city", "周期 cycle", "状态 status"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(escape(r["merchant_no"]), escape(r["registered_name"]), _entity_label(r["entity_kind"], r["kind"]),
                    r["mcc"], escape(r["city"]), r["cycle"], _status_label(r["status"]))
    console.print(tbl)


def _status_cmd(action: StatusAction, ctx: typer.Context, merchant: str, reason: str, actor: str,
                json_out: bool) -> None:
    from settleguard.merchants.lifecycle import StatusRefused, change_status
    from settleguard.payouts.merchant_holds import release_unfrozen

    rt: Runtime = ctx.obj
    try:
        ch = change_status(engine_or_fail(rt), merchant, action, reason, actor=actor, now=rt.now(),
                           release_held=release_unfrozen)
    except StatusRefused as exc:
        _action_refused(exc, json_out)
    if json_out:
        print_json({"changed": True, "merchant_no": ch.merchant_no, "from": ch.from_status, "to": ch.to_status,
                    "reason": ch.reason})
        return
    console.print(f"商户 merchant {escape(ch.merchant_no)}: {_status_label(ch.from_status)} → "
                  f"{_status_label(ch.to_status)}（原因 reason: {escape(ch.reason)}）")
    if ch.released:  # unfreeze: the payouts the freeze held (payouts.merchant_holds)
        from settleguard.money import fen_to_yuan

        console.print(f"已放行 released {ch.released} 笔冻结挂账出款 payout(s) held by the freeze, "
                      f"{fen_to_yuan(ch.released_fen)} 元 yuan")


MerchantArg = Annotated[str, typer.Argument(metavar="MERCHANT", help="商户编号 merchant number")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="原因（记入审计）reason (audited)")]


@app.command("freeze")
def freeze_cmd(ctx: typer.Context, merchant: MerchantArg, reason: ReasonOpt, actor: ActorOpt = "operator",
               json_out: JsonOpt = False) -> None:
    """冻结商户 Freeze a merchant."""
    _status_cmd(StatusAction.FREEZE, ctx, merchant, reason, actor, json_out)


@app.command("unfreeze")
def unfreeze_cmd(ctx: typer.Context, merchant: MerchantArg, reason: ReasonOpt, actor: ActorOpt = "operator",
                 json_out: JsonOpt = False) -> None:
    """解冻商户 Unfreeze a merchant."""
    _status_cmd(StatusAction.UNFREEZE, ctx, merchant, reason, actor, json_out)


@app.command("close")
def close_cmd(ctx: typer.Context, merchant: MerchantArg, reason: ReasonOpt, actor: ActorOpt = "operator",
              json_out: JsonOpt = False) -> None:
    """注销商户 Close a merchant (final)."""
    _status_cmd(StatusAction.CLOSE, ctx, merchant, reason, actor, json_out)


# --- contracts with history (merchants/contracts.py) ---------------------------------------------------------

contract_app = typer.Typer(help="费率合同 Fee contracts: history and changes (never edited in place).",
                           no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@contract_app.command("show")
def contract_show_cmd(ctx: typer.Context, merchant: MerchantArg, json_out: JsonOpt = False) -> None:
    """合同历史 A merchant's fee contracts: old and new rates, effective date, who and why."""
    from settleguard.merchants.contracts import ContractRefused, history, rates_text

    rt: Runtime = ctx.obj
    try:
        versions = history(engine_or_fail(rt), merchant)
    except ContractRefused as exc:
        fail(exc.zh, exc.en, code=1)
        return
    if json_out:
        print_json({"merchant_no": merchant, "contracts": [v.as_dict() for v in versions]})
        return
    tbl = Table(title=f"商户 {escape(merchant)} 费率合同 fee contracts")
    for col in ("生效日期 effective from", "费率 rates", "原费率 previous", "操作人 by", "原因 reason", "记录时间 recorded"):
        tbl.add_column(col)
    for v in versions:
        tbl.add_row(str(v.effective_from or ""), rates_text(v.rates), "" if v.previous is None else rates_text(v.previous),
                    escape(v.actor), escape(v.reason), _beijing(rt, v.created_at))
    console.print(tbl)


@contract_app.command("change")
def contract_change_cmd(
    ctx: typer.Context,
    merchant: MerchantArg,
    effective: Annotated[date, typer.Option("--effective", help="生效日期 YYYY-MM-DD（不早于今天）effective date",
                                            parser=parse_day)],
    reason: ReasonOpt = "",
    debit_rate: Annotated[str | None, typer.Option("--debit-rate", help="借记卡费率 % debit rate")] = None,
    debit_cap: Annotated[str | None, typer.Option("--debit-cap", help="借记卡封顶（元）或 none debit cap (yuan)")] = None,
    credit_rate: Annotated[str | None, typer.Option("--credit-rate", help="信用卡费率 % credit rate")] = None,
    qr_rate: Annotated[str | None, typer.Option("--qr-rate", help="扫码费率 % QR rate")] = None,
    actor: ActorOpt = "operator",
    json_out: JsonOpt = False,
) -> None:
    """变更费率 A new fee contract from a date (rates left out stay); a reason is required."""
    from settleguard.merchants.contracts import ContractRefused, change, rates_dict, rates_text

    rt: Runtime = ctx.obj
    try:
        ch = change(engine_or_fail(rt), merchant, effective=effective.isoformat(), debit_rate=debit_rate, debit_cap=debit_cap,
                    credit_rate=credit_rate, qr_rate=qr_rate, reason=reason, actor=actor, now=rt.now(),
                    timezone=rt.settings.timezone)
    except ContractRefused as exc:
        _action_refused(exc, json_out)
    if json_out:
        print_json({"changed": True, "merchant_no": ch.merchant_no, "effective_from": ch.effective_from.isoformat(),
                    "old": rates_dict(ch.old), "new": rates_dict(ch.new), "reason": ch.reason})
        return
    console.print(f"商户 merchant {escape(ch.merchant_no)} 自 from {ch.effective_from}：\n  原 old  {rates_text(ch.old)}\n"
                  f"  新 new  {rates_text(ch.new)}\n  原因 reason: {escape(ch.reason)}")


# --- terminals (merchants/terminals.py) ---------------------------------------------------------------------

terminals_app = typer.Typer(help="终端管理 Terminals: add, move (移机), replace (换机), retire (撤机), history.",
                            no_args_is_help=True)
app.add_typer(terminals_app, name="terminals")
TerminalArg = Annotated[str, typer.Argument(metavar="TERMINAL", help="终端号 terminal number")]


def _terminal_done(ch: Any, json_out: bool) -> None:
    if json_out:
        print_json({"changed": True, "action": ch.action, **ch.detail})
        return
    names = {"add": "登记 added", "move": "移机 moved", "replace": "换机 replaced", "retire": "撤机 retired"}
    labels = {"terminal_no": "终端号 terminal", "new_terminal_no": "新终端号 new terminal", "serial_no": "序列号 SN",
              "old_serial_no": "原序列号 old SN", "new_serial_no": "新序列号 new SN", "model": "型号 model",
              "address": "地址 address", "old_address": "原地址 old address", "new_address": "新地址 new address",
              "reason": "原因 reason"}
    console.print(f"终端 terminal {escape(ch.terminal_no)}（商户 merchant {escape(ch.merchant_no)}）{names[ch.action]}: "
                  + escape("，".join(f"{labels.get(k, k)} {v or '—'}" for k, v in ch.detail.items()
                                    if k != "merchant_no")))


def _terminal_run(json_out: bool, fn: Any, *args: Any, **kwargs: Any) -> None:
    from settleguard.merchants.terminals import TerminalRefused

    try:
        ch = fn(*args, **kwargs)
    except TerminalRefused as exc:
        _action_refused(exc, json_out)
    _terminal_done(ch, json_out)


@terminals_app.command("add")
def terminal_add_cmd(
    ctx: typer.Context, merchant: MerchantArg,
    serial: Annotated[str, typer.Option("--serial", help="序列号 SN")],
    terminal_no: Annotated[str, typer.Option("--terminal-no", help="终端号（8 位）terminal number")],
    model: Annotated[str, typer.Option("--model", help="型号 model")],
    address: Annotated[str, typer.Option("--address", help="装机地址 address")],
    reason: ReasonOpt = "登记终端 register", actor: ActorOpt = "operator", json_out: JsonOpt = False,
) -> None:
    """登记终端 Register a terminal to a merchant."""
    from settleguard.merchants import terminals

    rt: Runtime = ctx.obj
    _terminal_run(json_out, terminals.add, engine_or_fail(rt), merchant, serial=serial, terminal_no=terminal_no,
                  model=model, address=address, reason=reason, actor=actor, now=rt.now())


@terminals_app.command("move")
def terminal_move_cmd(
    ctx: typer.Context, merchant: MerchantArg, terminal: TerminalArg,
    address: Annotated[str, typer.Option("--address", help="新装机地址 new address")],
    reason: ReasonOpt = "", actor: ActorOpt = "operator", json_out: JsonOpt = False,
) -> None:
    """移机 Move a terminal to a new address (the old one is kept)."""
    from settleguard.merchants import terminals

    rt: Runtime = ctx.obj
    _terminal_run(json_out, terminals.move, engine_or_fail(rt), merchant, terminal, address=address, reason=reason,
                  actor=actor, now=rt.now())


@terminals_app.command("replace")
def terminal_replace_cmd(
    ctx: typer.Context, merchant: MerchantArg, terminal: TerminalArg,
    serial: Annotated[str, typer.Option("--serial", help="新序列号 new SN")],
    new_terminal_no: Annotated[str | None, typer.Option("--new-terminal-no", help="新终端号（默认不变）")] = None,
    model: Annotated[str | None, typer.Option("--model", help="新型号 new model")] = None,
    reason: ReasonOpt = "", actor: ActorOpt = "operator", json_out: JsonOpt = False,
) -> None:
    """换机 Replace a terminal's device (a new terminal number retires the old terminal)."""
    from settleguard.merchants import terminals

    rt: Runtime = ctx.obj
    _terminal_run(json_out, terminals.replace, engine_or_fail(rt), merchant, terminal, serial=serial,
                  new_terminal_no=new_terminal_no, model=model, reason=reason, actor=actor, now=rt.now())


@terminals_app.command("retire")
def terminal_retire_cmd(ctx: typer.Context, merchant: MerchantArg, terminal: TerminalArg, reason: ReasonOpt = "",
                        actor: ActorOpt = "operator", json_out: JsonOpt = False) -> None:
    """撤机 Retire a terminal: later transactions from it are refused by the import."""
    from settleguard.merchants import terminals

    rt: Runtime = ctx.obj
    _terminal_run(json_out, terminals.retire, engine_or_fail(rt), merchant, terminal, reason=reason, actor=actor,
                  now=rt.now())


@terminals_app.command("history")
def terminal_history_cmd(ctx: typer.Context, merchant: MerchantArg, json_out: JsonOpt = False) -> None:
    """终端变更记录 A merchant's terminal changes (old and new serial number and address)."""
    from settleguard.merchants import terminals_repository as trepo

    rt: Runtime = ctx.obj
    with engine_or_fail(rt).connect() as conn:
        got = trepo.merchant(conn, merchant)
        if got is None:
            fail(f"商户 {merchant} 不存在", f"no merchant {merchant}")
            return
        rows = trepo.events(conn, got[0])
    if json_out:
        print_json({"merchant_no": merchant, "events": rows})
        return
    tbl = Table(title=f"商户 {escape(merchant)} 终端变更 terminal changes")
    for col in ("时间 time", "终端号 terminal", "操作 action", "序列号 SN (old → new)", "地址 address (old → new)",
                "操作人 by", "原因 reason"):
        tbl.add_column(col)
    for r in rows:
        tbl.add_row(_beijing(rt, r["created_at"]), escape(r["terminal_no"]), r["action"],
                    escape(f"{r['old_serial_no'] or ''} → {r['new_serial_no'] or ''}"),
                    escape(f"{r['old_address'] or ''} → {r['new_address'] or ''}"), escape(r["actor"]), escape(r["reason"]))
    console.print(tbl)
