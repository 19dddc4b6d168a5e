"""``/api/v1/merchants``: register one merchant, import a merchant file, list, show, freeze / unfreeze / close.

- ``POST /api/v1/merchants`` and ``POST /api/v1/merchants/import`` (operators) call merchants.onboarding
  through merchants.service, exactly as ``settleguard merchants add|import``: the same checks, the same
  line/field report (422 ``merchant_refused`` with ``details.problems``, each naming its field), all or
  nothing, audited. An upload larger than merchants.service.MAX_UPLOAD is 413.
- ``PATCH /api/v1/merchants/{id}`` (operators) freezes, unfreezes or closes with a reason through
  merchants.lifecycle (audited; an unfreeze releases the payouts the freeze held).
- ``GET`` lists and shows: support and auditors read everything, a merchant user its own merchant only.
Card numbers are answered masked only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile
from pydantic import BaseModel, Field, StringConstraints

from settleguard import labels
from settleguard.access.model import Action, Principal
from settleguard.cards import repository as card_repo
from settleguard.merchants import repository as merchant_repo
from settleguard.merchants import service as onboard
from settleguard.merchants.checks import Rules
from settleguard.merchants.lifecycle import StatusRefused, change_status_of
from settleguard.merchants.model import MerchantStatus, StatusAction
from settleguard.merchants.onboarding import OnboardingRejected
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.merchant_holds import release_unfrozen
from settleguard.web.api_labels import label_field
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import Page, PageParams, empty, page, page_params
from settleguard.web.services import container_of, services

router = APIRouter(prefix=f"{API}/merchants", tags=["merchants 商户"])
MerchantId = Annotated[int, Path(ge=1, le=2**62, description="商户 ID merchant id")]
Text = Annotated[str, StringConstraints(max_length=128)]
_CHUNK = 1 << 16


class TerminalIn(BaseModel):
    serial_no: Annotated[str, StringConstraints(max_length=32)] = Field(description="终端序列号 serial number")
    terminal_no: Annotated[str, StringConstraints(max_length=20)] = Field(description="终端号 terminal number")
    model: Annotated[str, StringConstraints(max_length=64)] = Field(description="终端型号 model")


class MerchantIn(BaseModel):
    """One merchant, the fields of the merchant file (docs/merchants.md); one row per terminal is made of it."""

    merchant_no: Text = Field(description="商户编号 merchant number")
    registered_name: Text = Field(description="商户名称 registered name")
    kind: Text = Field(description="个体工商户 | 企业 | 小微 (individual | enterprise | micro)")
    legal_person: Text = Field(description="法人/经营者姓名 legal person")
    legal_person_id: Text = Field(description="法人身份证号 legal person's ID number")
    uscc: Text = Field(default="", description="统一社会信用代码 USCC (businesses)")
    business: Text = Field(default="", description="经营类目 business (default: the MCC's name)")
    mcc: Text = Field(description="MCC")
    city: Text = Field(description="城市 city")
    contact_mobile: Text = Field(description="联系手机 contact mobile")
    cycle: Text = Field(default="T+1", description="结算周期 T+1 | D+0")
    debit_rate: Text = Field(default="0.5", description="借记卡费率 % debit rate")
    debit_cap: Text = Field(default="20", description="借记卡封顶（元）debit cap in yuan; '' = none")
    credit_rate: Text = Field(default="0.6", description="信用卡费率 % credit rate")
    qr_rate: Text = Field(default="0.38", description="扫码费率 % QR rate")
    fee_effective_from: Text = Field(description="费率生效日期 fee effective date YYYY-MM-DD")
    holder_name: Text = Field(description="结算户名 account holder")
    holder_id: Text = Field(default="", description="结算人身份证号（对私）holder's ID number (personal account)")
    card_no: Annotated[str, StringConstraints(max_length=40)] = Field(description="结算卡号/账号 card or account number")
    bank: Text = Field(description="开户银行 bank code or name")
    terminals: list[TerminalIn] = Field(min_length=1, max_length=200, description="终端 terminals")


class StatusIn(BaseModel):
    action: Literal["freeze", "unfreeze", "close"] = Field(description="冻结 freeze | 解冻 unfreeze | 注销 close")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)] = Field(
        description="原因（记入审计）reason (audited)")


class StatusOut(BaseModel):
    id: int
    merchant_no: str
    from_status: str
    to_status: str
    reason: str
    released: int = Field(description="解冻放行的出款笔数 payouts the unfreeze released")
    released_fen: int
    from_status_label = label_field("from_status", labels.MERCHANT_STATUS)
    to_status_label = label_field("to_status", labels.MERCHANT_STATUS)


class MerchantItem(BaseModel):
    id: int
    merchant_no: str
    registered_name: str
    kind: str
    entity_kind: str | None
    mcc: str
    city: str
    cycle: str
    status: str
    status_reason: str | None
    status_changed_at: datetime | None
    created_at: datetime
    status_label = label_field("status", labels.MERCHANT_STATUS)


def _rules(request: Request) -> Rules:
    return Rules(enterprise_legal_person_account=container_of(request).settings.enterprise_legal_person_account)


def _refused(exc: OnboardingRejected, filename: str | None = None) -> ApiError:
    view = onboard.rejection_view(exc, filename)
    if exc.reason is not None:
        zh, en = exc.reason
    else:
        zh = f"{exc.total} 个问题，未登记任何商户"
        en = f"{exc.total} problem(s); no merchant was registered"
    return ApiError(422, "merchant_refused", zh, en, details=view)


def _missing(merchant_id: int) -> ApiError:
    return not_found(f"商户 {merchant_id} ", f"merchant {merchant_id}", "merchant_not_found")


@router.get("", response_model=Page[MerchantItem], responses=responses(401, 403, 422))
def list_merchants(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    status: Annotated[MerchantStatus | None, Query(description="状态 status")] = None,
    city: Annotated[str | None, Query(max_length=32, description="城市 city")] = None,
    q: Annotated[str | None, Query(max_length=64, description="商户编号前缀或名称 merchant number prefix or name")] = None,
) -> dict[str, Any]:
    """商户列表（按商户编号）List merchants by merchant number; a merchant user sees its own only."""
    visible, merchant_id = principal.list_scope(None)
    if not visible:
        return empty(paging)
    with web(request).engine.connect() as conn:
        total, rows = merchant_repo.search(conn, text=q or None, status=str(status) if status else None,
                                           city=city or None, merchant_id=merchant_id, limit=paging.limit,
                                           offset=paging.offset)
    return page(rows, total, paging)


@router.post("", status_code=201, responses=responses(401, 403, 422))
def register_merchant(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.MERCHANT_MANAGE))],
    body: MerchantIn,
) -> dict[str, Any]:
    """登记一个商户（仅运营）Register one merchant (operators), with the checks of ``merchants add``; refused (422
    ``merchant_refused``) with every problem and its field when any check fails. Already registered with the
    same facts: ``unchanged``."""
    ctx, svc = web(request), services(request)
    fields = body.model_dump(exclude={"terminals"})
    terminals = [onboard.Terminal(x.serial_no, x.terminal_no, x.model) for x in body.terminals]
    try:
        res = onboard.register_one(ctx.engine, fields, terminals, vault=svc.vault, now=ctx.now(),
                                   rules=_rules(request), actor=principal.username, timezone=svc.timezone)
    except OnboardingRejected as exc:
        raise _refused(exc) from None
    out = onboard.result_view(res)
    with ctx.engine.connect() as conn:
        out["merchant_id"] = merchant_repo.id_of(conn, body.merchant_no.strip())
    return out


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while True:
        block = upload.file.read(_CHUNK)
        if not block:
            return
        yield block


@router.post("/import", responses=responses(401, 403, 413, 422))
def import_merchant_file(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.MERCHANT_MANAGE))],
    file: Annotated[UploadFile, File(description="商户入网表 merchant file: CSV (UTF-8/GBK) or .xlsx")],
    limit: Annotated[int, Query(ge=1, le=1000, description="最多列出的问题数 problems listed at most")] = 100,
) -> dict[str, Any]:
    """导入商户入网表（仅运营）Import a merchant file (operators): every row checked, all registered or none,
    idempotent (the same file again changes nothing); a refused file is 422 ``merchant_refused`` with each
    problem's line and field."""
    ctx, svc = web(request), services(request)
    name = onboard.safe_filename(file.filename)
    try:
        res = onboard.import_upload(ctx.engine, _chunks(file), file.filename, vault=svc.vault, now=ctx.now(),
                                    rules=_rules(request), actor=principal.username, timezone=svc.timezone,
                                    limit=limit)
    except onboard.UploadTooLarge:
        raise ApiError(413, "too_large", f"文件超过 {onboard.MAX_UPLOAD // (1024 * 1024)} MB",
                       f"the file is larger than {onboard.MAX_UPLOAD // (1024 * 1024)} MB") from None
    except OnboardingRejected as exc:
        raise _refused(exc, name) from None
    return onboard.result_view(res, name)


