"""The HTML operations console and merchant portal (server-rendered Jinja2 + htmx, ECharts on the
dashboard; zh by default, ``?lang=en``). Mounted by ``web.app.create_app`` with :func:`install`, outside
/api/v1 and outside the OpenAPI document. Pages: docs/console.md."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from settleguard.web.console import (
    common,
    routes_auth,
    routes_cases,
    routes_day,
    routes_history,
    routes_merchants,
    routes_ops,
    routes_portal,
    routes_recon,
    routes_risk,
    routes_terminals,
    routes_troubleshoot,
)
from settleguard.web.console.tools import CardTools, set_card_tools
from settleguard.web.context import WebContext

__all__ = ["CardTools", "install", "set_card_tools"]


def install(app: FastAPI, ctx: WebContext) -> None:
    """Add the console's and portal's routes, their error pages and /static to ``app``."""
    common.install_handlers(app)
    for module in (routes_auth, routes_merchants, routes_ops, routes_cases, routes_portal, routes_recon):  # /merchants/new first
        app.include_router(module.router)
    app.include_router(routes_terminals.router)  # terminal health (issue 21)
    app.include_router(routes_troubleshoot.router)  # 自助排障 self-service troubleshooter (issue 21)
    app.include_router(routes_history.router)  # history, trends, guidance feedback (issue 22)
    app.include_router(routes_risk.router)  # 风险队列 risk queue, risk holds (issue 22)
    app.include_router(routes_day.router)  # 今日结算周期 today's cycle (issue 23 item 7)
    static = files("settleguard.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
