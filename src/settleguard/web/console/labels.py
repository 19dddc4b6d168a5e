"""Words of the console and the portal in Chinese and English, and who may bind cards there. Pure.

The label tables themselves live in :mod:`settleguard.labels` (one table for the CLI, the console and the
portal); this module re-exports them for the templates and keeps what only the console needs."""

from __future__ import annotations

from settleguard.access.model import Role
from settleguard.labels import (
    AGEING,
    ATTEMPT_KIND,
    CASE_SOURCE,
    CASE_STATUS,
    CATEGORY,
    CHANNEL,
    DECISION,
    OUTCOME,
    PAYOUT_STATUS,
    PRIORITY,
    ROLE,
    SLA,
    event_reason,
    label,
    zh_en,
)
from settleguard.payouts.model import PayoutStatus

__all__ = ["AGEING", "ATTEMPT_KIND", "CARD_BINDERS", "CASE_SOURCE", "CASE_STATUS", "CATEGORY", "CHANNEL", "DECISION", "OUTCOME",
           "PAYOUT_STATUS", "PRIORITY", "ROLE", "SLA", "TROUBLE", "event_reason", "label", "zh_en"]

S = PayoutStatus
# payouts a merchant should know about: money not (yet) on its card for a reason
TROUBLE = frozenset({S.FAILED, S.HELD, S.NEEDS_REVIEW, S.RETRY_SCHEDULED, S.RETURNED, S.RESULT_UNKNOWN, S.INQUIRY})
# The portal's card re-binding form: the merchant itself, or an operator on its behalf (as with
# ``settleguard card bind``); support and auditors may look, not bind.
CARD_BINDERS = frozenset({Role.MERCHANT, Role.OPERATOR})
