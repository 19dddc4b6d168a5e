"""The console page 今日结算周期 Today's cycle, ``/day`` (staff; issue 23 item 7, daycycle/): the business day's
expected files and their state (arrived, late, missing), what arrived, what the worker ran and when, what comes
next, and its alerts; ``?date=`` picks another business day. Times in the business zone."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settleguard.web.console.common import PageError, Staff, render
from settleguard.web.context import web
from settleguard.web.services import container_of

router = APIRouter(include_in_schema=False)


def _hm(iso: str | None) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).strftime("%m-%d %H:%M") if iso else "-"


def _hms(iso: str | None) -> str:
    """An event's time (received, ran, alerted, now) to the second."""
    from datetime import datetime

    return datetime.fromisoformat(iso).strftime("%m-%d %H:%M:%S") if iso else "-"


@router.get("/day")
def day_page(request: Request, user: Staff,
             day: Annotated[date | None, Query(alias="date")] = None) -> Response:
    from settleguard.daycycle.model import ScheduleError
    from settleguard.daycycle.service import day_status

    container = container_of(request)
    try:
        cfg = container.day_config()
    except ScheduleError as exc:
        raise PageError(500, f"日终自动运行设置有误 {exc.key}：{exc.zh}", f"bad day cycle setting {exc.key}: {exc.en}") from None
    if day is not None and not date(2000, 1, 1) <= day <= date(2099, 12, 31):
        raise PageError(422, "日期超出范围", "date out of range")
    st = day_status(web(request).engine, cfg, web(request).now(), day, enabled=container.day_cycle_enabled)
    return render(request, "day.html", user, st=st, hm=_hm, hms=_hms)
