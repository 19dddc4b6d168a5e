"""What the merchant portal tells a merchant to do about its failed, held or unclear payouts.

A diagnosis's guidance is written for whoever must act; the knowledge base names each step's and each note's
reader (guidance.toml ``audience``, rules' ``note_audience``), and a diagnosis carries what a merchant reads
(``merchant_guidance``: its own steps, what the platform does by itself in neutral words, never an instruction
for operations staff — issue 18). The portal and the merchant notices read that same field. Payouts that need
the same steps are one group with the steps shown once (the portal repeated them per payout). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from settleguard.diagnosis.model import NOTHING_TO_DO

CONFIRMING = ("银行正在确认这笔出款的结果，请耐心等待，不需要您处理",
              "The bank is confirming this payout; nothing to do for now")
UNCLEAR = frozenset({"result_unknown", "inquiry"})


def groups(trouble: Sequence[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """The portal's payouts that need attention grouped by what the merchant must do: ``{"steps", "act",
    "reasons", "payouts"}``, the groups where the merchant acts first. A payout's ``diagnosis`` is its
    current reason (``Diagnosis.to_dict(lang)``) or None."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for p in trouble:
        d = p.get("diagnosis")
        if d:
            steps, act = tuple(d["merchant_guidance"]), bool(d["merchant_acts"])
            reason = str(d["meaning"])
        else:
            steps = ((CONFIRMING if p["status"] in UNCLEAR else NOTHING_TO_DO)[1 if lang == "en" else 0],)
            act, reason = False, ""
        group = found.setdefault(steps, {"steps": steps, "act": act, "reasons": [], "payouts": []})
        if reason and reason not in group["reasons"]:
            group["reasons"].append(reason)
        group["payouts"].append(p)
    return sorted(found.values(), key=lambda g: not g["act"])
