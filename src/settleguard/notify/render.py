"""Rendering notices with the packaged Jinja2 templates (notify/templates).

One template per notice kind (``<kind>.j2``) defines the title and the lead sentence in Chinese and
English; the layouts (``_text.j2``, ``_html.j2``, ``_sms.j2``, ``_subject.j2``) put them together
with the reason (the diagnosis meaning), the steps the merchant must take (the diagnosis guidance),
the amount held in yuan, the payout and the masked card, Chinese first. HTML is autoescaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from settleguard.money import fen_to_yuan
from settleguard.notify.model import HOLD_KINDS, KINDS, Notice

FORMATS = ("text", "html", "sms", "subject")
SMS_MAX = 300


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> Environment:
    return Environment(loader=PackageLoader("settleguard.notify", "templates"), autoescape=autoescape,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)


def context(notice: Notice) -> dict[str, Any]:
    ctx = notice.facts()
    ctx["amount_yuan"] = None if notice.amount_fen is None else fen_to_yuan(notice.amount_fen)
    ctx["held"] = notice.kind in HOLD_KINDS or notice.kind == "returned"
    return ctx


def render(notice: Notice, fmt: str) -> str:
    """One format (text | html | sms | subject) of a notice; an unknown kind renders as ``unknown``."""
    return _render(notice.kind, fmt, context(notice))


def _render(kind: str, fmt: str, ctx: dict[str, Any]) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; available: {', '.join(FORMATS)}")
    kind = kind if kind in KINDS else "unknown"
    tpl = _env(fmt == "html").get_template(f"{kind}.j2")
    out = tpl.render(layout=f"_{fmt}.j2", **ctx).strip()
    if fmt == "subject":
        return " ".join(out.split())
    if fmt == "sms" and len(out) > SMS_MAX:
        return out[: SMS_MAX - 1] + "…"
    return out + "\n"


def render_all(notice: Notice) -> Rendered:
    return Rendered(render(notice, "subject"), render(notice, "text"), render(notice, "html"), render(notice, "sms"))


def texts(notice: Notice) -> tuple[str, str]:
    """(Chinese, English) halves of the plain text, for the outbox payload's ``zh`` and ``en``."""
    text = render(notice, "text")
    zh, _, en = text.partition("-- English --")
    return zh.strip(), en.strip()


# --- many notices at once ---------------------------------------------------------------------------
# A report that holds 40,000 payouts renders 40,000 texts that differ only in a few facts (merchant,
# amount, payout, card). Each group of notices alike in everything else is rendered once with
# placeholders for those facts, which are then put in; the first notice of every group is also
# rendered on its own and must come out identical, otherwise the group is rendered one by one.
_SLOTS = ("merchant_name", "merchant_no", "amount_yuan", "payout_id", "payout_key", "card_masked", "created_at")
_MARK = {name: f"\x02{i}\x03" for i, name in enumerate(_SLOTS)}
_MARKS = re.compile("\x02([0-9])\x03")


def _group_key(n: Notice) -> tuple[Any, ...]:
    """Everything but the slots' values (whether each slot is empty does count)."""
    return (n.kind, bool(n.merchant_name), bool(n.merchant_no), n.amount_fen is None, n.payout_id is None,
            bool(n.payout_key), bool(n.card_masked), bool(n.created_at), n.category, n.rule, n.meaning_zh,
            n.meaning_en, tuple(n.steps_zh), tuple(n.steps_en), n.bank_code, n.bank_message, n.message_zh,
            n.message_en, tuple(sorted((k, repr(v)) for k, v in n.extra.items())))


def _slots(n: Notice) -> list[str]:
    """The slots' values as the templates print them (``context`` for these facts)."""
    return [n.merchant_name, n.merchant_no, "" if n.amount_fen is None else str(fen_to_yuan(n.amount_fen)),
            str(n.payout_id), str(n.payout_key), str(n.card_masked), n.created_at]


def texts_many(notices: Sequence[Notice]) -> list[tuple[str, str]]:
    """``texts`` of every notice, in order (the same result, rendered once per group of alike notices)."""
    out: list[tuple[str, str] | None] = [None] * len(notices)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, n in enumerate(notices):
        groups.setdefault(_group_key(n), []).append(i)
    for members in groups.values():
        first = notices[members[0]]
        ctx = context(first)
        for name in _SLOTS:
            if ctx[name] is not None and ctx[name] != "":
                ctx[name] = _MARK[name]
        shape = _render(first.kind, "text", ctx)
        zh_shape, _, en_shape = shape.partition("-- English --")
        zh_shape, en_shape = zh_shape.strip(), en_shape.strip()
        expected = texts(first)
        for i in members:
            values = _slots(notices[i])
            fill = (lambda m, v=values: v[int(m.group(1))])  # noqa: E731 - bound per notice
            got = (_MARKS.sub(fill, zh_shape), _MARKS.sub(fill, en_shape))
            if i == members[0] and got != expected:  # a template that shapes these facts: one by one
                for j in members:
                    out[j] = texts(notices[j])
                break
            out[i] = got
    return [x for x in out if x is not None]
