"""The operations console (operators, support, auditors): dashboard ``/``, payout queue ``/payouts`` (filters,
a merchant search by part of the number or name) with bulk release, payout ``/payouts/{id}`` with cancel
(cases: routes_cases.py; merchants ``/merchants…``: routes_merchants.py).
Read pages need a staff role (a merchant user gets 403, or 404 for another merchant's payout or
merchant page); bulk release needs the operator role (payout_release), cancel the operator role
(payout_cancel), both the form's CSRF token."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import Connection

from settleguard.access.model import Action, Principal, may
from settleguard.diagnosis import Category
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.details import detail
from settleguard.payouts.model import CANCELLABLE, PayoutStatus
from settleguard.payouts.release import PayoutActionRefused, SameCardRefused, cancel, release
from settleguard.web import dashboard_repository as dash
from settleguard.web.console import labels
from settleguard.web.console.common import (
    DEFAULT_ZONE,
    PAGE,
    Id,
    Staff,
    User,
    check_csrf,
    check_owner,
    lang_of,
    not_found,
    render,
    require_action,
)
from settleguard.web.console.labels import label
from settleguard.web.context import web
from settleguard.web.services import local_zone

router = APIRouter(include_in_schema=False)
MAX_BULK = 200


def dashboard_data(conn: Connection, now: datetime, day: date | None = None,
                   zone: ZoneInfo = DEFAULT_ZONE) -> dict[str, Any]:
    """Every dashboard figure (tables and charts use the same numbers). Payouts by status are of ``day``, by
    default today or, when today has none (the demo's week seen later), the latest day with payouts; a
    chosen ``day`` also ends the 30-day window at its end (by default the window ends now)."""
    local = now.astimezone(zone)
    end_of_today = datetime.combine(local.date() + timedelta(days=1), time(0), zone)
    shown = day or dash.latest_payout_day(conn, local.date()) or local.date()
    until = None if day is None else datetime.combine(day + timedelta(days=1), time(0), zone)
    since = (until or now) - timedelta(days=30)
    attempts, by_category = dash.failures_by_category(conn, since, until)
    retried, retried_ok = dash.retries(conn, since, until)
    ageing = dash.held_ageing(conn, now)
    return {"today": local.date().isoformat(), "day": shown.isoformat(), "day_chosen": day is not None,
            "by_status": dash.today_by_status(conn, shown),
            "attempts_30d": attempts, "by_category": by_category, "by_bank": dash.failures_by_bank(conn, since, until),
            "held": ageing, "held_fen": sum(b["amount_fen"] for b in ageing),
            "held_count": sum(b["count"] for b in ageing), "retries": {"attempts": retried, "succeeded": retried_ok},
            "cases_sla": dash.cases_by_sla(conn, now, end_of_today)}


def chart_data(data: dict[str, Any], lang: str) -> dict[str, Any]:
    """The dashboard's figures as the charts draw them: names in ``lang``, rates in percent, money in yuan."""
    total = data["attempts_30d"]
    return {
        "status": {"names": [label(labels.PAYOUT_STATUS, r["status"], lang) for r in data["by_status"]],
                   "values": [r["count"] for r in data["by_status"]]},
        "category": {"names": [label(labels.CATEGORY, r["category"], lang) for r in data["by_category"]],
                     "values": [round(100 * r["failed"] / total, 2) if total else 0 for r in data["by_category"]]},
        "bank": {"names": [r["bank_name"] for r in data["by_bank"]],
                 "values": [round(100 * r["failed"] / r["attempts"], 2) if r["attempts"] else 0 for r in data["by_bank"]]},
        "held": {"names": [label(labels.AGEING, r["bucket"], lang) for r in data["held"]],
                 "values": [r["amount_fen"] / 100 for r in data["held"]]},
        "sla": {"names": [label(labels.SLA, k, lang) for k in ("overdue", "today", "later")],
                "values": [data["cases_sla"][k] for k in ("overdue", "today", "later")]},
    }


@router.get("/")
def dashboard(request: Request, user: Staff, day: Annotated[date | None, Query()] = None) -> Response:
    ctx = web(request)
    with ctx.engine.connect() as conn:
        data = dashboard_data(conn, ctx.now(), day, local_zone(request))
    return render(request, "dashboard.html", user, data=data, charts=chart_data(data, lang_of(request)))


@router.get("/dashboard.json")
def dashboard_json(request: Request, user: Staff, day: Annotated[date | None, Query()] = None) -> Response:
    """The dashboard's figures as JSON (what the charts draw)."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        return JSONResponse(dashboard_data(conn, ctx.now(), day, local_zone(request)))


@router.get("/payouts")
def payouts(request: Request, user: Staff,
            status: Annotated[PayoutStatus | None, Query()] = None,
            category: Annotated[Category | None, Query()] = None,
            bank: Annotated[str | None, Query(max_length=16)] = None,
            merchant: Annotated[str | None, Query(max_length=64)] = None,
            page: Annotated[int, Query(ge=1, le=100_000)] = 1,
            done: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    filters: dict[str, Any] = {"status": str(status) if status else None, "category": str(category) if category else None,
               "bank_code": bank or None, "merchant_search": (merchant or "").strip() or None}
    with web(request).engine.connect() as conn:
        total, rows = dash.queue(conn, limit=PAGE, offset=(page - 1) * PAGE, **filters)
        bank_list = dash.banks(conn)
    return render(request, "payouts.html", user, rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE)),
                  filters=filters, banks=bank_list, statuses=[str(s) for s in PayoutStatus],
                  categories=[str(c.value) for c in Category], can_release=may(user.role, Action.PAYOUT_RELEASE))


@router.post("/payouts/release")
def bulk_release(request: Request, user: Staff, ids: Annotated[list[int], Form()] = [],  # noqa: B006
                 note: Annotated[str, Form(max_length=500)] = "",
                 csrf_token: Annotated[str, Form()] = "") -> Response:
    """Release the ticked payouts one by one through payouts.release (each in its own transaction, with its
    ledger entry, events, audit record and merchant notice); refused ones are listed with the reason."""
    check_csrf(user, csrf_token)
    require_action(user, Action.PAYOUT_RELEASE)
    ctx = web(request)
    results: list[dict[str, Any]] = []
    same_card = 0  # held for a card problem, card unchanged since: never overridden in bulk
    for payout_id in sorted(set(ids))[:MAX_BULK]:
        try:
            new = release(ctx.engine, payout_id, user.username, ctx.now(), note.strip())
            results.append({"id": payout_id, "ok": True, "status": str(new)})
        except PayoutActionRefused as exc:
            same_card += isinstance(exc, SameCardRefused)
            results.append({"id": payout_id, "ok": False, "zh": exc.zh, "en": exc.en,
                            "same_card": isinstance(exc, SameCardRefused)})
    return render(request, "released.html", user, results=results, skipped=max(0, len(set(ids)) - MAX_BULK),
                  same_card=same_card)


# What the payout page says after an action went through (``?done=<key>``); unknown keys say nothing.
DONE = {"cancelled": ("出款已撤销，资金已挂账", "payout cancelled; its money is held"),
        "released": ("出款已放行", "payout released")}


def _payout_page(request: Request, user: Principal, payout_id: int, *, status: int = 200, done: str | None = None,
                 refused: PayoutActionRefused | None = None, reason: str = "", override_reason: str = "") -> Response:
    lang = lang_of(request)
    with web(request).engine.connect() as conn:
        check_owner(user, payout_repo.owner(conn, payout_id))
        found = detail(conn, payout_id, lang)
        raw = dash.raw_answers(conn, payout_id)
    if found is None:
        raise not_found()
    current = found["payout"]["status"]
    return render(request, "payout.html", user, status=status, d=found, raw=raw,
                  can_release=may(user.role, Action.PAYOUT_RELEASE)
                  and current in (PayoutStatus.HELD, PayoutStatus.NEEDS_REVIEW),
                  can_cancel=may(user.role, Action.PAYOUT_CANCEL) and current in CANCELLABLE,
                  done=DONE.get(done or ""), refused=refused, reason=reason,
                  same_card=isinstance(refused, SameCardRefused), override_reason=override_reason)


@router.get("/payouts/{payout_id}")
def payout_page(request: Request, user: User, payout_id: Id,
                done: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    return _payout_page(request, user, payout_id, done=done)


def _guard_payout_form(request: Request, user: User, payout_id: int, csrf_token: str, action: Action) -> None:
    """A payout form's checks, in order: another merchant's payout is 404, then the CSRF token, then the role."""
    with web(request).engine.connect() as conn:
        check_owner(user, payout_repo.owner(conn, payout_id))
    check_csrf(user, csrf_token)
    require_action(user, action)


@router.post("/payouts/{payout_id}/release")
def release_payout(request: Request, user: User, payout_id: Id, note: Annotated[str, Form(max_length=500)] = "",
                   override: Annotated[str, Form(max_length=8)] = "",
                   override_reason: Annotated[str, Form(max_length=500)] = "",
                   csrf_token: Annotated[str, Form()] = "") -> Response:
    """Release one payout through payouts.release.release, as ``settleguard payouts release`` does; a payout held
    for a card problem whose card is unchanged since it failed is refused (409, the page says why and offers the
    override) unless the override box is ticked with a written reason (audited)."""
    _guard_payout_form(request, user, payout_id, csrf_token, Action.PAYOUT_RELEASE)
    ctx = web(request)
    try:
        release(ctx.engine, payout_id, user.username, ctx.now(), note.strip(), override=override == "yes",
                reason=override_reason)
    except PayoutActionRefused as exc:
        return _payout_page(request, user, payout_id, status=409, refused=exc, override_reason=override_reason)
    return RedirectResponse(f"/payouts/{payout_id}?done=released", status_code=303)


@router.post("/payouts/{payout_id}/cancel")
def cancel_payout(request: Request, user: User, payout_id: Id, reason: Annotated[str, Form(max_length=500)] = "",
                  confirm: Annotated[str, Form(max_length=8)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    """Cancel one payout with a reason (the form's confirm box ticked) through payouts.release.cancel, as
    ``settleguard payouts cancel`` does (status event, ledger entry, audit record); then back to the payout
    page. A refusal (no reason, no confirmation, a status that cannot be cancelled) shows the payout page with
    the reason (409) and changes nothing. A merchant user gets 404 for another merchant's payout."""
    _guard_payout_form(request, user, payout_id, csrf_token, Action.PAYOUT_CANCEL)
    ctx = web(request)
    try:
        if reason.strip() and confirm != "yes":  # (no reason: cancel says so first)
            raise PayoutActionRefused("请勾选确认撤销", "tick the box to confirm the cancellation")
        cancel(ctx.engine, payout_id, reason.strip(), user.username, ctx.now())
    except PayoutActionRefused as exc:
        return _payout_page(request, user, payout_id, status=409, refused=exc, reason=reason)
    return RedirectResponse(f"/payouts/{payout_id}?done=cancelled", status_code=303)

