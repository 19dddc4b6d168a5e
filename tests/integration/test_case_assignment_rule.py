"""One rule for who a case may be assigned to (cases.service.may_be_assigned: an enabled operator or support
user), on SQLite and PostgreSQL: the console, ``POST /api/v1/cases/{id}/assign`` and ``settleguard cases assign``
refuse the same assignments with the same zh/en reason and change nothing, and allow the same ones."""

from __future__ import annotations

import pytest
import test_web_console
from test_web_console import World, case_state, csrf, sign_in
from typer.testing import CliRunner

from settleguard.cli.main import app as cli

world = test_web_console.world  # the fixture: users of each role (oper, supp, audi, mera, merb) and one case

REFUSED = ["audi", "mera", "nobody-here"]  # an auditor, a merchant user, no such user


def reason(name: str) -> tuple[str, str]:
    return f"{name} 不是可处理工单的员工用户", f"{name} is not a staff user who works cases"


@pytest.mark.parametrize("assignee", REFUSED)
def test_the_api_refuses_the_assignments_the_console_refuses(world: World, assignee: str) -> None:
    cid = world.case_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/cases/{cid}")
    before = case_state(world.engine, cid)
    zh, en = reason(assignee)
    page = c.post(f"/cases/{cid}/assign", data={"csrf_token": token, "assignee": assignee})
    assert page.status_code == 409
    assert zh in page.text
    assert en in page.text
    r = c.post(f"/api/v1/cases/{cid}/assign", json={"assignee": assignee}, headers={"X-CSRF-Token": token})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == {"code": "case_action_refused", "message_zh": zh, "message_en": en}
    assert case_state(world.engine, cid) == before


@pytest.mark.parametrize("assignee", REFUSED)
def test_the_cli_refuses_the_assignments_the_console_refuses(world: World, db_url: str, assignee: str) -> None:
    cid = world.case_id
    before = case_state(world.engine, cid)
    done = CliRunner().invoke(cli, ["--db", db_url, "cases", "assign", str(cid), assignee, "--actor", "oper"])
    assert done.exit_code == 1, done.output
    zh, en = reason(assignee)
    assert zh in done.output
    assert en in done.output
    assert case_state(world.engine, cid) == before


def test_the_api_and_the_cli_assign_to_staff_who_work_cases(world: World, db_url: str) -> None:
    cid = world.case_id
    c = sign_in(world, "oper")
    token = csrf(c, f"/cases/{cid}")
    r = c.post(f"/api/v1/cases/{cid}/assign", json={"assignee": "supp"}, headers={"X-CSRF-Token": token})
    assert (r.status_code, r.json()["assignee"]) == (200, "supp")
    done = CliRunner().invoke(cli, ["--db", db_url, "cases", "assign", str(cid), "oper", "--actor", "oper"])
    assert done.exit_code == 0, done.output
    assert case_state(world.engine, cid)[1] == "oper"
