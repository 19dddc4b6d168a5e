"""Command-line values people type, read the same way by every command, and argument errors in zh then en.

- :func:`parse_day`: a calendar date YYYY-MM-DD (2026/11/18 and 2026-02-30 are refused, naming the option);
- :func:`parse_id`: a positive whole-number id (``abc``, 0 and -3 are refused);
- :class:`Label`: a code from a :mod:`settleguard.labels` table, typed as the code or its Chinese or English
  label (``--status 挂账`` is ``--status held``, ``--kind 对公`` is ``--kind corporate``);
  each is a Typer ``parser=`` (``typer.Option(parser=parse_day)``);
- :class:`BilingualGroup`: the root command's class; any usage error of any command (a bad value, a missing
  or unknown option) is printed in Chinese then English, naming the option and the accepted form, exit 2,
  without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

import typer

# Typer (0.2x) carries its own copy of click: its exceptions, not the click package's, are raised
from typer._click.exceptions import BadParameter, MissingParameter, NoSuchOption, UsageError
from typer.core import TyperGroup

from settleguard import labels

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WHAT = "{what}"  # replaced with the option's name ("--date", "PAYOUT_ID") when the error is printed


class BadArgument(BadParameter):
    """A value a person typed that the command cannot use, in Chinese and in English (``{what}`` names the
    option). Typer passes it through unchanged (it is not a ValueError) and attaches the parameter."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en.replace(WHAT, "").strip(" :"))
        self.zh, self.en = zh, en


def option_name(param: Any) -> str:
    """'--date' for an option, 'PAYOUT_ID' for an argument."""
    if param is None:
        return ""
    opts = [o for o in (getattr(param, "opts", None) or []) if str(o).startswith("-")]
    if opts:
        return str(max(opts, key=len))
    return str(getattr(param, "name", "") or "").upper()


def parse_day(value: Any) -> date:
    """A calendar date written YYYY-MM-DD (exactly: not 2026/11/18, not 2026-02-30)."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadArgument(f"{WHAT} 的值「{text}」不是有效日期：应写作 YYYY-MM-DD，如 2026-11-18",
                          f"{WHAT} {text!r} is not a valid date: expected YYYY-MM-DD, e.g. 2026-11-18") from None


def parse_id(value: Any) -> int:
    """An id: a whole number of at least 1."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    text = str(value).strip()
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise BadArgument(f"{WHAT} 的值「{text}」不是有效编号：应为正整数，如 76",
                      f"{WHAT} {text!r} is not a valid id: expected a whole number of at least 1, e.g. 76")


class Label:
    """Parses a code of a label table, typed as the code or as its Chinese or English label; returns the code."""

    def __init__(self, table: labels.Table, what_zh: str, what_en: str, codes: Iterable[str] | None = None) -> None:
        self.table: labels.Table = dict(table) if codes is None else {c: labels.pair(table, c) for c in codes}
        self.what_zh, self.what_en = what_zh, what_en

    def __call__(self, value: Any) -> str:
        code = labels.parse(self.table, str(value))
        if code is not None:
            return code
        raise BadArgument(f"{WHAT}：未知{self.what_zh}「{value}」；可用：{labels.accepted(self.table)}",
                          f"{WHAT}: unknown {self.what_en} {str(value)!r}; accepted: {', '.join(self.table)}")


def _form(param: Any) -> tuple[str, str]:
    """The accepted form of a parameter, in zh and en, as far as it can be told."""
    desc = getattr(param, "type_descriptor", None)
    choices = getattr(desc, "choices", None) if desc is not None and getattr(desc, "is_choice", False) else None
    if choices:
        listed = ", ".join(str(getattr(c, "value", c)) for c in choices)
        return f"以下之一：{listed}", f"one of {listed}"
    return "", ""


def usage_error_text(exc: UsageError) -> tuple[str, str]:
    """(zh, en) for a usage error of any command."""
    if isinstance(exc, BadArgument):
        what = option_name(exc.param)
        return exc.zh.replace(WHAT, what), exc.en.replace(WHAT, what)
    if isinstance(exc, MissingParameter):
        what = option_name(exc.param)
        return f"缺少 {what}", f"missing {what}"
    if isinstance(exc, NoSuchOption):
        return f"没有选项 {exc.option_name}", f"no such option {exc.option_name}"
    if isinstance(exc, BadParameter):
        what = option_name(exc.param)
        zh_form, en_form = _form(exc.param)
        number = "integer" in exc.message or "number" in exc.message
        zh = f"{what} 的值无效" + (f"：应为{zh_form}" if zh_form else "：应为数字" if number else "")
        return zh, f"invalid value for {what}: {exc.message}" + (f" (expected {en_form})" if en_form else "")
    return "命令行用法有误", f"usage error: {exc.message}"


class BilingualGroup(TyperGroup):
    """The root group: every usage error below it is printed zh then en with the usage line, exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            from rich.markup import escape

            from settleguard.cli.output import err

            zh, en = usage_error_text(exc)
            err.print(f"[bold red]错误[/] {escape(zh)}\n[bold red]Error[/] {escape(en)}", highlight=False)
            if exc.ctx is not None:
                err.print(f"用法 {exc.ctx.get_usage()}", markup=False, highlight=False)
                err.print(f"帮助 help: {exc.ctx.command_path} --help", markup=False, highlight=False)
            raise typer.Exit(2) from None
