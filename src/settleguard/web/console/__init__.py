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
    routes_merchants,
    routes_ops,
    routes_portal,
)
from settleguard.web.console.tools import CardTools, set_card_tools
from settleguard.web.context import WebContext

__all__ = ["CardTools", "install", "set_card_tools"]


def install(app: FastAPI, ctx: WebContext) -> None:
    """Add the console's and portal's routes, their error pages and /static to ``app``."""
    common.install_handlers(app)
    for module in (routes_auth, routes_merchants, routes_ops, routes_cases, routes_portal):  # /merchants/new first
        app.include_router(module.router)
    static = files("settleguard.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
