"""/healthz (process up, no database) and /readyz (database reachable and at the latest migration, else 503),
without login and outside /api/v1; every response carries X-Request-ID, and every log record written while a
request is handled carries its request id, masked. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from settleguard import logs
from settleguard.bootstrap import Container
from settleguard.db.engine import alembic_config, create, head_revision
from settleguard.web.app import create_app


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_ready_at_head_then_not_ready_one_revision_back(engine: Engine) -> None:
    client = TestClient(create_app(Container(given_engine=engine)), raise_server_exceptions=False)
    up = client.get("/healthz")
    assert up.status_code == 200
    assert up.json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "current": head_revision(engine),
                            "head": head_revision(engine)}
    command.stamp(alembic_config(engine), "0020")  # an old migration
    behind = client.get("/readyz")
    assert behind.status_code == 503
    body = behind.json()
    assert body["status"] == "not_ready"
    assert body["current"] == "0020"
    assert body["head"] == head_revision(engine)
    assert body["message_zh"].startswith("数据库")
    assert "migration" in body["message_en"]
    assert client.get("/api/v1/payouts").status_code == 401  # the API still needs a login; health does not


def test_without_a_database_healthz_is_up_and_readyz_is_503() -> None:
    dead = create("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    client = TestClient(create_app(Container(given_engine=dead)), raise_server_exceptions=False)
    assert client.get("/healthz").status_code == 200  # never touches the database
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["database"] == "unreachable"
    assert down.json()["message_en"] == "database unreachable"


def test_request_ids_are_returned_and_in_every_record_of_the_request(engine: Engine,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    app = create_app(Container(given_engine=engine))

    @app.get("/probe-logging")
    def probe() -> dict[str, str]:  # a sync handler: runs in the thread pool
        logging.getLogger("settleguard.probe").warning("bank echoed 6217000012345678901 for 11010519900307123X")
        return {"ok": "1"}

    logs.configure(json=True)
    client = TestClient(app, raise_server_exceptions=False)
    capsys.readouterr()
    given = client.get("/probe-logging", headers={"X-Request-ID": "lb-42.a_b"})
    assert given.headers["x-request-id"] == "lb-42.a_b"
    fresh = client.get("/probe-logging", headers={"X-Request-ID": "bad id\twith 6217000012345678901"})
    new_id = fresh.headers["x-request-id"]
    assert len(new_id) == 32
    assert "6217" not in new_id
    assert client.get("/healthz").headers["x-request-id"]
    err = capsys.readouterr().err
    assert "6217000012345678901" not in err
    assert "11010519900307123X" not in err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    probes = [r for r in records if r["logger"] == "settleguard.probe"]
    assert [r["request_id"] for r in probes] == ["lb-42.a_b", new_id]
    assert probes[0]["event"] == "bank echoed 621700*********8901 for 110105********123X"
    requests = [r for r in records if r["event"] == "http request"]
    assert [(r["request_id"], r["route"], r["status"]) for r in requests] == [
        ("lb-42.a_b", "/probe-logging", 200), (new_id, "/probe-logging", 200)]  # /healthz is not logged
