"""The console's cases: the queue ``/cases``, the case page ``/cases/{id}`` and its actions — assign, record a
contact, add a note, change status (resolve and close included). Read pages need a staff role (a merchant user
gets 403). Every action is a form post with the session's CSRF token that goes through cases.service, as
``settleguard cases ...`` and ``/api/v1/cases`` do (same rules, same ``case.<action>`` audit events, the user
being the actor), then redirects back to the case page with a message (``?done=<action>``); a refused action
shows the case page again with the zh/en reason (409) and changes nothing. Operators and support work cases;
an auditor gets 403; a merchant user gets 404 for another merchant's case (or an unknown id), 403 for its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine

from settleguard import labels
from settleguard.access.model import Action, Principal, may
from settleguard.cases import repository as case_repo
from settleguard.cases import service
from settleguard.cases.model import TRANSITIONS, CaseStatus, Method, Party, is_overdue
from settleguard.cases.service import CaseActionRefused, failure_diagnosis
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
from settleguard.web.context import web
from settleguard.web.services import local_zone

router = APIRouter(include_in_schema=False)

# What the case page says after an action went through (``?done=<key>``); unknown keys say nothing.
DONE: Mapping[str, tuple[str, str]] = {
    "assign": ("已指派处理人", "assigned"),
    "contact": ("已记录联系", "contact recorded"),
    "note": ("已添加备注", "note added"),
    "status": ("状态已变更", "status changed"),
    "resolved": ("工单已解决", "case resolved"),
    "closed": ("工单已关闭", "case closed"),
}
PARTIES = labels.PARTY  # the one label table (issue 18), not a copy
METHODS = labels.METHOD


def allowed_targets(status: str) -> list[str]:
    """The statuses a case in ``status`` may move to (cases.model.TRANSITIONS), in the model's order."""
    targets = TRANSITIONS[CaseStatus(status)]
    return [str(s) for s in CaseStatus if s in targets]


