"""Words of the console and the portal in Chinese and English, and who may bind cards there. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from settleguard.cases.model import STATUS_ZH as CASE_STATUS_ZH
from settleguard.diagnosis.model import CATEGORY_ZH
from settleguard.payouts.model import STATUS_ZH, PayoutStatus
from settleguard.web.model import Role

S = PayoutStatus
PAYOUT_STATUS: Mapping[str, tuple[str, str]] = {str(s): (zh, str(s).replace("_", " ")) for s, zh in STATUS_ZH.items()}
# payouts a merchant should know about: money not (yet) on its card for a reason
TROUBLE = frozenset({S.FAILED, S.HELD, S.NEEDS_REVIEW, S.RETRY_SCHEDULED, S.RETURNED, S.RESULT_UNKNOWN, S.INQUIRY})
CATEGORY: Mapping[str, tuple[str, str]] = {str(c.value): (zh, str(c.value).replace("_", " ")) for c, zh in CATEGORY_ZH.items()}
CASE_STATUS: Mapping[str, tuple[str, str]] = {str(s): (zh, str(s).replace("_", " ")) for s, zh in CASE_STATUS_ZH.items()}
AGEING: Mapping[str, tuple[str, str]] = {"0-1d": ("1 天内", "under 1 day"), "1-3d": ("1-3 天", "1-3 days"),
                                         "3-7d": ("3-7 天", "3-7 days"), "7d+": ("7 天以上", "over 7 days")}
SLA: Mapping[str, tuple[str, str]] = {"overdue": ("已超时", "overdue"), "today": ("今日到期", "due today"),
                                      "later": ("之后到期", "later")}
ROLE: Mapping[str, tuple[str, str]] = {Role.OPERATOR: ("运营", "operator"), Role.SUPPORT: ("客服", "support"),
                                       Role.AUDITOR: ("审计", "auditor"), Role.MERCHANT: ("商户", "merchant")}
# The portal's card re-binding form: the merchant itself, or an operator on its behalf (as with
# ``settleguard card bind``); support and auditors may look, not bind.
CARD_BINDERS = frozenset({Role.MERCHANT, Role.OPERATOR})


def label(table: Mapping[str, tuple[str, str]], key: str | None, lang: str) -> str:
    """The word for ``key`` in ``lang`` ("zh" or "en"); the key itself when unknown."""
    if key is None:
        return "-"
    pair = table.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]
