"""The API docs page /api/v1/docs works without internet access (issue 18, item 11: FastAPI's page loaded
Swagger UI from a CDN and stayed blank offline): it references only this server's own assets, each is
served, and each vendored file is the one web/static/README.md lists (name, licence file, sha256)."""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from settleguard.web.app import create_app

STATIC = files("settleguard.web") / "static"
_REFS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


def test_the_docs_page_loads_only_local_assets_and_each_is_served(sqlite_engine: Engine) -> None:
    c = TestClient(create_app(sqlite_engine))
    page = c.get("/api/v1/docs")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    refs = [a or b for a, b in _REFS.findall(page.text)]
    assert "/static/swagger-ui-bundle.js" in refs
    assert "/static/swagger-ui.css" in refs
    assert "/api/v1/openapi.json" in refs
    for ref in refs:
        assert ref.startswith("/"), ref  # this server, never a CDN
        assert not ref.startswith("//"), ref
        got = c.get(ref)
        assert got.status_code == 200, ref
        assert len(got.content) > 500, ref
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
    assert c.get("/static/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/static/swagger-ui.css").headers["content-type"].startswith("text/css")
    # Swagger UI 5 renders OpenAPI 3.1, which FastAPI writes (4.x shows "no valid version field")
    assert c.get("/api/v1/openapi.json").json()["openapi"].startswith("3.1")
    bundle = (STATIC / "swagger-ui-bundle.js").read_bytes()
    assert b"openapi-3-1" in bundle  # its OpenAPI 3.1 support


def test_every_vendored_file_is_listed_with_its_licence_and_hash() -> None:
    readme = (STATIC / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S+)[^|]*\| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([0-9a-f]{64}) \|$", readme, re.M)
    listed = {name: (licence, sha) for name, _pkg, _version, licence, sha in rows}
    for name in ("htmx.min.js", "echarts.min.js", "swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-favicon.png"):
        assert name in listed, name
        licence, sha = listed[name]
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == sha, name
        for licence_file in re.findall(r"`([^`]+)`", licence):
            assert (STATIC / licence_file).is_file(), licence_file
    assert "swagger-ui.LICENSE" in listed["swagger-ui-bundle.js"][0]
