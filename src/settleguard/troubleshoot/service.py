"""The troubleshooter's use cases: run a symptom's checks on live data (:func:`run`) and open one case with the
evidence attached (:func:`open_case`). Called by ``settleguard troubleshoot`` and the portal and console pages
(web/console/routes_troubleshoot.py); docs/troubleshoot.md.

Each check reads through the repository of the domain that owns the data: payouts and the reason for their
current state (payouts.details.current_reason), the settlement card (cards.repository, and
payouts.details.card_reason for why it cannot receive money), the terminal registry and the stored terminal
findings (terminals.repository; the merchant's terminals' checks are re-run first), failed attempts and open
reconciliation breaks (troubleshoot/repository.py). The judgements are troubleshoot/model.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard import labels
from settleguard.cards import repository as card_repo
from settleguard.cards.service import status_text
from settleguard.diagnosis import SCHEMES, classify
from settleguard.merchants import repository as merchant_repo
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.details import card_reason, current_reason
from settleguard.payouts.model import PayoutStatus
from settleguard.troubleshoot import repository as repo
from settleguard.troubleshoot.checks import (
    Report,
    judge_card,
    judge_failures,
    judge_payouts,
    judge_recon,
    judge_terminals,
    parse_symptom,
)
from settleguard.troubleshoot.model import (
    ADVICE,
    MAX_PAYOUTS,
    MAX_TROUBLE,
    RECENT_DAYS,
    TROUBLE,
    BreakFact,
    CardFact,
    Check,
    FailureFact,
    FindingFact,
    PayoutFact,
    Result,
    Symptom,
    TerminalFact,
    Text,
    plan,
)

CASE_CATEGORY = "complaint"  # cases.model CATEGORY_ZH: 商户投诉 (the merchant's own report)
MAX_FAILURES = 50


class TroubleshootRefused(Exception):
    """Bad input (an unknown merchant or symptom) or a refused case; nothing changed."""

    def __init__(self, zh: str, en: str, status: int = 422) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en, self.status = zh, en, status


def symptom_of(text: str | None) -> Symptom | None:
    """The symptom typed (code, Chinese or English label); None for none typed; refused when unknown."""
    if text is None or not text.strip():
        return None
    found = parse_symptom(text[:100])
    if found is None:
        shown = text.strip()[:40]
        raise TroubleshootRefused(
            f"未知症状「{shown}」；可选：{labels.accepted(labels.TROUBLESHOOT_SYMPTOM)}",
            f"unknown symptom {shown!r}; accepted: {', '.join(labels.TROUBLESHOOT_SYMPTOM)}")
    return found


def merchant_of(conn: Connection, merchant: str | int) -> dict[str, Any]:
    """The merchant by id (int) or merchant number (str); refused (404) when there is none."""
    if isinstance(merchant, int):
        found = merchant_repo.by_id(conn, merchant)
    else:
        row = merchant_repo.merchant_by_no(conn, merchant.strip()[:32])
        found = None if row is None else merchant_repo.by_id(conn, row.id)
    if found is None:
        shown = str(merchant)[:40]
        raise TroubleshootRefused(f"没有商户 {shown}", f"no merchant {shown}", status=404)
    return found


def _payouts(conn: Connection, mid: int, now: datetime, zone: ZoneInfo) -> Result:
    since = (now.astimezone(zone) - timedelta(days=RECENT_DAYS)).date()
    rows = {r["id"]: r for r in repo.recent_payouts(conn, mid, since=since, statuses=None, limit=MAX_PAYOUTS)}
    for r in repo.recent_payouts(conn, mid, since=since, statuses=tuple(sorted(TROUBLE)), limit=MAX_TROUBLE):
        rows.setdefault(r["id"], r)
    facts = []
    for r in sorted(rows.values(), key=lambda r: -int(r["id"])):
        status = PayoutStatus(r["status"])
        reason = None
        if r["status"] in TROUBLE:
            reason = current_reason(conn, int(r["id"]), status, payout_repo.history(conn, int(r["id"]))[1])
        facts.append(PayoutFact(int(r["id"]), str(r["status"]), int(r["amount_fen"]), r["cycle_date"], r["value_date"],
                                r["paid_at"], r["card_masked"], reason))
    return judge_payouts(facts, zone)


def _card(conn: Connection, mid: int) -> Result:
    current = card_repo.current_accounts(conn, mid)  # active or unusable, newest first
    active = [a for a in current if a.status == "active"]
    account = active[0] if active else (current[0] if current else None)
    if account is None:
        return judge_card(None, card_reason(conn, None))
    zh, en = status_text(account.card_status) if account.card_status else ("", "")
    fact = CardFact(account.pan_masked, account.bank_name, account.status, account.card_status, zh, en)
    usable = account.status == "active" and account.card_status in (None, "normal")
    return judge_card(fact, None if usable else card_reason(conn, account.id))


def _terminals(engine: Engine, mid: int, symptom: Symptom | None, now: datetime) -> Result:
    from settleguard.terminals import repository as term_repo
    from settleguard.terminals.service import evaluate, guidance

    with engine.connect() as conn:
        _, rows = term_repo.listing(conn, unhealthy=False, merchant_id=mid, limit=200)
    with_telemetry = [int(r["id"]) for r in rows if r["has_telemetry"]]
    if with_telemetry:  # live: the terminals' checks again now (silence depends on the clock)
        with engine.begin() as conn:
            evaluate(conn, with_telemetry, now)
    terms = [TerminalFact(int(r["id"]), str(r["terminal_no"]), str(r["serial_no"] or ""), bool(r["has_telemetry"]))
             for r in rows]
    found: list[FindingFact] = []
    with engine.connect() as conn:
        for term in terms:
            for f in term_repo.findings(conn, term.id, open_only=True):
                words = guidance(str(f["code"]))  # the checks' or a stored message log's (analysis.KINDS)
                found.append(FindingFact(
                    int(f["id"]), term.terminal_no, str(f["code"]), str(f["severity"]), str(f["owner"]),
                    Text(str(f["detail_zh"]), str(f["detail_en"])),
                    Text(words.get("merchant_zh", ""), words.get("merchant_en", "")),
                    Text(words.get("ops_zh", ""), words.get("ops_en", ""))))
    return judge_terminals(terms, found, symptom)


def _diagnosis_of(row: dict[str, Any]) -> Any:
    prefix = str(row["rule_id"] or "").split(".", 1)[0]
    return classify(prefix if prefix in SCHEMES else None, row["code"] or None, row["message"] or None)


def _failures(conn: Connection, mid: int, now: datetime, zone: ZoneInfo) -> Result:
    rows = repo.failed_attempts(conn, mid, since=now - timedelta(days=RECENT_DAYS), limit=MAX_FAILURES)
    facts = []
    for r in rows:
        d = _diagnosis_of(r)
        facts.append(FailureFact(int(r["payout_id"]), r["responded_at"] or r["requested_at"], d.category.value, d))
    return judge_failures(facts, zone)


def _recon(conn: Connection, mid: int, symptom: Symptom | None) -> Result:
    rows = repo.open_breaks(conn, mid)
    return judge_recon([BreakFact(int(r["id"]), str(r["type"]), r["amount_fen"], r["booking_date"], r["payout_id"])
                        for r in rows], symptom)


def run(engine: Engine, merchant: str | int, symptom: Symptom | None, *, now: datetime, zone: ZoneInfo) -> Report:
    """The symptom's checks (every check when ``symptom`` is None) for the merchant (id or merchant number)."""
    with engine.connect() as conn:
        m = merchant_of(conn, merchant)
    mid = int(m["id"])
    results: list[Result] = []
    for check in plan(symptom):
        if check is Check.TERMINALS:
            results.append(_terminals(engine, mid, symptom, now))
            continue
        with engine.connect() as conn:
            if check is Check.PAYOUTS:
                results.append(_payouts(conn, mid, now, zone))
            elif check is Check.CARD:
                results.append(_card(conn, mid))
            elif check is Check.FAILURES:
                results.append(_failures(conn, mid, now, zone))
            else:
                results.append(_recon(conn, mid, symptom))
    advice = ADVICE[symptom] if symptom is not None else ()
    return Report(str(m["merchant_no"]), str(m["registered_name"]), symptom, tuple(results), advice)


