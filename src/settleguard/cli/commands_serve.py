"""``settleguard serve``: the REST API (and later the web interface) with uvicorn (docs/api.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from settleguard.cli.output import console, fail
from settleguard.cli.runtime import Runtime
from settleguard.db.engine import DatabaseError


def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="监听地址 address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口 port to listen on", min=1, max=65535)] = 8000,
    secure_cookies: Annotated[bool, typer.Option("--secure-cookies", help="会话 Cookie 只经 HTTPS 发送（在 HTTPS "
                                                                          "反向代理之后使用）set the Secure flag on the "
                                                                          "session cookie (behind HTTPS)")] = False,
) -> None:
    """启动 API 服务 Serve the API under /api/v1 (OpenAPI at /api/v1/openapi.json) and /metrics."""
    import uvicorn

    from settleguard.web.app import create_app
    from settleguard.web.context import AuthSettings

    rt: Runtime = ctx.obj
    try:
        engine = rt.engine
    except DatabaseError as exc:
        fail("无法打开数据库", "cannot open the database", str(exc))
        return
    app_ = create_app(engine, auth=AuthSettings(secure_cookies=secure_cookies))
    console.print(f"API 服务已启动 serving on http://{host}:{port}/api/v1 "
                  f"(文档 docs http://{host}:{port}/api/v1/docs); Ctrl-C 停止 to stop", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning", access_log=False)
