"""The console's terminal pages (终端健康): the health list ``/terminals`` with filters (health, an open finding's
code or owner, a merchant / terminal / serial number prefix) and a terminal ``/terminals/{id}`` with its
telemetry, open findings (category, owner, steps, guidance) and timeline. Staff only (action ``read``; a
merchant user gets 403 here). The pages read the stored findings (terminals/service.py, as the API's GETs);
``settleguard terminals list`` re-runs the clock-dependent checks."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settleguard.access.model import Action
from settleguard.labels import (
    CATEGORY,
    COMM_TYPE,
    PRINTER_STATE,
    TERMINAL_EVENT,
    TERMINAL_FINDING,
    TERMINAL_HEALTH,
    TERMINAL_OWNER,
    TERMINAL_STEP,
    TIMELINE_KIND,
)
from settleguard.terminals import service
from settleguard.terminals.model import SEVERITY
from settleguard.web.console.common import (
    PAGE,
    Id,
    Staff,
    User,
    check_owner,
    not_found,
    render,
    require_action,
)
from settleguard.web.context import web
from settleguard.web.services import local_zone

router = APIRouter(include_in_schema=False)
Health = Literal["", "ok", "warning", "fault", "unknown"]
Owner = Literal["", "merchant", "field_engineer", "acquirer_ops"]


def _values(request: Request) -> dict[str, Any]:
    zone = local_zone(request)

    def at(v: datetime | None) -> str:
        return "-" if v is None else v.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    return {"at": at, "zone": str(zone), "HEALTH_L": TERMINAL_HEALTH, "OWNER_L": TERMINAL_OWNER,
            "FINDING_L": TERMINAL_FINDING, "STEP_L": TERMINAL_STEP, "CATEGORY_L": CATEGORY, "COMM_L": COMM_TYPE,
            "PRINTER_L": PRINTER_STATE, "KIND_L": TIMELINE_KIND, "EVENT_L": TERMINAL_EVENT, "SEVERITY_L": SEVERITY}


@router.get("/terminals")
def terminals_page(request: Request, user: Staff, health: Annotated[Health, Query()] = "",
                   code: Annotated[str, Query(max_length=32)] = "", owner: Annotated[Owner, Query()] = "",
                   q: Annotated[str, Query(max_length=32)] = "",
                   offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
    """终端健康列表 Terminal health, worst first, filtered."""
    require_action(user, Action.READ)
    code = code if code in TERMINAL_FINDING else ""
    total, rows = service.list_terminals(web(request).engine, unhealthy=False, now=web(request).now(), refresh=False,
                                         limit=PAGE, offset=offset, health=health or None, code=code or None,
                                         owner=owner or None, text=q.strip() or None)
    filters = {"health": health, "code": code, "owner": owner, "q": q}
    return render(request, "terminals.html", user, rows=rows, total=total, offset=offset, page_size=PAGE,
                  filters=filters, **_values(request))


@router.get("/terminals/{terminal_id}")
def terminal_page(request: Request, user: Staff, terminal_id: Id) -> Response:
    """一台终端：遥测、未解决的问题与时间线 One terminal: telemetry, open findings, timeline."""
    require_action(user, Action.READ)
    try:
        d = service.diagnose(web(request).engine, terminal_id, now=web(request).now(), refresh=False)
    except service.TerminalNotFound:
        raise not_found() from None
    # a terminal without telemetry yet (never imported from the TMS, no heartbeat): every field reads as none
    tel: defaultdict[str, Any] = defaultdict(lambda: None, d.get("telemetry") or {})
    return render(request, "terminal.html", user, d=d, tel=tel, **_values(request))


@router.get("/m/{merchant_id}/terminals")
def portal_terminals(request: Request, user: User, merchant_id: Id) -> Response:
    """商户门户：我的终端 The merchant portal's own terminals: health and open findings in the merchant's words
    (what to do when the merchant acts first; never the acquirer ops' instructions). A merchant user sees only
    its own merchant (404 otherwise); staff see any."""
    from settleguard.merchants import repository as merchant_repo

    engine = web(request).engine
    with engine.connect() as conn:
        m = merchant_repo.by_id(conn, merchant_id)
    check_owner(user, merchant_id if m is not None else None)
    terms = service.merchant_terminals(engine, merchant_id)
    return render(request, "portal/terminals.html", user, m=m, terms=terms, **_values(request))
