"""``settleguard serve``: the REST API, the console and the merchant portal with uvicorn (docs/api.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from settleguard.cli.output import console, fail
from settleguard.cli.runtime import Runtime

if TYPE_CHECKING:
    from fastapi import FastAPI

# ``serve --workers N``: uvicorn starts each server process from an import string (:func:`app_from_environment`
# below); the parent passes the database and the cookie flag in these variables.
SERVE_DB_ENV = "SETTLEGUARD_SERVE_DB"
SERVE_SECURE_COOKIES_ENV = "SETTLEGUARD_SERVE_SECURE_COOKIES"


def serving_banner(host: str, port: int, workers: int) -> str:
    """What ``serve`` prints when it starts: where the console, the portal, the API and its docs are."""
    from rich.cells import cell_len

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # a link a browser on this machine opens
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    lines = [f"结算卫士已启动 settleguard is serving ({workers} 个进程 process(es)); Ctrl-C 停止 to stop"]
    if shown != host:
        lines.append(f"  监听所有地址 listening on all addresses ({host or '0.0.0.0'}:{port})")
    for label, path in (("运营控制台 console", "/"), ("商户门户 portal", "/m"), ("API", "/api/v1"),
                        ("API 文档 API docs", "/api/v1/docs")):
        lines.append(f"  {label}{' ' * (20 - cell_len(label))}{base}{path}")  # aligned in terminal cells
    return "\n".join(lines)


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="监听地址 address to listen on (默认 default: server.host, "
                                                  "127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口 port to listen on (默认 default: server.port, 8000)",
                                             min=1, max=65535)] = None,
    secure_cookies: Annotated[bool | None, typer.Option("--secure-cookies", help="会话 Cookie 只经 HTTPS 发送（在 "
                                                        "HTTPS 反向代理之后使用）set the Secure flag on the session "
                                                        "cookie (behind HTTPS; default: server.secure_cookies)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="服务进程数（仅 PostgreSQL；通常为 CPU 核数）"
                                                "server processes (PostgreSQL only; usually the CPU count; default: "
                                                "server.workers, 1)")] = None,
) -> None:
    """启动服务 Serve the operations console (/), the merchant portal (/m), the API under /api/v1 (docs at
    /api/v1/docs, OpenAPI at /api/v1/openapi.json) and /metrics."""
    import uvicorn

    from settleguard.db.engine import DatabaseError
    from settleguard.web.app import create_app, server_engine
    from settleguard.web.context import AuthSettings

    rt: Runtime = ctx.obj
    # the flags win over the settings (settleguard.toml [server], SETTLEGUARD_SERVER_*)
    host = rt.settings.server_host if host is None else host
    port = rt.settings.server_port if port is None else port
    workers = rt.settings.server_workers if workers is None else workers
    secure_cookies = rt.settings.server_secure_cookies if secure_cookies is None else secure_cookies
    try:
        engine = rt.engine  # migrated here, once, before any server process starts
    except DatabaseError as exc:
        fail("无法打开数据库", "cannot open the database", str(exc))
        return
    postgres = engine.dialect.name == "postgresql"
    if workers > 1 and not postgres:
        fail("SQLite 数据库只能由一个服务进程使用", "an SQLite database is served by one process",
             "--workers > 1 needs PostgreSQL (SQLite writes would queue on the file lock)")
    console.print(serving_banner(host, port, workers), highlight=False, markup=False, soft_wrap=True)
    if workers == 1:
        served = rt
        if postgres:
            engine.dispose()
            served = rt.with_engine(server_engine(rt.settings.db))
        app_ = create_app(served, auth=AuthSettings(secure_cookies=secure_cookies))
        uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False, log_config=_log_config())
        return
    engine.dispose()
    # uvicorn's process manager starts each worker from an import string: the worker builds its own engine
    # and app from these variables (app_from_environment below)
    os.environ[SERVE_DB_ENV] = rt.settings.db
    loaded = ctx.meta.get("settleguard.config")
    if loaded is not None and loaded.sources.file is not None:  # the same settleguard.toml in every process
        from settleguard.config_file import CONFIG_ENV

        os.environ[CONFIG_ENV] = str(loaded.sources.file.path)
    os.environ[SERVE_SECURE_COOKIES_ENV] = "1" if secure_cookies else "0"
    uvicorn.run("settleguard.cli.commands_serve:app_from_environment", factory=True, workers=workers, host=host,
                port=port, log_level="warning", access_log=False, log_config=_log_config())


def _log_config() -> dict[str, object] | None:
    """uvicorn's own logging setup, or None with JSON logs: its records then go through settleguard.logs."""
    from uvicorn.config import LOGGING_CONFIG

    from settleguard.logs import json_configured

    return None if json_configured() else LOGGING_CONFIG


def app_from_environment() -> FastAPI:
    """The web app of one process of ``settleguard serve --workers N`` (uvicorn ``--factory``): the composition
    root from the environment's settings, the database ``$SETTLEGUARD_SERVE_DB`` (already migrated by ``serve``)
    over this process's own pooled engine. The one web entry point that reads the environment."""
    from settleguard.bootstrap import Container, settings_from_environment
    from settleguard.logs import configure
    from settleguard.web.app import create_app, server_engine
    from settleguard.web.context import AuthSettings

    configure(json=os.environ.get("SETTLEGUARD_LOG_FORMAT", "").lower() == "json")  # this process's logs
    settings = settings_from_environment(db=os.environ[SERVE_DB_ENV])
    secure = os.environ.get(SERVE_SECURE_COOKIES_ENV) == "1"
    return create_app(Container(settings, given_engine=server_engine(settings.db)),
                      auth=AuthSettings(secure_cookies=secure))
