"""Rendering notices with the packaged Jinja2 templates (notify/templates).

One template per notice kind (``<kind>.j2``) defines the title and the lead sentence in Chinese and
English; the layouts (``_text.j2``, ``_html.j2``, ``_sms.j2``, ``_subject.j2``) put them together
with the reason (the diagnosis meaning), the steps the merchant must take (the diagnosis guidance),
the amount held in yuan, the payout and the masked card, Chinese first. HTML is autoescaped.
"""

from __future__ import annotations

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
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; available: {', '.join(FORMATS)}")
    kind = notice.kind if notice.kind in KINDS else "unknown"
    tpl = _env(fmt == "html").get_template(f"{kind}.j2")
    out = tpl.render(layout=f"_{fmt}.j2", **context(notice)).strip()
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