@router.get("/{merchant_id}", responses=responses(401, 403, 404, 422))
def show_merchant(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    merchant_id: MerchantId,
) -> dict[str, Any]:
    """商户、结算卡（仅掩码）与各状态出款 The merchant, its cards (masked) and payouts by status; a merchant user
    sees its own merchant only."""
    missing = _missing(merchant_id)
    with web(request).engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
        check_owner(principal, Action.READ, None if m is None else merchant_id, missing)
        accounts = card_repo.accounts_of(conn, merchant_id)
        counts = payout_repo.counts_by_status(conn, merchant_id)
    cards = [{"id": a.id, "masked": a.pan_masked, "status": a.status, "card_status": a.card_status,
              "bank_code": a.bank_code, "bank_name": a.bank_name, "card_type": a.card_type,
              "holder_name": a.holder_name, "account_kind": a.account_kind, "bound_at": a.bound_at,
              "replaced_at": a.replaced_at, "verified_at": a.verified_at,
              "last_status_check_at": a.last_status_check_at} for a in accounts]
    return {"merchant": m, "cards": cards,
            "payouts": {s: {"count": n, "amount_fen": fen} for s, (n, fen) in sorted(counts.items())},
            "held_fen": counts.get("held", (0, 0))[1]}


@router.patch("/{merchant_id}", response_model=StatusOut, responses=responses(401, 403, 404, 409, 422))
def change_merchant_status(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.MERCHANT_MANAGE))],
    merchant_id: MerchantId,
    body: StatusIn,
) -> StatusOut:
    """冻结、解冻或注销商户（仅运营，须填写原因，记入审计）Freeze, unfreeze or close a merchant (operators, with a
    reason; audited). A frozen merchant's payouts are held (risk_or_compliance_block) until it is unfrozen;
    a closed merchant is paid what is left and takes no new transactions. 409 when the status does not allow
    it (closed is final)."""
    ctx = web(request)
    with ctx.engine.connect() as conn:
        exists = merchant_repo.no_of(conn, merchant_id) is not None
    check_owner(principal, Action.MERCHANT_MANAGE, merchant_id if exists else None, _missing(merchant_id))
    try:
        ch = change_status_of(ctx.engine, merchant_id, StatusAction(body.action), body.reason,
                              actor=principal.username, now=ctx.now(), release_held=release_unfrozen)
    except StatusRefused as exc:
        raise ApiError(409, "merchant_status_refused", exc.zh, exc.en) from None
    return StatusOut(id=ch.merchant_id, merchant_no=ch.merchant_no, from_status=ch.from_status, to_status=ch.to_status,
                     reason=ch.reason, released=ch.released, released_fen=ch.released_fen)
