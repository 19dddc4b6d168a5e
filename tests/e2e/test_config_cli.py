"""``--config`` / ``SETTLEGUARD_CONFIG`` / ``./settleguard.toml`` as an operator uses them: ``config show`` with
where each setting came from and secrets masked, errors that name the key, file and line and touch no database, and
the file's settings reaching the worker and ``serve`` (its ``--workers N`` processes too)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from settleguard.cli.main import app

PLANTED = "Planted-Secret-Pw-4711"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SETTLEGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SETTLEGUARD_CONFIG", "")  # recorded, so that what serve sets is undone after the test
    monkeypatch.chdir(tmp_path)


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Consoles wide enough for long temporary paths (Rich would wrap them at the terminal's width)."""
    from rich.console import Console

    import settleguard.cli.commands_config
    import settleguard.cli.output

    monkeypatch.setattr(settleguard.cli.output, "err", Console(stderr=True, width=400))
    monkeypatch.setattr(settleguard.cli.commands_config, "console", Console(width=400))


def stderr(r: Any) -> str:
    return r.stderr if r.stderr_bytes is not None else r.output


def config(tmp_path: Path, db: Path, extra: str = "") -> Path:
    f = tmp_path / "settleguard.toml"
    f.write_text(f'[database]\nurl = "sqlite:///{db}"\n\n[settlement]\ntimezone = "Europe/Berlin"\nt1_cutoff_hour = 21\n'
                 f'\n[smtp]\nhost = "mail.example.com"\nport = 2525\npassword = "{PLANTED}"\n{extra}', encoding="utf-8")
    return f


def test_config_show_tells_where_each_setting_came_from_and_masks_secrets(tmp_path: Path) -> None:
    db = tmp_path / "from-file.db"
    f = config(tmp_path, db)
    r = invoke("--config", str(f), "config", "show", "--json", env={"SETTLEGUARD_SMTP_PORT": "587"})
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["config_file"] == str(f.resolve())
    assert data["config_file_from"] == "--config"
    rows = {row["key"]: row for row in data["settings"]}
    assert rows["database.url"]["source"] == "file"
    assert rows["database.url"]["from"] == f"{f.resolve()}:2"
    assert rows["smtp.port"] == {"key": "smtp.port", "field": "smtp_port", "env": "SETTLEGUARD_SMTP_PORT",
                                 "value": 587, "source": "env", "from": "SETTLEGUARD_SMTP_PORT"}
    assert rows["smtp.password"]["value"] == "******"
    assert rows["settlement.d0_cutoff_hour"]["source"] == "default"
    assert {"worker.interval", "server.host", "server.port", "server.workers"} <= rows.keys()
    flagged = invoke("--db", f"sqlite:///{tmp_path / 'flag.db'}", "config", "show", "--json")  # ./settleguard.toml
    got = {row["key"]: row for row in json.loads(flagged.stdout)["settings"]}
    assert (got["database.url"]["source"], got["database.url"]["from"]) == ("flag", "--db")
    assert json.loads(flagged.stdout)["config_file_from"] == "./settleguard.toml"

    table = invoke("--config", str(f), "config", "show")
    assert table.exit_code == 0, table.output
    out = table.stdout
    assert out.index("配置文件") < out.index("configuration file")
    assert "生效设置 Effective settings" in out
    assert "smtp.password" in out
    assert "******" in out
    assert "文件 file :11" in out
    for shown in (r.output, flagged.output, table.output):
        assert PLANTED not in shown
    assert not db.exists()  # config show opens no database


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    r = invoke("--config", str(tmp_path / "nope.toml"), "config", "show")
    assert r.exit_code == 2
    err = stderr(r)
    assert err.index("配置文件不存在") < err.index("does not exist")
    assert "nope.toml" in err
    r = invoke("config", "show", env={"SETTLEGUARD_CONFIG": str(tmp_path / "gone.toml")})
    assert r.exit_code == 2
    assert "SETTLEGUARD_CONFIG" in stderr(r)