def case_title(symptom: Symptom | None) -> str:
    if symptom is None:
        return "自助排障 Troubleshooter"
    zh, en = labels.pair(labels.TROUBLESHOOT_SYMPTOM, symptom)
    return f"自助排障：{zh} Troubleshooter: {en}"


def open_case(engine: Engine, report: Report, *, actor: str, now: datetime, tz: str,
              payout_ids: Sequence[int] | None = None) -> tuple[int, bool]:
    """Open one case (商户投诉, source manual) for the report's merchant with its payouts linked (their evidence
    bundles are the case's evidence) and the checks' findings as its first note: (case id, created). While a
    troubleshooter case of the same symptom is still being worked, that case is returned and nothing is
    written (a double click opens one case)."""
    from settleguard.cases import service as cases

    title = case_title(report.symptom)
    with engine.connect() as conn:
        mid = int(merchant_of(conn, report.merchant_no)["id"])
        existing = repo.active_case(conn, mid, title)
    if existing is not None:
        return int(existing), False
    linked = list(report.payout_ids if payout_ids is None else payout_ids)
    try:
        case_id = cases.open_case(engine, merchant_no=report.merchant_no, category=CASE_CATEGORY, title=title,
                                  actor=actor, now=now, payout_ids=linked, tz=tz)
    except cases.CaseActionRefused as exc:
        raise TroubleshootRefused(exc.zh, exc.en) from None
    cases.add_note(engine, case_id, report.summary(), actor, now)
    return case_id, True
