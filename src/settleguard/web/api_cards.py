"""Settlement cards: ``POST /api/v1/cards/check`` (the checks of ``settleguard card check``; no stored
data), ``POST /api/v1/merchants/{id}/card`` (bind or re-bind through cards.service.bind_card, as
``settleguard card bind`` does) and ``GET /api/v1/merchants/{id}/card`` (the cards, their events and
verifications, as ``settleguard card show``). Only masked card numbers are ever answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field, StringConstraints

from settleguard.access.model import Action, Principal
from settleguard.cards import repository as card_repo
from settleguard.cards.bins import load_packaged_bins
from settleguard.cards.checks import check_card
from settleguard.cards.model import MerchantFacts
from settleguard.cards.service import BindRefused, BindRequest, bind_card
from settleguard.merchants import repository as merchant_repo
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.services import services

router = APIRouter(tags=["cards 结算卡"])
MerchantId = Annotated[int, Path(ge=1, le=2**62, description="商户 ID merchant id")]
Pan = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class ProblemOut(BaseModel):
    code: str
    zh: str
    en: str
    severity: str


class CheckRequest(BaseModel):
    pan: Pan = Field(description="卡号（可含空格、短横线、全角数字）card number")
    name: str | None = Field(default=None, max_length=64, description="户名 account holder's name")
    id_number: str | None = Field(default=None, max_length=32, description="身份证号或统一社会信用代码 resident ID "
                                                                           "or USCC")
    kind: Literal["personal", "corporate"] | None = Field(default=None, description="商户类型 merchant kind")


class CheckResult(BaseModel):
    valid: bool = Field(description="可以作为结算卡：没有错误，也没有“卡号可能输错” valid: no error, not probably mistyped")
    bindable: bool = Field(description="绑卡不会被检查拒绝（没有错误）binding is not refused by the checks (no error)")
    verdict: Literal["valid", "warnings", "check", "invalid"] = Field(
        description="结论，来自最严重的问题 the headline, from the most serious problem: valid | warnings | check "
                    "(卡号可能输错，请核对 probably mistyped) | invalid")
    verdict_zh: str
    verdict_en: str
    verdict_cause: str | None = Field(description="结论所依据的问题代码 the problem code the verdict reflects")
    luhn_ok: bool
    masked: str
    length: int
    bank_code: str | None
    bank_name: str | None
    bank_name_zh: str | None
    bank_name_en: str | None
    card_type: str | None
    expected_length: int | None
    bin: str | None
    problems: list[ProblemOut]


class BindBody(BaseModel):
    pan: Pan = Field(description="卡号 card number")
    name: Short = Field(description="户名 account holder's name")
    id_number: Short = Field(description="持卡人身份证号 holder's resident ID number")
    phone: Short = Field(description="银行预留手机号 phone number reserved at the bank")


class BindOut(BaseModel):
    bound: bool
    account_id: int
    merchant_id: int
    masked: str
    bank_code: str
    bank_name: str
    card_type: str
    rebound: bool
    replaced_account_ids: list[int]
    bank_answer_code: str
    bank_answer_message: str
    card_status: str | None
    warnings: list[ProblemOut]


class CardOut(BaseModel):
    id: int
    masked: str
    status: str
    card_status: str | None
    bank_code: str
    bank_name: str
    card_type: str
    holder_name: str
    account_kind: str
    bound_at: datetime
    replaced_at: datetime | None
    verified_at: datetime | None
    last_status_check_at: datetime | None


class CardEventOut(BaseModel):
    id: int
    account_id: int | None
    kind: str
    payload: dict[str, Any] | None
    actor: str
    created_at: datetime


class VerificationOut(BaseModel):
    id: int
    account_id: int | None
    kind: str
    pan_masked: str
    result: str
    bank_code: str | None
    bank_message: str | None
    at: datetime
    actor: str


class MerchantCards(BaseModel):
    merchant_id: int
    merchant_no: str
    current: CardOut | None = Field(description="当前结算卡（未被换下的最新一张）the current card: the newest not "
                                                "replaced, active or unusable")
    cards: list[CardOut] = Field(description="绑定过的每张卡，新的在前 every card ever bound, newest first")
    events: list[CardEventOut] = Field(description="卡事件（绑定、换绑、状态变化），新的在前 card events, newest first")
    verifications: list[VerificationOut] = Field(description="验证记录，新的在前 verification attempts, newest first")


def _missing(merchant_id: int) -> ApiError:
    return not_found(f"商户 {merchant_id} ", f"merchant {merchant_id}", "merchant_not_found")


def _card(a: card_repo.AccountRow) -> dict[str, Any]:
    return {"id": a.id, "masked": a.pan_masked, "status": a.status, "card_status": a.card_status,
            "bank_code": a.bank_code, "bank_name": a.bank_name, "card_type": a.card_type,
            "holder_name": a.holder_name, "account_kind": a.account_kind, "bound_at": a.bound_at,
            "replaced_at": a.replaced_at, "verified_at": a.verified_at,
            "last_status_check_at": a.last_status_check_at}


@router.post(f"{API}/cards/check", response_model=CheckResult, responses=responses(401, 403, 422))
def check(request: Request, body: CheckRequest,
          principal: Annotated[Principal, Depends(require(Action.CARD_CHECK))]) -> dict[str, object]:
    """检查结算卡（不读写任何数据）Check a card as ``settleguard card check`` does: bank, type, Luhn, holder name
    and ID, each problem with what to do. Nothing is stored; the answer holds the masked number only."""
    today = web(request).now().astimezone(ZoneInfo(services(request).timezone)).date()
    result = check_card(body.pan, bins=load_packaged_bins(), holder_name=body.name, id_number=body.id_number,
                        merchant=MerchantFacts(body.kind) if body.kind else None, today=today)
    return result.as_dict()


@router.get(f"{API}/merchants/{{merchant_id}}/card", response_model=MerchantCards,
            responses=responses(401, 403, 404, 422))
def show_cards(request: Request, principal: Annotated[Principal, Depends(require(Action.READ))],
               merchant_id: MerchantId) -> dict[str, Any]:
    """结算卡、卡事件与验证记录（仅掩码）The merchant's cards, their events and verifications, masked only."""
    with web(request).engine.connect() as conn:
        merchant_no = merchant_repo.merchant_no_of(conn, merchant_id)
        check_owner(principal, Action.READ, None if merchant_no is None else merchant_id, _missing(merchant_id))
        accounts = card_repo.accounts_of(conn, merchant_id)
        events = card_repo.events_of(conn, merchant_id)
        attempts = card_repo.verifications_of(conn, merchant_id)
    cards = [_card(a) for a in accounts]
    current = next((c for c in cards if c["status"] != "replaced"), None)
    return {"merchant_id": merchant_id, "merchant_no": merchant_no, "current": current, "cards": cards,
            "events": events, "verifications": attempts}


