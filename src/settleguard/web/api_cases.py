"""``/api/v1/cases``: support cases (工单, docs/cases.md) — list, show, open, assign, record a contact, add a
note, change status, resolve, close. Every action calls cases.service as ``settleguard cases ...`` does,
with the same rules (a refused action is 409 ``case_action_refused`` and changes nothing) and the same
``case.<action>`` audit events, the caller's username being the actor. Cases are staff-only: operators
and support work them, auditors read them, merchant users get 403."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints
from sqlalchemy import Engine

from settleguard import labels
from settleguard.access.model import Action, Principal
from settleguard.cases import repository as repo
from settleguard.cases import service
from settleguard.cases.model import CaseStatus, Method, Party, Priority, is_overdue
from settleguard.merchants import repository as merchant_repo
from settleguard.web.api_labels import label_field
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import Page, PageParams, page, page_params
from settleguard.web.services import services

router = APIRouter(prefix=f"{API}/cases", tags=["cases 工单"])
CaseId = Annotated[int, Path(ge=1, le=2**62, description="工单 ID case id")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class CaseItem(BaseModel):
    id: int
    merchant_id: int
    merchant_no: str
    registered_name: str
    category: str
    priority: str
    status: str
    title: str
    source: str
    assignee: str | None
    sla_due_at: datetime
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    payouts: int = Field(description="关联出款数 linked payouts")
    overdue: bool = Field(description="已超过处理时限 past its SLA while still active")
    category_label = label_field("category", labels.CATEGORY)
    priority_label = label_field("priority", labels.PRIORITY)
    status_label = label_field("status", labels.CASE_STATUS)
    source_label = label_field("source", labels.CASE_SOURCE)


class CaseOut(BaseModel):
    id: int
    merchant_id: int
    merchant_no: str
    registered_name: str
    category: str
    priority: str
    status: str
    title: str
    source: str
    assignee: str | None
    sla_due_at: datetime
    resolution: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    overdue: bool
    category_label = label_field("category", labels.CATEGORY)
    priority_label = label_field("priority", labels.PRIORITY)
    status_label = label_field("status", labels.CASE_STATUS)
    source_label = label_field("source", labels.CASE_SOURCE)


class CasePayout(BaseModel):
    id: int
    merchant_id: int
    settlement_id: int | None
    cycle_date: date
    value_date: date
    amount_fen: int
    status: str
    category: str | None
    idempotency_key: str
    instruction_no: int | None
    attempt_count: int
    last_code: str | None
    last_message: str | None
    fail_code: str | None
    fail_message: str | None
    fail_rule: str | None
    diagnosis_zh: dict[str, Any] | None = Field(description="最近一次失败的诊断与处理指引 the latest failure's "
                                                            "diagnosis and guidance, Chinese")
    diagnosis_en: dict[str, Any] | None
    status_label = label_field("status", labels.PAYOUT_STATUS)
    category_label = label_field("category", labels.CATEGORY)


class Contact(BaseModel):
    id: int
    party: str
    method: str
    contact_name: str | None
    at: datetime
    summary: str
    recorded_by: str
    recorded_at: datetime
    party_label = label_field("party", labels.PARTY)
    method_label = label_field("method", labels.METHOD)


class Note(BaseModel):
    id: int
    author: str
    body: str
    created_at: datetime


class CaseDetail(BaseModel):
    case: CaseOut
    payouts: list[CasePayout]
    contacts: list[Contact]
    notes: list[Note]


class OpenRequest(BaseModel):
    merchant_id: int = Field(ge=1, le=2**62, description="商户 ID merchant id")
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] = Field(
        description="分类：失败分类、returned、complaint、other… category (failure taxonomy, returned, complaint, other…)")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
    priority: Priority | None = Field(default=None, description="优先级，省略时按分类 priority; by category when left out")
    payout_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(default=[], max_length=1000,
                                                                   description="关联出款（该商户的）linked payouts "
                                                                               "(the merchant's own)")


class AssignRequest(BaseModel):
    assignee: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class ContactRequest(BaseModel):
    party: Party = Field(description="联系对象 with whom")
    method: Method = Field(description="方式 how")
    who: Name = Field(description="联系人，如 工行客服 95588 工号1234 who (name, number)")
    said: Text = Field(description="沟通内容 what was said")
    at: AwareDatetime | None = Field(default=None, description="联系时间（带时区，默认现在）when (with a time "
                                                               "zone; default now)")


class NoteRequest(BaseModel):
    body: Text


class StatusRequest(BaseModel):
    status: CaseStatus = Field(description="open | waiting_bank | waiting_merchant (resolve and close have their own "
                                           "routes)")


class ResolveRequest(BaseModel):
    resolution: Text = Field(description="处理结果 resolution")


class CaseActionResult(BaseModel):
    id: int
    status: str
    assignee: str | None
    contact_id: int | None = None
    note_id: int | None = None
    status_label = label_field("status", labels.CASE_STATUS)


def _missing(case_id: int) -> ApiError:
    return not_found(f"工单 {case_id} ", f"case {case_id}", "case_not_found")


def _refused(exc: service.CaseActionRefused) -> ApiError:
    return ApiError(409, "case_action_refused", exc.zh, exc.en)


@router.get("", response_model=Page[CaseItem], responses=responses(401, 403, 422))
def list_cases(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.CASE_READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    status: Annotated[CaseStatus | None, Query(description="状态 status")] = None,
    assignee: Annotated[str | None, Query(max_length=64, description="处理人 assignee")] = None,
    merchant_id: Annotated[int | None, Query(ge=1, le=2**62, description="商户 ID merchant id")] = None,
    overdue: Annotated[bool, Query(description="只看已超时 only active cases past their SLA")] = False,
) -> dict[str, Any]:
    """工单列表 Cases by id with their SLA and linked payouts."""
    now = web(request).now()
    filters: dict[str, Any] = {"status": str(status) if status else None, "assignee": assignee,
                               "merchant_id": merchant_id, "overdue_at": now if overdue else None}
    with web(request).engine.connect() as conn:
        total = repo.count_listing(conn, **filters)
        rows = repo.listing(conn, limit=paging.limit, offset=paging.offset, **filters) if paging.offset < total else []
    for r in rows:
        r["overdue"] = is_overdue(CaseStatus(r["status"]), r["sla_due_at"], now)
    return page(rows, total, paging)


@router.get("/{case_id}", response_model=CaseDetail, responses=responses(401, 403, 404, 422))
def show_case(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_READ))],
              case_id: CaseId) -> dict[str, Any]:
    """工单详情：出款及诊断与处理指引、联系记录、备注 The case, its payouts with diagnoses and guidance, contacts,
    notes (``settleguard cases show --json``)."""
    with web(request).engine.connect() as conn:
        found = service.case_detail(conn, case_id, web(request).now())
    if found is None:
        raise _missing(case_id)
    return found


def _result(request: Request, case_id: int, **extra: int) -> CaseActionResult:
    with web(request).engine.connect() as conn:
        case = repo.get(conn, case_id)
    assert case is not None
    return CaseActionResult(id=case_id, status=str(case["status"]), assignee=case["assignee"], **extra)


def _exists(request: Request, principal: Principal, action: Action, case_id: int) -> None:
    with web(request).engine.connect() as conn:
        check_owner(principal, action, repo.owner(conn, case_id), _missing(case_id))


@router.post("", status_code=201, response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def open_case(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
              body: OpenRequest) -> CaseActionResult:
    """手工开工单 Open a case by hand, linking the merchant's payouts; the SLA follows category and priority."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        merchant_no = merchant_repo.merchant_no_of(conn, body.merchant_id)
    if merchant_no is None:
        raise not_found(f"商户 {body.merchant_id} ", f"merchant {body.merchant_id}", "merchant_not_found")
    try:
        case_id = service.open_case(ctx.engine, merchant_no=merchant_no, category=body.category, title=body.title,
                                    actor=principal.username, now=ctx.now(), priority=body.priority,
                                    payout_ids=body.payout_ids, tz=services(request).timezone)
    except service.CaseActionRefused as exc:
        raise _refused(exc) from None
    return _result(request, case_id)


