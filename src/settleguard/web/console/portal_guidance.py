"""What the merchant portal tells a merchant to do about its failed, held or unclear payouts.

A diagnosis's guidance is written for whoever must act (guidance.toml): the merchant, platform operations,
the bank. A merchant reads only its own steps (re-bind the card, ask its bank, ...), in neutral words what
the platform does by itself (retry, pay again once fixed), and never an instruction for operations staff
(keep the bank's original answer, inquire before resending, open a compliance review: issue 18). Payouts that
need the same steps are one group with the steps shown once (the portal repeated them per payout).
Pure: the step library's texts are given (:func:`step_ids` reads them from the knowledge base).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from settleguard.diagnosis import knowledge_base

# steps of the library the merchant itself takes: shown as written
MERCHANT_STEPS = frozenset({"rebind_card", "confirm_card_status", "bind_other_card", "contact_bank_support",
                            "raise_limit", "complete_real_name", "contact_platform_hotline"})
# steps the platform takes by itself, told to the merchant in its own words (zh, en); every other step of
# the library is an operations instruction and is not shown
TOLD: Mapping[str, tuple[str, str]] = {
    "wait_and_retry": ("银行或通道临时故障，系统会自动重新出款，无需您处理",
                       "A temporary fault at the bank or channel: the payout is retried automatically"),
    "next_window": ("收款卡当日或当月的累计限额已用完，系统会在下一个限额周期自动重新出款",
                    "The card's daily or monthly limit is used up: the payout is retried in the next limit window"),
    "split_payout": ("金额超过单笔限额时，系统会拆成几笔出款，合计金额不变",
                     "An amount over the per-payment limit is paid in several parts with the same total"),
    "repay_after_fix": ("问题解决后，系统会自动重新出款，不会重复付款",
                        "Once the problem is fixed, the payout is paid again automatically, never twice"),
    "inquire_first": ("银行正在确认这笔出款的结果，确认之前不会重复付款",
                      "The bank is confirming this payout's result; it is not paid again before that"),
}
NOTHING_TO_DO = ("我们正在处理这笔出款，暂不需要您操作，有结果会通知您",
                 "We are handling this payout; nothing to do for now, you will be told the result")
CONFIRMING = ("银行正在确认这笔出款的结果，请耐心等待，不需要您处理",
              "The bank is confirming this payout; nothing to do for now")
UNCLEAR = frozenset({"result_unknown", "inquiry"})


RULE_NOTE = "rule_note"  # a rule's remark for the reader of the bank's answer (operations): not shown


def step_ids() -> dict[str, str]:
    """Each step text of the packaged knowledge base (Chinese and English) -> its step id, and each rule's note
    (which the guidance may start with: "该应答不是最终失败…") -> :data:`RULE_NOTE`."""
    kb = knowledge_base()
    notes = {n: RULE_NOTE for r in kb.rules for n in (r.note_zh, r.note_en) if n}
    return {**notes, **{s.zh: i for i, s in kb.steps.items()}, **{s.en: i for i, s in kb.steps.items()}}


def merchant_steps(guidance: Iterable[str], ids: Mapping[str, str], lang: str) -> tuple[tuple[str, ...], bool]:
    """(the steps a merchant reads, whether the merchant must act) for one diagnosis's guidance in ``lang``.
    A text outside the library (a card state's advice, the no-card steps) is the merchant's already."""
    shown: list[str] = []
    act = False
    for text in guidance:
        step = ids.get(text)
        if step is None or step in MERCHANT_STEPS:
            act = True
            said = text
        elif step in TOLD:
            said = TOLD[step][1 if lang == "en" else 0]
        else:
            continue  # an operations instruction or remark
        if said not in shown:
            shown.append(said)
    if not shown:
        shown.append(NOTHING_TO_DO[1 if lang == "en" else 0])
    return tuple(shown), act


def groups(trouble: Sequence[dict[str, Any]], ids: Mapping[str, str], lang: str) -> list[dict[str, Any]]:
    """The portal's payouts that need attention grouped by what the merchant must do: ``{"steps", "act",
    "reasons", "payouts"}``, the groups where the merchant acts first. A payout's ``diagnosis`` is its
    current reason (``to_dict(lang)``) or None."""
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for p in trouble:
        d = p.get("diagnosis")
        if d:
            steps, act = merchant_steps(d["guidance"], ids, lang)
            reason = str(d["meaning"])
        else:
            steps = ((CONFIRMING if p["status"] in UNCLEAR else NOTHING_TO_DO)[1 if lang == "en" else 0],)
            act, reason = False, ""
        group = found.setdefault(steps, {"steps": steps, "act": act, "reasons": [], "payouts": []})
        if reason and reason not in group["reasons"]:
            group["reasons"].append(reason)
        group["payouts"].append(p)
    return sorted(found.values(), key=lambda g: not g["act"])