def _refusal(exc: BindRefused) -> ApiError:
    status, code = {"rate_limited": (429, "card_bind_rate_limited"),
                    "verifier_unavailable": (503, "card_verifier_unavailable")}.get(exc.code, (422, "card_bind_refused"))
    return ApiError(status, code, exc.zh, exc.en, details=exc.as_dict())


@router.post(f"{API}/merchants/{{merchant_id}}/card", response_model=BindOut,
             responses=responses(401, 403, 404, 422, 429, 503))
def bind(request: Request, principal: Annotated[Principal, Depends(require(Action.CARD_BIND))],
         merchant_id: MerchantId, body: BindBody) -> dict[str, Any]:
    """绑定或换绑结算卡（运营；商户只能换绑自己的卡）Bind or re-bind the settlement card (operators; a merchant
    user its own only): the checks first, then the bank's four-element verification, the daily quota, the
    history, events, audit and notice of ``settleguard card bind``. A refusal is 422 ``card_bind_refused``
    with the reason and each problem in ``details``."""
    ctx, svc = web(request), services(request)
    with ctx.engine.connect() as conn:
        merchant_no = merchant_repo.merchant_no_of(conn, merchant_id)
    check_owner(principal, Action.CARD_BIND, None if merchant_no is None else merchant_id, _missing(merchant_id))
    assert merchant_no is not None
    req = BindRequest(merchant_no, body.pan, body.name, body.id_number, body.phone, actor=principal.username)
    try:
        res = bind_card(ctx.engine, svc.verifier, svc.vault, req, now=ctx.now(), settings=svc.card_settings)
    except BindRefused as exc:
        raise _refusal(exc) from None
    return {"bound": True, **res.as_dict()}
