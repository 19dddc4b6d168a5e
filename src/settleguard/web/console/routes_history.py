"""History review and guidance feedback pages (issue 22 items 5 and 6; docs/history.md):

- ``/merchants/{id}/history`` (staff; a merchant user its own only, else 404) and the portal's ``/m/{id}/history``:
  a merchant's days — volume and count, failures by category, holds, risk scores, fee rate — with ECharts;
- ``/trends`` (staff): failure categories over time of all merchants and the failure rate per bank (is a bank
  getting worse?), for a date range;
- ``/guidance-feedback`` (staff): per failure category and rule, feedback marked helpful, payouts fixed after the
  failure and the median recovery time;
- ``POST /payouts/{id}/feedback``: a merchant (its own payouts) or a support or operations user marks the guidance
  of the payout's current reason helpful or not, with a reason (bounded, card numbers masked).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from settleguard.access.model import Action, Principal, may
from settleguard.feedback.model import FeedbackRefused
from settleguard.feedback.service import give, report
from settleguard.history import repository as history_repo
from settleguard.history.model import History, HistoryRefused, Trends
from settleguard.history.service import merchant_history, trends
from settleguard.web.console import labels
from settleguard.web.console.common import (
    ENV,
    Id,
    PageError,
    Staff,
    User,
    check_csrf,
    check_owner,
    lang_of,
    render,
    require_action,
    safe_next,
)
from settleguard.web.console.labels import label
from settleguard.web.context import web
from settleguard.web.services import container_of

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 30
MAX_BANK_LINES = 8  # banks drawn in the failure-rate chart (the table lists them all)
From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]


def may_feedback(user: Principal | None) -> bool:
    """Whether the page shows the guidance feedback form to ``user`` (templates: ``may_feedback(user)``)."""
    return user is not None and may(user.role, Action.GUIDANCE_FEEDBACK)


ENV.globals["may_feedback"] = may_feedback


def _range(request: Request, start: date | None, end: date | None) -> tuple[date, date]:
    today = web(request).now().astimezone(container_of(request).zone).date()
    end = end or today
    return start or end - timedelta(days=DEFAULT_DAYS - 1), end


def _pct(ppm: int | None) -> float | None:
    return None if ppm is None else round(ppm / 10_000, 4)


def history_charts(h: History, lang: str) -> dict[str, Any]:
    """What the charts draw: days on the x axis, names in ``lang``, money in yuan, rates in percent."""
    def T(zh: str, en: str) -> str:  # noqa: N802
        return en if lang == "en" else zh

    days = [d.day.isoformat() for d in h.days]
    out: dict[str, Any] = {
        "x": days,
        "volume": {"units": [T("元", "yuan"), T("笔", "txns")], "whole": [1], "series": [
            {"name": T("消费金额", "Sales amount"), "type": "bar", "axis": 0, "values": [d.sale_fen / 100 for d in h.days]},
            {"name": T("退货金额", "Refund amount"), "type": "bar", "axis": 0,
             "values": [d.refund_fen / 100 for d in h.days]},
            {"name": T("消费笔数", "Sales count"), "type": "line", "axis": 1, "values": [d.sales for d in h.days]}]},
        "failures": {"units": [T("笔", "failures")], "stack": True, "whole": [0], "series": [
            {"name": label(labels.CATEGORY, c, lang), "type": "bar", "axis": 0,
             "values": [d.failures_by_category.get(c, 0) for d in h.days]} for c in h.categories]},
        "holds": {"units": [T("笔", "payouts"), T("元", "yuan")], "whole": [0], "series": [
            {"name": T("挂账笔数", "Holds"), "type": "bar", "axis": 0, "values": [d.holds for d in h.days]},
            {"name": T("挂账金额", "Amount held"), "type": "line", "axis": 1, "values": [d.hold_fen / 100 for d in h.days]}]},
        "fee": {"units": ["%"], "series": [
            {"name": T("实际费率（手续费÷消费）", "Effective rate (fees ÷ sales)"), "type": "line", "axis": 0,
             "values": [_pct(d.fee_ppm) for d in h.days]}]},
    }
    if h.has_risk:
        out["risk"] = {"units": [T("分", "points")], "whole": [0], "series": [
            {"name": T("风险分", "Risk score"), "type": "bar", "axis": 0,
             "values": [d.risk_score or 0 for d in h.days]}]}
    return out


def _history(request: Request, user: Principal, merchant_id: int, start: date | None, end: date | None,
             template: str) -> Response:
    ctx = web(request)
    with ctx.engine.connect() as conn:
        found = history_repo.merchant(conn, merchant_id=merchant_id)
    check_owner(user, None if found is None else merchant_id)  # another merchant's or none: 404
    start, end = _range(request, start, end)
    try:
        h = merchant_history(ctx.engine, start, end, container_of(request).zone, merchant_id=merchant_id)
    except HistoryRefused as exc:
        raise PageError(422, exc.zh, exc.en) from None
    return render(request, template, user, h=h, totals=h.totals(), charts=history_charts(h, lang_of(request)),
                  shop=h.name if template.startswith("portal/") else None, portal=template.startswith("portal/"))


@router.get("/merchants/{merchant_id}/history")
def merchant_history_page(request: Request, user: User, merchant_id: Id, start: From = None,
                          end: To = None) -> Response:
    return _history(request, user, merchant_id, start, end, "history.html")


@router.get("/m/{merchant_id}/history")
def portal_history_page(request: Request, user: User, merchant_id: Id, start: From = None, end: To = None) -> Response:
    return _history(request, user, merchant_id, start, end, "portal/history.html")


def trend_charts(tr: Trends, lang: str) -> dict[str, Any]:
    def rate(f: list[int], s: list[int]) -> list[float | None]:
        return [None if not n else round(100 * x / n, 2) for x, n in zip(f, s, strict=True)]

    banks = list(tr.banks.items())[:MAX_BANK_LINES]
    return {
        "x": [d.isoformat() for d in tr.days],
        "category": {"units": ["笔" if lang != "en" else "failures"], "stack": True, "whole": [0], "series": [
            {"name": label(labels.CATEGORY, c, lang), "type": "bar", "axis": 0, "values": v}
            for c, v in tr.by_category.items()]},
        "bank": {"units": ["%"], "series": [
            {"name": b["name"], "type": "line", "axis": 0, "values": rate(b["failures"], b["sends"])} for _, b in banks]},
    }


@router.get("/trends")
def trends_page(request: Request, user: Staff, start: From = None, end: To = None,
                bank: Annotated[str | None, Query(max_length=16)] = None) -> Response:
    start, end = _range(request, start, end)
    try:
        tr = trends(web(request).engine, start, end, container_of(request).zone, bank or None)
    except HistoryRefused as exc:
        raise PageError(422, exc.zh, exc.en) from None
    rows = [{"code": c, **b, "sends_total": sum(b["sends"]), "failures_total": sum(b["failures"]), **tr.bank_trend(c)}
            for c, b in tr.banks.items()]
    return render(request, "trends.html", user, tr=tr, rows=rows, bank=bank or "",
                  charts=trend_charts(tr, lang_of(request)))


@router.get("/guidance-feedback")
def feedback_page(request: Request, user: Staff) -> Response:
    return render(request, "feedback.html", user, rows=report(web(request).engine))


@router.post("/payouts/{payout_id}/feedback")
def feedback_post(request: Request, user: User, payout_id: Id,
                  helpful: Annotated[str, Form(max_length=8)] = "",
                  reason: Annotated[str, Form(max_length=4000)] = "",
                  back: Annotated[str, Form(max_length=300)] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    """Record the feedback and go back to the page it was given on."""
    ctx = web(request)
    from settleguard.feedback import repository as fb_repo

    with ctx.engine.connect() as conn:
        p = fb_repo.payout(conn, payout_id)
    check_owner(user, None if p is None else int(p["merchant_id"]))
    check_csrf(user, csrf_token)
    require_action(user, Action.GUIDANCE_FEEDBACK)
    if helpful not in ("yes", "no"):
        raise PageError(422, f"请选择“有用”或“没用”（收到：{helpful[:8]!r}）",
                        f"choose helpful or not helpful (got {helpful[:8]!r})")
    try:
        give(ctx.engine, payout_id, helpful=helpful == "yes", reason=reason,
             source="merchant" if user.merchant_scope is not None else "staff", actor=user.username, now=ctx.now(),
             merchant_scope=user.merchant_scope)
    except FeedbackRefused as exc:
        raise PageError(409, exc.zh, exc.en) from None
    target = safe_next(back, f"/payouts/{payout_id}")
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}feedback=thanks", status_code=303)
