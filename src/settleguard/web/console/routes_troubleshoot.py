"""The self-service troubleshooter's pages (自助排障, troubleshoot/service.py; docs/troubleshoot.md).

- ``GET /m/{id}/troubleshoot?symptom=`` (portal/troubleshoot.html): the merchant picks a symptom and reads the
  checks that apply and what to do — only the merchant's own steps, never an operations instruction. A merchant
  user sees only its own merchant (404 otherwise).
- ``POST /m/{id}/troubleshoot/case``: one button, opens one case (商户投诉) with the payouts found linked (their
  evidence bundles) and the findings as its first note; a merchant user for its own merchant, staff with the
  case_work action (access/model.py).
- ``GET /merchants/{id}/troubleshoot?symptom=`` (troubleshoot.html): the same flow for support staff on a phone
  call (any staff role), with the operations steps; ``POST /merchants/{id}/troubleshoot/case`` (case_work).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from settleguard import labels
from settleguard.access.model import Action, Principal, Role, may
from settleguard.troubleshoot import service
from settleguard.troubleshoot.checks import Report
from settleguard.troubleshoot.model import Symptom
from settleguard.web.console.common import (
    Id,
    PageError,
    Staff,
    User,
    check_csrf,
    check_owner,
    not_found,
    render,
    require_action,
)
from settleguard.web.context import primary, web
from settleguard.web.services import container_of

router = APIRouter(include_in_schema=False)
SymptomText = Annotated[str, Query(max_length=100)]


def _symptom(text: str) -> Symptom | None:
    try:
        return service.symptom_of(text)
    except service.TroubleshootRefused as exc:
        raise PageError(422, exc.zh, exc.en) from None


def _run(request: Request, merchant_id: int, symptom: Symptom | None) -> Report:
    ctx = primary(request)  # a GET that writes: the terminals' checks are evaluated again (not on a standby)
    try:
        return service.run(ctx.engine, merchant_id, symptom, now=ctx.now(), zone=container_of(request).zone)
    except service.TroubleshootRefused as exc:
        if exc.status == 404:
            raise not_found() from None
        raise PageError(exc.status, exc.zh, exc.en) from None


def _owned(request: Request, user: Principal, merchant_id: int) -> None:
    """404 unless the merchant exists and (for a merchant user) is the user's own."""
    from settleguard.merchants import repository as merchant_repo

    with web(request).engine.connect() as conn:
        found = merchant_repo.by_id(conn, merchant_id) is not None
    check_owner(user, merchant_id if found else None)


def _page(request: Request, user: Principal, template: str, merchant_id: int, symptom: Symptom | None, *,
          staff: bool, asked: bool, case: tuple[int, bool] | None = None) -> Response:
    """The symptom picker, and once a symptom is chosen (``asked``) the report of its checks."""
    from settleguard.merchants import repository as merchant_repo

    with web(request).engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
    report = _run(request, merchant_id, symptom) if asked else None
    return render(request, template, user, m=m, report=report, chosen=symptom, symptoms=labels.TROUBLESHOOT_SYMPTOM,
                  staff=staff, case=case, outcome_words=labels.TROUBLESHOOT_OUTCOME,
                  check_words=labels.TROUBLESHOOT_CHECK,
                  can_open=user.role is Role.MERCHANT or may(user.role, Action.CASE_WORK))


def _open(request: Request, user: Principal, merchant_id: int, symptom_text: str, csrf_token: str
          ) -> tuple[Symptom | None, tuple[int, bool]]:
    check_csrf(user, csrf_token)
    if user.role is not Role.MERCHANT:
        require_action(user, Action.CASE_WORK)
    symptom = _symptom(symptom_text)
    report = _run(request, merchant_id, symptom)
    ctx = web(request)
    try:
        return symptom, service.open_case(ctx.engine, report, actor=user.username, now=ctx.now(),
                                          tz=container_of(request).tz)
    except service.TroubleshootRefused as exc:
        raise PageError(exc.status, exc.zh, exc.en) from None


@router.get("/m/{merchant_id}/troubleshoot")
def portal_troubleshoot(request: Request, user: User, merchant_id: Id, symptom: SymptomText = "") -> Response:
    _owned(request, user, merchant_id)
    chosen = _symptom(symptom)
    return _page(request, user, "portal/troubleshoot.html", merchant_id, chosen, staff=False, asked=chosen is not None)


@router.post("/m/{merchant_id}/troubleshoot/case")
def portal_open_case(request: Request, user: User, merchant_id: Id,
                     symptom: Annotated[str, Form(max_length=100)] = "",
                     csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    _owned(request, user, merchant_id)
    chosen, case = _open(request, user, merchant_id, symptom, csrf_token)
    return _page(request, user, "portal/troubleshoot.html", merchant_id, chosen, staff=False, asked=True, case=case)


@router.get("/merchants/{merchant_id}/troubleshoot")
def staff_troubleshoot(request: Request, user: Staff, merchant_id: Id, symptom: SymptomText = "") -> Response:
    _owned(request, user, merchant_id)
    chosen = _symptom(symptom)
    return _page(request, user, "troubleshoot.html", merchant_id, chosen, staff=True, asked=chosen is not None)


@router.post("/merchants/{merchant_id}/troubleshoot/case")
def staff_open_case(request: Request, user: Staff, merchant_id: Id,
                    symptom: Annotated[str, Form(max_length=100)] = "",
                    csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    _owned(request, user, merchant_id)
    chosen, case = _open(request, user, merchant_id, symptom, csrf_token)
    return _page(request, user, "troubleshoot.html", merchant_id, chosen, staff=True, asked=True, case=case)