def _act(request: Request, principal: Principal, action: Action, case_id: int,
         do: Callable[[Engine, str, datetime], int | None], made: str | None = None) -> CaseActionResult:
    """Check the case is visible to the caller, run ``do(engine, actor, now)`` (a cases.service action) and
    answer the case as it now is; a refusal is 409. ``made`` names the id the action returns, if any."""
    _exists(request, principal, action, case_id)
    ctx = web(request)
    try:
        new_id = do(ctx.engine, principal.username, ctx.now())
    except service.CaseActionRefused as exc:
        raise _refused(exc) from None
    return _result(request, case_id, **({made: int(new_id)} if made and new_id is not None else {}))


@router.post("/{case_id}/assign", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def assign_case(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
                case_id: CaseId, body: AssignRequest) -> CaseActionResult:
    """指派处理人（须为可处理工单的在职运营或客服）Assign the case to an enabled operator or support user (a note
    records who had it before); anyone else is 409, as in the console and ``settleguard cases assign``."""
    return _act(request, principal, Action.CASE_WORK, case_id,
                lambda engine, actor, now: service.assign(engine, case_id, body.assignee, actor, now))


@router.post("/{case_id}/contact", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def add_contact(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
                case_id: CaseId, body: ContactRequest) -> CaseActionResult:
    """记录一次联系（银行客服、支付平台热线或商户）Record a contact with the bank, the platform or the merchant."""
    return _act(request, principal, Action.CASE_WORK, case_id,
                lambda engine, actor, now: service.add_contact(engine, case_id, party=body.party, method=body.method,
                                                               who=body.who, said=body.said, actor=actor, now=now,
                                                               at=body.at), made="contact_id")


@router.post("/{case_id}/note", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def add_note(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_NOTE))],
             case_id: CaseId, body: NoteRequest) -> CaseActionResult:
    """添加备注 Add a note."""
    return _act(request, principal, Action.CASE_NOTE, case_id,
                lambda engine, actor, now: service.add_note(engine, case_id, body.body, actor, now), made="note_id")


@router.post("/{case_id}/status", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def set_status(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
               case_id: CaseId, body: StatusRequest) -> CaseActionResult:
    """变更状态：等待银行、等待商户或回到处理中（含重新打开已解决的工单）Wait for the bank or the merchant, or
    back to open (also reopens a resolved case)."""
    return _act(request, principal, Action.CASE_WORK, case_id,
                lambda engine, actor, now: service.set_status(engine, case_id, body.status, actor, now))


@router.post("/{case_id}/resolve", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def resolve_case(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
                 case_id: CaseId, body: ResolveRequest) -> CaseActionResult:
    """解决工单（必须填写处理结果）Resolve the case with a resolution."""
    return _act(request, principal, Action.CASE_WORK, case_id,
                lambda engine, actor, now: service.resolve(engine, case_id, body.resolution, actor, now))


@router.post("/{case_id}/close", response_model=CaseActionResult, responses=responses(401, 403, 404, 409, 422))
def close_case(request: Request, principal: Annotated[Principal, Depends(require(Action.CASE_WORK))],
               case_id: CaseId) -> CaseActionResult:
    """关闭已解决的工单 Close a resolved case (final)."""
    return _act(request, principal, Action.CASE_WORK, case_id,
                lambda engine, actor, now: service.close(engine, case_id, actor, now))
