"""Labels in API responses (issue 18): codes stay the contract (``status: "held"``), and beside each code a
person may read, the words of settleguard.labels — ``status_label: {"zh": "挂账", "en": "held"}`` — so that a
client shows what the CLI, console and portal show and never a bare code. Pure."""

from __future__ import annotations

from pydantic import BaseModel

from settleguard import labels
from settleguard.labels import Table


class Label(BaseModel):
    """The words for a code: Chinese first, then English."""

    zh: str
    en: str


def label_of(table: Table, code: object) -> Label | None:
    """The label of ``code`` in ``table`` (an unknown code reads as itself); None for no code."""
    if code is None or code == "":
        return None
    zh, en = labels.pair(table, code)
    return Label(zh=zh, en=en)
