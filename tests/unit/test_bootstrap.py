"""The composition root hands out what it was given (fakes for tests) and builds the rest from one Settings; the
web app's pages show times in the container's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from starlette.requests import Request

from settleguard.bootstrap import Container
from settleguard.cli.runtime import Runtime
from settleguard.config import Settings
from settleguard.web.console.common import ENV

AT = datetime(2026, 11, 19, 16, 30, tzinfo=UTC)


def test_the_cli_runtime_is_the_container_and_takes_the_settings_positionally() -> None:
    settings = Settings(db="sqlite:///x.db")
    assert Runtime is Container
    assert Runtime(settings).settings is settings


def test_the_container_hands_out_the_parts_it_was_given() -> None:
    vault, verifier, channel, engine = object(), object(), object(), object()
    c = Container(Settings(), given_vault=vault, given_verifier=verifier,  # type: ignore[arg-type]
                  given_channel=channel, given_engine=engine, clock=lambda: AT)  # type: ignore[arg-type]
    assert (c.vault, c.verifier, c.channel, c.engine) == (vault, verifier, channel, engine)
    assert c.now() == AT
    assert c.with_engine(engine).vault is vault  # type: ignore[arg-type]


def test_every_domain_setting_comes_from_the_one_settings() -> None:
    s = Settings(timezone="Europe/Berlin", card_attempts_per_day=3, notify_cycle_seconds=7.5, t1_cutoff_hour=21)
    c = Container(s)
    assert (c.tz, c.zone) == ("Europe/Berlin", ZoneInfo("Europe/Berlin"))
    assert c.card_settings().attempts_per_day == 3
    assert c.card_settings().timezone == "Europe/Berlin"
    assert c.cutoffs.timezone == "Europe/Berlin"
    assert c.cutoffs.t1_hour == 21
    assert c.delivery_settings().cycle_seconds == 7.5
    assert c.batch_config().debtor.account_number == s.payout_debtor_account
    assert c.now().tzinfo is UTC


def _request(container: Container) -> Request:
    app = FastAPI()
    app.state.container = container
    scope: dict[str, Any] = {"type": "http", "app": app, "method": "GET", "path": "/", "headers": []}
    return Request(scope)


def test_pages_show_times_in_the_containers_time_zone_beijing_by_default() -> None:
    when = ENV.from_string("{{ at | when }}")
    assert when.render(at=AT, request=_request(Container(Settings()))) == "2026-11-20 00:30"
    assert when.render(at=AT, request=_request(Container(Settings(timezone="Europe/London")))) == "2026-11-19 16:30"
    assert when.render(at=AT) == "2026-11-20 00:30"  # no request at hand: Beijing time
