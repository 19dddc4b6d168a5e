"""One payout for people: the row, its status events, attempts, split parts and the diagnosis of its
latest failure with guidance. Shared by ``settleguard payouts show`` and ``GET /api/v1/payouts/{id}``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from settleguard.diagnosis import SCHEMES, classify
from settleguard.payouts import repository as repo


def latest_diagnosis(attempts: list[dict[str, Any]], lang: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The latest failed attempt diagnosed again in the scheme its rule came from: (in ``lang``, in
    English), or None when no attempt failed."""
    failed = [a for a in attempts if a["outcome"] not in (None, "succeeded")]
    if not failed:
        return None
    last = failed[-1]
    rule = str(last["rule_id"] or "")
    prefix = rule.split(".", 1)[0]
    found = classify(prefix if prefix in SCHEMES else None, last["code"] or None, last["message"] or None)
    return found.to_dict(lang), found.to_dict("en")


def detail(conn: Connection, payout_id: int, lang: str = "zh") -> dict[str, Any] | None:
    """``{"payout", "events", "attempts", "parts", "diagnosis", "diagnosis_en"}`` or None when there is no
    such payout. ``diagnosis`` is in ``lang`` (zh or en), ``diagnosis_en`` in English (None when ``lang``
    is en or nothing failed)."""
    p = repo.one(conn, payout_id)
    if p is None:
        return None
    events, attempts = repo.history(conn, payout_id)
    parts = repo.parts_of(conn, payout_id)
    found = latest_diagnosis(attempts, lang)
    diagnosis, english = (None, None) if found is None else found
    return {"payout": p, "events": events, "attempts": attempts, "parts": parts, "diagnosis": diagnosis,
            "diagnosis_en": english if lang != "en" else None}
