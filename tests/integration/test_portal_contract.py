"""A merchant sees its fee contract in the portal: the rates in force and a later change with its date."""

from __future__ import annotations

from datetime import timedelta

from test_web_console import World, sign_in, world  # noqa: F401 - the fixture is used by name

from conftest import NOW
from settleguard.merchants.contracts import change


def test_the_portal_shows_the_merchants_contract_and_its_changes(world: World) -> None:  # noqa: F811
    a = world.held_a.merchant
    effective = (NOW + timedelta(days=60)).date()
    change(world.engine, a.merchant_no, effective=effective.isoformat(), credit_rate="0.58", reason="续签 renewal",
           actor="oper", now=NOW)
    page = sign_in(world, "mera").get(f"/m/{a.id}")
    assert page.status_code == 200
    assert "费率合同" in page.text
    assert "0.58%" in page.text
    assert "0.6%" in page.text
    assert effective.isoformat() in page.text
    assert "续签 renewal" in page.text
