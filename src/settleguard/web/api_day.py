"""``GET /api/v1/day``: today's cycle (今日结算周期; daycycle/, docs/operations.md "日终自动运行"): the business
day's expected files and their state, what arrived, what the worker's ``day`` step ran, what comes next, its
alerts. Staff only (recon_read); times in the business zone (ISO 8601 with offset)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from settleguard.access.model import Action, Principal
from settleguard.web.auth import require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, responses
from settleguard.web.services import container_of

router = APIRouter(prefix=f"{API}/day", tags=["day 日终自动运行"])
Reader = Annotated[Principal, Depends(require(Action.RECON_READ))]


class DayFile(BaseModel):
    kind: str
    kind_zh: str
    kind_en: str
    due_at: str | None
    state: str  # arrived | waiting | late | missing
    state_zh: str
    state_en: str
    received_at: str | None
    arrivals: list[int]


class DayArrival(BaseModel):
    id: int
    name: str
    kind: str
    kind_zh: str
    kind_en: str
    status: str  # done | rejected | duplicate
    status_zh: str
    status_en: str
    received_at: str | None
    business_days: list[str]


class DayRun(BaseModel):
    action: str  # settle | pay | recon | clearing | alert
    action_zh: str
    action_en: str
    business_day: str
    key: str
    status: str  # running | done | failed
    status_zh: str
    status_en: str
    attempts: int
    started_at: str | None
    finished_at: str | None
    summary: dict[str, Any]
    error: str | None
    what_zh: str
    what_en: str


class DayDue(BaseModel):
    action: str
    action_zh: str
    action_en: str
    business_day: str
    key: str


class DayNext(BaseModel):
    at: str | None
    zh: str
    en: str


class DayAlert(BaseModel):
    kind: str
    kind_zh: str
    kind_en: str
    message: str  # zh / en
    message_zh: str
    message_en: str
    created_at: str | None


class DayPayouts(BaseModel):
    status: str
    status_zh: str
    status_en: str
    count: int


class DayStatus(BaseModel):
    enabled: bool
    business_day: str
    now: str | None
    timezone: str
    cutoff_at: str | None
    settled: bool
    value_date: str
    payouts: list[DayPayouts]
    files: list[DayFile]
    arrivals: list[DayArrival]
    runs: list[DayRun]
    due: list[DayDue]
    next: list[DayNext]
    alerts: list[DayAlert]
    pay_times: list[str]
    pay_channel: str  # api | file
    send_open: bool


@router.get("", response_model=DayStatus, responses=responses(401, 403, 422, 500))
def day_status_api(request: Request, _: Reader,
                   day: Annotated[date | None, Query(alias="date", description="营业日 business day (default: "
                                                                                "yesterday)")] = None) -> Any:
    """今日结算周期 Today's cycle: expected files (arrived, late, missing), what ran and when, what comes next, alerts."""
    from settleguard.daycycle.model import ScheduleError
    from settleguard.daycycle.service import day_status

    container = container_of(request)
    try:
        cfg = container.day_config()
    except ScheduleError as exc:
        raise ApiError(500, "day_config", f"日终自动运行设置有误 {exc.key}：{exc.zh}",
                       f"bad day cycle setting {exc.key}: {exc.en}") from None
    if day is not None and not date(2000, 1, 1) <= day <= date(2099, 12, 31):
        raise ApiError(422, "bad_date", "日期超出范围", "date out of range")
    return day_status(web(request).engine, cfg, web(request).now(), day, enabled=container.day_cycle_enabled)
