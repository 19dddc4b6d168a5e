"""The interactive API docs page (Swagger UI) at /api/v1/docs, served from the package.

FastAPI's own docs page loads Swagger UI from a CDN, so on a machine without internet access the
page stays blank. This one loads the vendored copies under /static/ (web/static/README.md).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from settleguard.web.context import API

DOCS_PATH = f"{API}/docs"
ASSETS = ("/static/swagger-ui-bundle.js", "/static/swagger-ui.css", "/static/swagger-ui-favicon.png")


def install(app: FastAPI) -> None:
    """Serve the docs page at ``DOCS_PATH`` (create the app with ``docs_url=None``); /static is mounted by
    the console (web/console/__init__.py)."""
    js, css, icon = ASSETS

    @app.get(DOCS_PATH, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or f"{API}/openapi.json", title=f"{app.title} — API 文档 docs",
            swagger_js_url=js, swagger_css_url=css, swagger_favicon_url=icon,
            # no online validator badge (it would call validator.swagger.io)
            swagger_ui_parameters={"validatorUrl": None},
        )