def test_a_bad_file_stops_every_command_before_the_database_is_touched(tmp_path: Path) -> None:
    db = tmp_path / "untouched.db"
    f = config(tmp_path, db, "prot = 2\n[worker]\ninterval = 'soon'\n")
    r = invoke("--config", str(f), "worker", "--once")
    assert r.exit_code == 2
    err = stderr(r)
    assert err.index("配置文件有误") < err.index("bad configuration file")
    assert str(f.resolve()) in err
    assert "smtp.prot" in err
    assert "第 12 行 line 12" in err
    assert "did you mean smtp.port" in err
    assert not db.exists()
    f = config(tmp_path, db, "[worker]\ninterval = 'soon'\n")
    r = invoke("--config", str(f), "worker", "--once")
    assert r.exit_code == 2
    assert "worker.interval" in stderr(r)
    assert "line 13" in stderr(r)
    assert not db.exists()
    f.unlink()
    r = invoke("--db", f"sqlite:///{db}", "worker", "--once", env={"SETTLEGUARD_NOTIFY_BATCH": "0"})
    assert r.exit_code == 2
    assert "SETTLEGUARD_NOTIFY_BATCH" in stderr(r)
    assert "设置有误" in stderr(r)
    assert not db.exists()


def test_the_worker_takes_interval_zone_and_risk_rules_from_the_file_and_the_flag_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import settleguard.worker

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(settleguard.worker, "run", lambda *a, **kw: calls.append(kw) or 0)
    rules = tmp_path / "my-rules.toml"
    f = config(tmp_path, tmp_path / "w.db", f'[worker]\ninterval = 7.5\n[risk]\nrules = "{rules}"\n')
    assert invoke("--config", str(f), "worker").exit_code == 0
    assert invoke("--config", str(f), "worker", "--interval", "2").exit_code == 0
    assert [c["interval"] for c in calls] == [7.5, 2.0]
    assert calls[0]["risk_rules_file"] == rules  # handed to the risk_scan step (worker.CycleContext)
    assert calls[0]["tz"] == "Europe/Berlin"  # the container built from the file's settings
    assert calls[0]["opts"].retry.timezone == "Europe/Berlin"


def test_serve_takes_its_options_from_the_file_and_the_flags_win(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: calls.append(kw))
    f = config(tmp_path, tmp_path / "s.db", '[server]\nhost = "127.0.0.2"\nport = 8123\n')
    assert invoke("--config", str(f), "serve").exit_code == 0
    assert invoke("--config", str(f), "serve", "--port", "8124").exit_code == 0
    assert [(c["host"], c["port"]) for c in calls] == [("127.0.0.2", 8123), ("127.0.0.2", 8124)]


def test_serve_workers_from_the_file_hand_the_file_to_every_server_process(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from settleguard.cli.commands_serve import SERVE_DB_ENV, app_from_environment

    seen: list[tuple[str, dict[str, Any], str | None]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.append((app_, kw, os.environ.get("SETTLEGUARD_CONFIG"))))
    monkeypatch.delenv(SERVE_DB_ENV, raising=False)
    monkeypatch.delenv("SETTLEGUARD_SERVE_SECURE_COOKIES", raising=False)
    f = tmp_path / "elsewhere" / "sg.toml"
    f.parent.mkdir()
    f.write_text('[settlement]\ntimezone = "Europe/Berlin"\n[server]\nworkers = 2\nsecure_cookies = true\n',
                 encoding="utf-8")
    r = invoke("--db", pg_url, "--config", str(f), "serve")
    assert r.exit_code == 0, r.output
    [(target, kw, passed)] = seen
    assert target == "settleguard.cli.commands_serve:app_from_environment"
    assert kw["workers"] == 2
    assert passed == str(f.resolve())  # what each server process reads (SETTLEGUARD_CONFIG)
    web = app_from_environment()  # what one server process builds
    container = web.state.container
    assert container.settings.timezone == "Europe/Berlin"
    assert container.settings.db == pg_url
    container.engine.dispose()