@router.get("/cases")
def cases(request: Request, user: Staff, status: Annotated[CaseStatus | None, Query()] = None,
          merchant: Annotated[str | None, Query(max_length=32)] = None,
          assignee: Annotated[str | None, Query(max_length=64)] = None,
          overdue: Annotated[bool, Query()] = False,
          after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> Response:
    """The queue by id, filtered by status, merchant number, assignee ("my cases") and overdue."""
    ctx = web(request)
    merchant_no, who = (merchant or "").strip(), (assignee or "").strip()
    with ctx.engine.connect() as conn:
        rows = case_repo.listing(conn, status=str(status) if status else None, merchant_no=merchant_no or None,
                                 assignee=who or None, overdue_at=ctx.now() if overdue else None,
                                 limit=PAGE + 1, after_id=after)
    filters = {"status": str(status) if status else "", "merchant": merchant_no, "assignee": who, "overdue": overdue}
    more = len(rows) > PAGE
    return render(request, "cases.html", user, rows=rows[:PAGE], more=more, now=ctx.now(), filters=filters,
                  statuses=[str(s) for s in CaseStatus])


def _case_page(request: Request, user: Principal, case_id: int, *, status: int = 200, done: str | None = None,
               refused: CaseActionRefused | None = None, form: dict[str, str] | None = None) -> Response:
    lang = lang_of(request)
    ctx = web(request)
    with ctx.engine.connect() as conn:
        case = case_repo.get(conn, case_id)
        if case is None:
            raise not_found()
        linked = case_repo.case_payouts(conn, case_id)
        contacts = case_repo.contacts(conn, case_id)
        notes = case_repo.notes(conn, case_id)
        staff = service.assignable(conn)
    for p in linked:
        p["diagnosis"] = failure_diagnosis(p, lang)
    open_for_work = case["status"] != str(CaseStatus.CLOSED)
    return render(request, "case.html", user, status=status, case=case, linked=linked, contacts=contacts, notes=notes,
                  overdue=is_overdue(CaseStatus(case["status"]), case["sla_due_at"], ctx.now()),
                  can_work=open_for_work and may(user.role, Action.CASE_WORK),
                  can_note=open_for_work and may(user.role, Action.CASE_NOTE),
                  targets=allowed_targets(case["status"]), staff=staff, parties=PARTIES, methods=METHODS,
                  done=DONE.get(done or ""), refused=refused, form=form or {})


@router.get("/cases/{case_id}")
def case_page(request: Request, user: Staff, case_id: Id,
              done: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    return _case_page(request, user, case_id, done=done)


def _act(request: Request, user: Principal, case_id: int, action: Action, csrf_token: str, done: str,
         do: Callable[[Engine, str, datetime], object], form: dict[str, str] | None = None) -> Response:
    """The checks every case action makes, in order: the case is visible to the user (404 for a merchant user
    and another merchant's case or an unknown id), the CSRF token, the role's right to ``action`` (403); then
    ``do(engine, actor, now)`` (a cases.service action) and a redirect to the case page, or the case page with
    the refusal (409, ``form`` refilled)."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        check_owner(user, case_repo.owner(conn, case_id))
    check_csrf(user, csrf_token)
    require_action(user, action)
    try:
        do(ctx.engine, user.username, ctx.now())
    except CaseActionRefused as exc:
        return _case_page(request, user, case_id, status=409, refused=exc, form=form)
    return RedirectResponse(f"/cases/{case_id}?done={done}", status_code=303)


Csrf = Annotated[str, Form()]


@router.post("/cases/{case_id}/assign")
def assign(request: Request, user: User, case_id: Id, assignee: Annotated[str, Form(max_length=64)] = "",
           csrf_token: Csrf = "") -> Response:
    """指派处理人（须为可处理工单的在职运营或客服，cases.service.may_be_assigned）Assign to an enabled operator or
    support user."""
    return _act(request, user, case_id, Action.CASE_WORK, csrf_token, "assign",
                lambda engine, actor, now: service.assign(engine, case_id, assignee, actor, now))


@router.post("/cases/{case_id}/contact")
def contact(request: Request, user: User, case_id: Id, party: Annotated[Party, Form()],
            method: Annotated[Method, Form()], who: Annotated[str, Form(max_length=128)] = "",
            said: Annotated[str, Form(max_length=2000)] = "", at: Annotated[str, Form(max_length=32)] = "",
            csrf_token: Csrf = "") -> Response:
    """记录一次联系：对象、方式、联系人、时间（北京时间，默认现在）、沟通内容 Record a contact: party, method,
    who, when (China time, default now), what was said."""
    form = {"party": str(party), "method": str(method), "who": who, "said": said, "at": at}

    def do(engine: Engine, actor: str, now: datetime) -> None:
        service.add_contact(engine, case_id, party=party, method=method, who=who, said=said, actor=actor, now=now,
                            at=contact_time(at, local_zone(request)))

    return _act(request, user, case_id, Action.CASE_WORK, csrf_token, "contact", do, form)


def contact_time(text: str, zone: ZoneInfo = DEFAULT_ZONE) -> datetime | None:
    """A contact time typed on the page (``2026-11-20T14:05`` from a datetime-local field, in the business time
    zone ``zone``: China time by default); None when left empty; refused when it is not a time."""
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CaseActionRefused(f"联系时间格式不正确：{text}", f"not a contact time: {text}") from None
    return at.replace(tzinfo=zone) if at.tzinfo is None else at


@router.post("/cases/{case_id}/note")
def note(request: Request, user: User, case_id: Id, body: Annotated[str, Form(max_length=2000)] = "",
         csrf_token: Csrf = "") -> Response:
    """添加备注 Add a note."""
    return _act(request, user, case_id, Action.CASE_NOTE, csrf_token, "note",
                lambda engine, actor, now: service.add_note(engine, case_id, body, actor, now), {"body": body})


@router.post("/cases/{case_id}/status")
def change_status(request: Request, user: User, case_id: Id, status: Annotated[CaseStatus, Form()],
                  resolution: Annotated[str, Form(max_length=2000)] = "", csrf_token: Csrf = "") -> Response:
    """变更状态（只允许 cases.model 的状态转换）：resolved 须填写处理结果，closed 为最终状态 Change the status as
    cases.model allows: resolving needs a resolution; closed is final."""

    def do(engine: Engine, actor: str, now: datetime) -> None:
        if status is CaseStatus.RESOLVED:
            service.resolve(engine, case_id, resolution, actor, now)
        elif status is CaseStatus.CLOSED:
            service.close(engine, case_id, actor, now)
        else:
            service.set_status(engine, case_id, status, actor, now)

    done = {CaseStatus.RESOLVED: "resolved", CaseStatus.CLOSED: "closed"}.get(status, "status")
    return _act(request, user, case_id, Action.CASE_WORK, csrf_token, done, do, {"resolution": resolution})
