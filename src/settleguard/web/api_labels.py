"""Labels in API responses (issue 18): codes stay the contract (``status: "held"``), and beside each code a
person may read, the words of settleguard.labels — ``status_label: {"zh": "挂账", "en": "held"}`` — so that a
client shows what the CLI, console and portal show and never a bare code. Pure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, computed_field

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


def label_field(attr: str, table: Table) -> Any:
    """A read-only field of a response model: the label of the model's ``attr`` code in ``table`` —
    ``status_label = label_field("status", labels.PAYOUT_STATUS)``; it is in the OpenAPI schema."""

    def words(self: BaseModel) -> Label | None:
        return label_of(table, getattr(self, attr))

    field = computed_field(return_type=Label | None, description=f"{attr} 的中英文名称 the words for {attr}")
    return field(property(words))
