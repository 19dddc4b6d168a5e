"""``/api/v1/risk``: the risk queue (风险队列) for programs — a day's flagged merchants (default: the latest scanned
day), highest score first, paginated, and one merchant's risk picture (its alerts, the evidence transactions of the
latest or chosen one, the stored daily features, its risk holds). Read-only; staff only (action ``case_read``:
operators, support and auditors; a merchant user gets 403). Codes stay codes (rule ids); each rule also carries
its zh/en name. Times are ISO 8601 with their offset. See docs/risk.md and docs/api.md."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from settleguard.access.model import Action, Principal
from settleguard.risk import model as risk_model
from settleguard.risk import service as risk
from settleguard.web.auth import require
from settleguard.web.context import API, web
from settleguard.web.errors import not_found, responses
from settleguard.web.pagination import Page, PageParams, page, page_params
from settleguard.web.services import container_of

router = APIRouter(prefix=f"{API}/risk", tags=["risk 风险"])
Reader = Annotated[Principal, Depends(require(Action.CASE_READ))]
MerchantNo = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$",
                                 description="商户编号 merchant number")]


class Explanation(BaseModel):
    zh: str
    en: str


class RuleName(BaseModel):
    id: str
    name_zh: str
    name_en: str


class Hold(BaseModel):
    id: int
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None


class Alert(BaseModel):
    merchant_no: str
    merchant_name: str | None
    mcc: str | None
    date: dt.date = Field(description="交易日 business day")
    score: int = Field(description="风险分 0–100 score")
    rules: list[str] = Field(description="触发的规则 id the ids of the rules that fired")
    rule_names: list[RuleName]
    explanation: Explanation
    features: dict[str, float] = Field(description="触发规则所读特征的取值 the values of the features the rules read")
    case_id: int | None = Field(description="风险预警工单 the case opened for it, if any")
    on_hold: bool = Field(description="出款是否在风控暂停中 whether its payouts are on risk hold")


class AlertPage(Page[Alert]):
    date: dt.date | None = Field(description="所示交易日（未指定时为最近扫描的一天；尚未扫描时为 null）the day shown")


class RuleHit(BaseModel):
    id: str
    name_zh: str
    name_en: str
    feature: str
    value: float
    op: str
    threshold: float
    weight: int
    baseline_zh: str
    baseline_en: str


class AlertDetail(Alert):
    details: list[RuleHit]
    baseline: dict[str, Any] = Field(description="自身基线：活跃天数、日交易额（分）与笔数中位数 the merchant's own "
                                                 "baseline: active days, median daily amount (fen) and count")


class Evidence(BaseModel):
    rule: str
    external_ref: str
    kind: int | None = Field(description="交易类型 1 消费 sale, 2 撤销 void, 3 退货 refund, 4 冲正 reversal")
    card_type: int | None = Field(description="卡类型 1 借记卡 debit, 2 信用卡 credit, 3 扫码 QR")
    amount_fen: int | None
    card_token: str | None
    occurred_at: datetime | None


class DayFeatures(BaseModel):
    date: dt.date
    sale_count: int
    sale_fen: int
    round_count: int
    night_count: int
    credit_count: int
    card_max: int | None
    under_limit_count: int
    over_mcc_count: int
    unmatched_count: int


class MerchantRisk(BaseModel):
    merchant_no: str
    on_hold: bool
    alert: AlertDetail | None = Field(description="最近一次（或 ?date= 那天的）预警 the latest alert, or that of ?date=")
    alerts: list[Alert] = Field(description="历次预警，新的在前 every alert, newest first (at most 60)")
    evidence: list[Evidence] = Field(description="该预警的证据交易 the transactions behind its rules")
    features: list[DayFeatures] = Field(description="截至该日的 30 天特征 the stored daily features of 30 days")
    holds: list[Hold] = Field(description="风控暂停记录，新的在前 risk holds, newest first")


def _names(request: Request) -> dict[str, tuple[str, str]]:
    try:
        return risk.rule_names(container_of(request).risk_rules())
    except risk_model.RulesError:
        return risk.rule_names()


def _alert(a: dict[str, Any], names: dict[str, tuple[str, str]], on_hold: bool) -> dict[str, Any]:
    return {"merchant_no": a["merchant_no"], "merchant_name": a["merchant_name"], "mcc": a["mcc"],
            "date": a["cycle_date"], "score": a["score"], "rules": a["rules"],
            "rule_names": [{"id": r, "name_zh": names.get(r, (r, r))[0], "name_en": names.get(r, (r, r))[1]}
                           for r in a["rules"]],
            "explanation": a["explanation"], "features": a["details"].get("features", {}),
            "case_id": a["case_id"], "on_hold": on_hold}


@router.get("/alerts", response_model=AlertPage, responses=responses(401, 403, 422))
def list_alerts(
    request: Request,
    principal: Reader,
    paging: Annotated[PageParams, Depends(page_params)],
    day: Annotated[date | None, Query(alias="date", description="交易日 YYYY-MM-DD（默认最近扫描的一天）business day "
                                                                "(default: the latest scanned)")] = None,
    min_score: Annotated[int, Query(ge=0, le=100, description="最低分 minimum score")] = 0,
    rule: Annotated[str | None, Query(max_length=32, pattern=r"^[A-Za-z0-9_]+$",
                                      description="只看触发了该规则的 only those that fired this rule id")] = None,
) -> dict[str, Any]:
    """风险预警：当日预警商户，高分在前 A day's flagged merchants, highest score first."""
    names = _names(request)
    with web(request).engine.connect() as conn:
        q = risk.queue(conn, day, min_score=min_score, rule=rule, limit=paging.limit, offset=paging.offset)
    out = page([_alert(a, names, a["hold"] is not None) for a in q.items], q.total, paging)
    out["date"] = q.day or day
    return out


@router.get("/merchants/{merchant_no}", response_model=MerchantRisk, responses=responses(401, 403, 404, 422))
def merchant_risk(
    request: Request,
    principal: Reader,
    merchant_no: MerchantNo,
    day: Annotated[date | None, Query(alias="date", description="交易日 business day (default: its latest alert)")] = None,
) -> dict[str, Any]:
    """一个商户的风险：预警、证据交易、30 天特征、风控暂停 A merchant's alerts, evidence, features and holds."""
    names = _names(request)
    try:
        with web(request).engine.connect() as conn:
            got = risk.picture(conn, merchant_no, day)
    except risk.RiskRefused:
        raise not_found(f"商户 {merchant_no} ", f"merchant {merchant_no}", "merchant_not_found") from None
    on_hold = got["hold"] is not None
    chosen = got["chosen"]
    alert = None
    if chosen is not None:
        d = chosen["details"]
        alert = _alert(chosen, names, on_hold) | {
            "details": [{**r, "name_zh": names.get(r["id"], (r["id"], r["id"]))[0],
                         "name_en": names.get(r["id"], (r["id"], r["id"]))[1]} for r in d.get("rules", [])],
            "baseline": d.get("baseline", {})}
    return {"merchant_no": merchant_no, "on_hold": on_hold, "alert": alert,
            "alerts": [_alert(a, names, on_hold) for a in got["flagged"]],
            "evidence": [{"rule": e["rule_id"], "external_ref": e["external_ref"], "kind": e["kind"],
                          "card_type": e["card_type"], "amount_fen": e["amount_fen"], "card_token": e["card_token"],
                          "occurred_at": e["occurred_at"]} for e in got["evidence_rows"]],
            "features": [{**f, "date": f["cycle_date"]} for f in got["features"]],
            "holds": got["holds"]}
