"""The merchant portal ``/m/...`` (phone-sized, one column): settlement history, the failed or held
payouts grouped by what the merchant must do (portal_guidance.py: the merchant's steps of the diagnosis
guidance, never an operations instruction), the held money, and re-binding the
settlement card through cards.service.bind_card (the same checks and bank verification as
``settleguard card bind``). A failed, held, paid or returned payout links its evidence bundle
(``GET /api/v1/payouts/{id}/evidence``, web/api_payout_evidence.py; the session cookie authenticates it).
A merchant user sees only its own merchant (404 otherwise). ``GET /m/{id}/statement?from=&to=&format=`` downloads
the merchant's statement (对账单, statements/service.py; :func:`statement_download`, which the console's merchant
page uses too)."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from settleguard.access.model import Principal, Role
from settleguard.cards import repository as card_repo
from settleguard.cards.service import BindRefused, BindRequest, bind_card
from settleguard.fees.rates import rates_of
from settleguard.merchants import repository as merchant_repo
from settleguard.merchants.contracts import versions_of as contract_versions
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.details import current_reason
from settleguard.payouts.model import PayoutStatus
from settleguard.web import dashboard_repository as dash
from settleguard.web.console.common import (
    PageError,
    check_csrf,
    check_owner,
    forbidden,
    lang_of,
    page_user,
    render,
)
from settleguard.web.console.labels import CARD_BINDERS, TROUBLE
from settleguard.web.console.portal_guidance import groups
from settleguard.web.console.tools import card_tools
from settleguard.web.context import web
from settleguard.web.services import container_of

router = APIRouter(prefix="/m", include_in_schema=False)
CARD_WORDS = {1: ("借记卡", "Debit"), 2: ("信用卡", "Credit"), 3: ("扫码", "QR")}
User = Annotated[Principal, Depends(page_user)]
MerchantId = Annotated[int, Path(ge=1, le=2**62)]
PAGE = 30
# payouts whose evidence bundle (出款凭证) the portal links: money refused, held, paid, or paid and returned
EVIDENCE = frozenset({PayoutStatus.FAILED, PayoutStatus.HELD, PayoutStatus.SUCCEEDED, PayoutStatus.RETURNED})


@router.get("")
def portal_home(request: Request, user: User) -> Response:
    """A merchant user's own page; staff go to the console."""
    if user.role is Role.MERCHANT and user.merchant_id is not None:
        return RedirectResponse(f"/m/{user.merchant_id}", status_code=303)
    return RedirectResponse("/", status_code=303)


def _merchant(request: Request, user: Principal, merchant_id: int) -> dict[str, object]:
    with web(request).engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
    check_owner(user, None if m is None else merchant_id)
    assert m is not None
    return m


