"""``/api/v1/terminals``: terminal health and heartbeats (终端健康与心跳; docs/terminals.md, docs/api.md).

- ``POST /api/v1/terminals/{terminal_no}/heartbeat`` (action ``terminal_report``: operators, i.e. the API token
  of an operator user dedicated to the TMS bridge): one heartbeat, read by the same field reader as the TMS
  import (terminals/telemetry.py), stored in the bounded history, merged into the latest telemetry, the
  terminal's checks re-run; answers its health and open findings. A bad field is 422 naming it (zh, en); an
  unknown terminal 404; a time later than now + 10 minutes 422.
- ``GET /api/v1/terminals[?unhealthy=true]`` and ``GET /api/v1/terminals/{terminal_no}`` (action ``read``): staff
  see every terminal, a merchant user its own merchant's only (another's is 404). The GETs read the stored
  findings; ``settleguard terminals list`` / ``diagnose`` re-run the clock-dependent checks (silence).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from settleguard.access.model import Action, Principal
from settleguard.terminals import service as terminal_service
from settleguard.terminals.telemetry import read_fields
from settleguard.web.auth import check_owner, require
from settleguard.web.context import API, web
from settleguard.web.errors import ApiError, not_found, responses
from settleguard.web.pagination import PageParams, empty, page, page_params
from settleguard.web.services import container_of

router = APIRouter(prefix=f"{API}/terminals", tags=["terminals 终端"])
TerminalNo = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$",
                                 description="终端号或序列号 terminal number or serial number")]
Scalar = str | int | float | bool | None


class HeartbeatIn(BaseModel):
    """A terminal's report; every field optional, names as in the TMS import (docs/terminals.md)."""

    model_config = ConfigDict(extra="forbid")
    at: Scalar = Field(default=None, description="心跳时间 ISO 8601（默认当前时间）heartbeat time, default now")
    serial_no: Scalar = Field(default=None, description="序列号（须与登记一致）serial number (must match)")
    vendor: Scalar = None
    model_name: Scalar = None
    os_version: Scalar = None
    firmware: Scalar = None
    app_version: Scalar = None
    comm_type: Scalar = Field(default=None, description="4G | Wi-Fi | Ethernet")
    host: Scalar = None
    port: Scalar = None
    ip: Scalar = None
    mask: Scalar = None
    gateway: Scalar = None
    dns: str | list[str] | None = Field(default=None, max_length=8)
    mac: Scalar = None
    iccid: Scalar = None
    imei: Scalar = None
    last_sign_in_at: Scalar = None
    batch_no: Scalar = None
    battery: Scalar = Field(default=None, description="电量 % battery")
    charging: Scalar = None
    signal_dbm: Scalar = Field(default=None, description="信号强度 dBm")
    reconnects: Scalar = None
    echo_latency_ms: Scalar = None
    echo_loss_pct: Scalar = None
    printer: Scalar = Field(default=None, description="ok | no_paper | fault")
    tamper: Scalar = None
    lat: Scalar = None
    lng: Scalar = None


def _missing(key: str) -> ApiError:
    return not_found(f"终端 {key} ", f"terminal {key}", "terminal_not_found")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


@router.post("/{terminal_no}/heartbeat", responses=responses(401, 403, 404, 422))
def post_heartbeat(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.TERMINAL_REPORT))],
    terminal_no: TerminalNo,
    body: HeartbeatIn,
) -> dict[str, Any]:
    """上报终端心跳 Post a terminal heartbeat; answers the terminal's health and open findings."""
    container = container_of(request)
    raw = body.model_dump(exclude_none=True)
    raw["last_heartbeat_at"] = raw.pop("at", None)
    tel, problems = read_fields(raw, container.zone)
    if problems:
        raise ApiError(422, "telemetry_invalid", problems[0].zh, problems[0].en,
                       details={"problems": [{"field": p.field, "zh": p.zh, "en": p.en} for p in problems]})
    try:
        out = terminal_service.record_heartbeat(web(request).engine, terminal_no, tel, now=web(request).now())
    except terminal_service.ReportRefused as exc:
        raise ApiError(422, "telemetry_invalid", exc.zh, exc.en) from None
    except terminal_service.TerminalNotFound as exc:
        raise ApiError(404, "terminal_not_found", exc.zh, exc.en) from None
    return _jsonable(out)  # type: ignore[no-any-return]


@router.get("", responses=responses(401, 403))
def list_terminals(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    paging: Annotated[PageParams, Depends(page_params)],
    unhealthy: Annotated[bool, Query(description="只看有问题的终端 only terminals with open findings")] = False,
) -> dict[str, Any]:
    """终端健康列表 Terminals and their health (a merchant user: its own)."""
    visible, merchant_id = principal.list_scope(None)
    if not visible:
        return empty(paging)
    total, rows = terminal_service.list_terminals(web(request).engine, unhealthy=unhealthy, now=web(request).now(),
                                                  refresh=False, merchant_id=merchant_id, limit=paging.limit,
                                                  offset=paging.offset)
    return page([_jsonable({k: v for k, v in r.items() if k != "id"}) for r in rows], total, paging)


@router.get("/{terminal_no}", responses=responses(401, 403, 404))
def show_terminal(
    request: Request,
    principal: Annotated[Principal, Depends(require(Action.READ))],
    terminal_no: TerminalNo,
) -> dict[str, Any]:
    """一台终端：健康、遥测、未解决的问题与时间线 One terminal: health, telemetry, open findings, timeline."""
    engine = web(request).engine
    try:
        with engine.connect() as conn:
            term = terminal_service.resolve_key(conn, terminal_no)
    except terminal_service.TerminalNotFound:
        raise _missing(terminal_no) from None
    check_owner(principal, Action.READ, int(term["merchant_id"]), _missing(terminal_no))
    out = terminal_service.diagnose(engine, f"{term['merchant_no']}/{term['terminal_no']}", now=web(request).now(),
                                    refresh=False)
    return _jsonable(out)  # type: ignore[no-any-return]
