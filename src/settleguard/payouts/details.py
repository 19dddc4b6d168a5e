"""One payout for people: the row, its status events, attempts, split parts and the diagnosis of the reason
for its current state, with guidance. Shared by ``settleguard payouts show``, ``GET /api/v1/payouts/{id}``,
the console's payout page and the merchant portal.

The reason for the current state (:func:`current_reason`):

- created, submitted, succeeded, released, cancelled, split: none (nothing failed that the payout is
  waiting on; an older failure is history, in the attempts);
- held without being sent (the event reason begins with "未发送"): the card it was held for, as the bank
  described it when the card was marked unusable (a payout's answer, or a status inquiry), or "no usable
  card" when none is bound;
- any other (held or returned after an answer, result_unknown, inquiry, retry_scheduled, needs_review,
  failed): the latest answered attempt that failed or was unclear.

Only a retry-scheduled payout shows a next-attempt time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from settleguard.cards import repository as card_repo
from settleguard.cards.service import status_text
from settleguard.cards.verifier import CardStatus
from settleguard.diagnosis import SCHEMES, Category, Diagnosis, classify
from settleguard.diagnosis.model import Decision, Explanation, Owner, Stage
from settleguard.notify.model import DEFAULT_STEPS
from settleguard.notify.outbox import diagnosis_of
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.service import NOT_SENT

S = PayoutStatus
NO_REASON = frozenset({S.CREATED, S.SUBMITTED, S.SUCCEEDED, S.RELEASED, S.CANCELLED, S.SPLIT})


def _failed(attempts: list[dict[str, Any]]) -> dict[str, Any] | None:
    failed = [a for a in attempts if a["outcome"] not in (None, "succeeded")]
    return failed[-1] if failed else None


def _of_attempt(a: dict[str, Any]) -> Diagnosis:
    prefix = str(a["rule_id"] or "").split(".", 1)[0]
    return classify(prefix if prefix in SCHEMES else None, a["code"] or None, a["message"] or None)


def latest_diagnosis(attempts: list[dict[str, Any]], lang: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The latest failed attempt diagnosed again in the scheme its rule came from: (in ``lang``, in
    English), or None when no attempt failed."""
    last = _failed(attempts)
    if last is None:
        return None
    found = _of_attempt(last)
    return found.to_dict(lang), found.to_dict("en")


def _made(category: Category, meaning: tuple[str, str], steps: tuple[tuple[str, ...], tuple[str, ...]],
          code: str | None = None) -> Diagnosis:
    return Diagnosis(category=category, retryable=False, decision=Decision.hold, owner=Owner.merchant, confidence=1.0,
                     rule=None, meaning_zh=meaning[0], meaning_en=meaning[1],
                     guidance_zh=steps[0], guidance_en=steps[1], evidence_zh=(), evidence_en=(),
                     explanation=Explanation(Stage.none, "", code=code))


def no_card() -> Diagnosis:
    """Held because the merchant has no usable settlement card."""
    return _made(Category.card_info_error, ("商户没有可用的结算卡，结算款未发送", "the merchant has no usable settlement "
                                            "card; the payout was not sent"), DEFAULT_STEPS["no_card"])


def card_reason(conn: Connection, account_id: int | None) -> Diagnosis:
    """Why the card ``account_id`` is unusable, as the bank said when it was marked (a payout's answer: its
    diagnosis; a status inquiry: the card state with its advice); "no usable card" when there is none."""
    event = None if account_id is None else card_repo.latest_event(conn, account_id, "marked_unusable")
    payload = event["payload"] if event is not None and isinstance(event["payload"], dict) else None
    if payload is None:
        return no_card()
    code, message = str(payload.get("answer_code") or ""), str(payload.get("answer_message") or "")
    if payload.get("source") == "payout":
        return diagnosis_of(payload.get("scheme"), code, message)
    status = str(payload.get("status") or "")
    zh, en = status_text(status)
    advice = ((CardStatus(status).advice_zh,), (CardStatus(status).advice_en,)) if status in set(CardStatus) else ((), ())
    then = ("换绑新卡后挂账款项将自动付到新卡", "once a new card is bound, the held money is paid to it automatically")
    return _made(Category.card_status_abnormal,
                 (f"银行查询结算卡 {payload.get('masked') or ''} 状态为“{zh}”（{code} {message}），无法收款".replace("  ", " "),
                  f"the bank reports card {payload.get('masked') or ''} as {en} ({code}); it cannot receive money"),
                 ((*advice[0], then[0]), (*advice[1], then[1])), code or None)


def current_reason(conn: Connection, payout_id: int, status: PayoutStatus,
                   attempts: list[dict[str, Any]]) -> Diagnosis | None:
    """The diagnosis of the reason for the payout's current state (see the module docstring), or None."""
    if status in NO_REASON:
        return None
    if status is S.HELD:
        held = repo.last_event_to(conn, payout_id, S.HELD)
        if held is not None and str(held["reason"]).startswith(NOT_SENT):
            return card_reason(conn, repo.held_on(conn, [payout_id]).get(payout_id))
    last = _failed(attempts)
    return None if last is None else _of_attempt(last)


def detail(conn: Connection, payout_id: int, lang: str = "zh") -> dict[str, Any] | None:
    """``{"payout", "events", "attempts", "parts", "diagnosis", "diagnosis_en"}`` or None when there is no
    such payout. ``diagnosis`` is the reason for the current state (:func:`current_reason`) in ``lang`` (zh or
    en), ``diagnosis_en`` in English (None when ``lang`` is en or there is no reason). The payout's
    ``category`` is that reason's, and ``next_attempt_at`` is given only while it is retry-scheduled."""
    p = repo.one(conn, payout_id)
    if p is None:
        return None
    events, attempts = repo.history(conn, payout_id)
    parts = repo.parts_of(conn, payout_id)
    found = current_reason(conn, payout_id, PayoutStatus(p["status"]), attempts)
    diagnosis = None if found is None else found.to_dict(lang)
    english = None if found is None or lang == "en" else found.to_dict("en")
    p = {**p, "category": None if found is None else found.category.value,
         "next_attempt_at": p["next_attempt_at"] if p["status"] == S.RETRY_SCHEDULED else None}
    return {"payout": p, "events": events, "attempts": attempts, "parts": parts, "diagnosis": diagnosis,
            "diagnosis_en": english}