@router.get("/{merchant_id}")
def portal_merchant(request: Request, user: User, merchant_id: MerchantId,
                    page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    m = _merchant(request, user, merchant_id)
    lang = lang_of(request)
    with web(request).engine.connect() as conn:
        counts = payout_repo.counts_by_status(conn, merchant_id)
        _, trouble = dash.queue(conn, merchant_id=merchant_id, limit=50, statuses=sorted(TROUBLE))
        total, history = dash.queue(conn, merchant_id=merchant_id, limit=PAGE, offset=(page - 1) * PAGE)
        card = card_repo.active_account(conn, merchant_id)
        contracts = contract_versions(conn, merchant_id)  # issue 19: the merchant sees its fee contract
        # issue 22: and what it was charged, by month: contracted and effective rate
        rates = rates_of(conn, merchant_id, months=12, today=web(request).now().astimezone(container_of(request).zone)
                         .date())
        for p in trouble:  # the reason for each payout's current state (payouts.details), not an older failure
            found = current_reason(conn, int(p["id"]), PayoutStatus(p["status"]), payout_repo.history(conn, p["id"])[1])
            p["diagnosis"] = None if found is None else found.to_dict(lang)
    held_count, held_fen = counts.get("held", (0, 0))
    period = statement_period(request)
    return render(request, "portal/merchant.html", user, m=m, period=period, shop=m["registered_name"],
                  groups=groups(trouble, lang), history=history, total=total,
                  page=page, pages=max(1, -(-total // PAGE)), held_count=held_count, held_fen=held_fen, card=card,
                  can_bind=user.role in CARD_BINDERS, evidence=EVIDENCE, contracts=contracts,
                  rates=rates, card_words=CARD_WORDS)


def statement_period(request: Request) -> tuple[date, date]:
    """The statement form's default period: the first of this month to today, in the business zone."""
    today = web(request).now().astimezone(container_of(request).zone).date()
    return today.replace(day=1), today


def statement_download(request: Request, merchant_no: str, start_text: str, end_text: str,
                       fmt_text: str) -> Response:
    """The merchant's statement as a file download (written to a temporary file, deleted once sent); bad input
    (a date not YYYY-MM-DD, from after to, more than 366 days, an unknown format) is a 422 page naming what
    was typed."""
    from settleguard.statements.model import StatementRefused, check_period, parse_day
    from settleguard.statements.service import MEDIA_TYPES, check_format, export, filename

    ctx = web(request)
    try:
        default_start, default_end = statement_period(request)
        start = parse_day("开始日期 from", start_text) if start_text.strip() else default_start
        end = parse_day("结束日期 to", end_text) if end_text.strip() else default_end
        check_period(start, end, from_name="from", to_name="to")
        fmt = check_format(fmt_text or "xlsx")
    except StatementRefused as exc:
        raise PageError(422, exc.zh, exc.en) from None
    fd, name = tempfile.mkstemp(prefix="sg-statement-", suffix=f".{fmt}")
    os.close(fd)
    path = FilePath(name)
    try:
        export(ctx.engine, merchant_no, start, end, fmt, path, now=ctx.now(), zone=container_of(request).zone)
    except StatementRefused as exc:
        path.unlink(missing_ok=True)
        raise PageError(422, exc.zh, exc.en) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=filename(merchant_no, start, end, fmt),
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/{merchant_id}/statement")
def portal_statement(request: Request, user: User, merchant_id: MerchantId,
                     start: Annotated[str, Query(alias="from", max_length=40)] = "",
                     end: Annotated[str, Query(alias="to", max_length=40)] = "",
                     fmt: Annotated[str, Query(alias="format", max_length=10)] = "xlsx") -> Response:
    """Download the merchant's statement (对账单) of business days from..to, as xlsx or csv."""
    m = _merchant(request, user, merchant_id)
    return statement_download(request, str(m["merchant_no"]), start, end, fmt)


@router.get("/{merchant_id}/card")
def card_form(request: Request, user: User, merchant_id: MerchantId) -> Response:
    m = _merchant(request, user, merchant_id)
    with web(request).engine.connect() as conn:
        card = card_repo.active_account(conn, merchant_id)
    return render(request, "portal/card.html", user, m=m, shop=m["registered_name"], card=card,
                  can_bind=user.role in CARD_BINDERS, refused=None, bound=None, form={})


@router.post("/{merchant_id}/card")
def card_bind(request: Request, user: User, merchant_id: MerchantId,
              pan: Annotated[str, Form(max_length=64)] = "", name: Annotated[str, Form(max_length=128)] = "",
              id_number: Annotated[str, Form(max_length=32)] = "", phone: Annotated[str, Form(max_length=32)] = "",
              csrf_token: Annotated[str, Form()] = "") -> Response:
    m = _merchant(request, user, merchant_id)
    check_csrf(user, csrf_token)
    if user.role not in CARD_BINDERS:
        raise forbidden()
    ctx = web(request)
    tools = card_tools(request)
    req = BindRequest(str(m["merchant_no"]), pan, name, id_number, phone, actor=user.username)
    refused: BindRefused | None = None
    bound = None
    try:
        bound = bind_card(ctx.engine, tools.verifier, tools.vault, req, now=ctx.now(), settings=tools.settings)
    except BindRefused as exc:
        refused = exc
    with ctx.engine.connect() as conn:
        card = card_repo.active_account(conn, merchant_id)
    # a refused form keeps what was typed except the card number, which is never sent back
    kept = {} if refused is None else {"name": name, "id_number": id_number.strip(), "phone": phone.strip()}
    return render(request, "portal/card.html", user, status=200 if refused is None else 422, m=m,
                  shop=m["registered_name"], card=card, can_bind=True, refused=refused, bound=bound, form=kept)
