"""``settleguard card ...``: settlement cards. This module: ``card check`` (pure, no database).

The ``app`` sub-app is shared: binding, showing and status-check commands are added to it from
another module. Nothing here prints a full card number: only the mask (first 6, last 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from settleguard.cli.output import console, print_json
from settleguard.cli.params import Label
from settleguard.cli.runtime import Runtime
from settleguard.labels import CARD_KIND

if TYPE_CHECKING:
    from settleguard.cards.model import CardCheck, Problem

app = typer.Typer(help="结算卡 Settlement cards: check, bind, show, status.", no_args_is_help=True)

# The checks a card goes through, in order, with the problem codes each one can report.
CHECKS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("卡号格式", "number format", frozenset({"pan_format", "pan_length"})),
    ("发卡行（卡BIN）", "issuer (BIN)", frozenset({"bin_unknown", "foreign_card"})),
    ("卡号长度", "length for this BIN", frozenset({"length_mismatch"})),
    ("Luhn 校验位", "Luhn check digit", frozenset({"luhn_failed"})),
    ("卡种与结算政策", "card type vs policy", frozenset({"not_debit_card", "corporate_account_required"})),
    ("户名", "account name", frozenset({"name_invalid", "name_mismatch", "third_party_account"})),
    ("证件号码", "ID number", frozenset({"id_invalid", "id_underage", "id_mismatch", "id_region_unknown",
                                      "uscc_invalid"})),
    ("实名要素", "identity data", frozenset({"id_name_required"})),
)


_VERDICT_STYLE = {"valid": "bold green", "warnings": "bold yellow", "check": "bold yellow", "invalid": "bold red"}


def _status(problems: list[Problem]) -> str:
    from settleguard.cards.model import MISTYPED_WARNINGS

    if any(p.severity == "error" for p in problems):
        return "[bold red]✗ 未通过 failed[/]"
    if any(p.code in MISTYPED_WARNINGS for p in problems):
        return "[bold yellow]? 请核对 check it[/]"
    if problems:
        return "[yellow]! 警告 warning[/]"
    return "[green]✓ 通过 passed[/]"


def _applies(label_en: str, result: CardCheck, name: str | None, id_number: str | None, kind: str | None) -> bool:
    if label_en == "identity data":
        return kind is not None
    if label_en == "account name":
        return name is not None
    if label_en == "ID number":
        return id_number is not None
    if label_en in ("length for this BIN", "card type vs policy"):
        return result.bank_code is not None
    return True


def _print_human(result: CardCheck, name: str | None, id_number: str | None, kind: str | None) -> None:
    from settleguard.cards.model import CARD_TYPE_NAMES

    style = _VERDICT_STYLE[result.verdict.code]
    verdict = f"[{style}]{escape(result.verdict.text)}[/]"  # from the problems below: they cannot disagree
    console.print(f"[bold]银行卡检查 Card check[/] {escape(result.masked or '(无法解析 unparseable)')} — {verdict}")
    info = Table(show_header=False, box=None, pad_edge=False)
    info.add_column(style="bold")
    info.add_column()
    if result.bank_code:
        info.add_row("发卡行 Bank", f"{escape(result.bank_name_zh or '')} {escape(result.bank_name_en or '')} "
                                   f"({escape(result.bank_code)})")
        zh_t, en_t = CARD_TYPE_NAMES.get(result.card_type or "", (result.card_type or "", ""))
        info.add_row("卡种 Type", f"{zh_t} {en_t} ({result.card_type})")
        info.add_row("卡BIN", f"{result.bin}（此类卡号 {result.expected_length} 位 numbers have "
                              f"{result.expected_length} digits）")
    else:
        info.add_row("发卡行 Bank", "未知 unknown")
    info.add_row("卡号 Number", f"{escape(result.masked)}（{result.length} 位 digits）")
    info.add_row("Luhn", "通过 passed" if result.luhn_ok else "未通过 failed")
    console.print(info)
    table = Table(title="逐项检查 Checks", show_lines=True)
    table.add_column("检查 Check", no_wrap=True)
    table.add_column("结果 Result", no_wrap=True)
    table.add_column("原因与处理 Reason and what to do", overflow="fold")
    listed: set[str] = set()
    for label_zh, label_en, codes in CHECKS:
        found = [p for p in result.problems if p.code in codes]
        listed.update(p.code for p in found)
        if not found and not _applies(label_en, result, name, id_number, kind):
            table.add_row(f"{label_zh}\n{label_en}", "[dim]- 未检查 not checked[/]", "")
            continue
        text = "\n".join(f"{escape(p.zh)}\n[dim]{escape(p.en)}[/]" for p in found)
        table.add_row(f"{label_zh}\n{label_en}", _status(found), text)
    for p in result.problems:
        if p.code not in listed:
            table.add_row(escape(p.code), _status([p]), f"{escape(p.zh)}\n[dim]{escape(p.en)}[/]")
    console.print(table)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    pan: Annotated[str, typer.Argument(metavar="PAN", help="银行卡号（可含空格、短横线、全角数字）card number",
                                       show_default=False)],
    name: Annotated[str | None, typer.Option("--name", help="户名 account holder's name")] = None,
    id_number: Annotated[str | None, typer.Option("--id", help="身份证号（企业为统一社会信用代码）resident ID or USCC")]
    = None,
    kind: Annotated[str | None, typer.Option("--kind", help="商户类型 merchant kind: 对私 personal | 对公 corporate",
                                             parser=Label(CARD_KIND, "商户类型", "merchant kind"))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """检查结算卡（不改变任何数据）Check a settlement card: bank, type and each check, with what to do.

    退出码 exit code: 0 可用（含仅有警告）valid (warnings included); 1 不可用或卡号可能输错 not valid, or the
    number is probably mistyped (a known bank's card failing the Luhn check digit).
    """
    from settleguard.cards.bins import load_packaged_bins
    from settleguard.cards.checks import check_card
    from settleguard.cards.model import MerchantFacts

    rt: Runtime | None = ctx.obj if isinstance(ctx.obj, Runtime) else None
    today = None
    if rt is not None:
        today = rt.now().astimezone(ZoneInfo(rt.settings.timezone)).date()
    merchant = MerchantFacts("corporate" if kind == "corporate" else "personal") if kind else None
    result = check_card(pan, bins=load_packaged_bins(), holder_name=name, id_number=id_number,
                        merchant=merchant, today=today)
    if json_out:
        print_json(result.as_dict())
    else:
        _print_human(result, name, id_number, kind)
    if not result.valid:
        raise typer.Exit(1)
