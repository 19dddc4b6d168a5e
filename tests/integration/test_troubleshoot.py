"""The self-service troubleshooter (自助排障, troubleshoot/; docs/troubleshoot.md) on SQLite and PostgreSQL: a planted
situation per symptom is named with the merchant's steps (a payout held for a wrong name → re-bind; a paid payout
→ sent on that date, check your card; a terminal without findings → ok; a planted terminal finding and
reconciliation break → named), a merchant sees only its own merchant (404), an operations step is never shown to
a merchant but is to staff, "open a case" opens exactly one case with the payouts linked, and the CLI."""

from __future__ import annotations

import json
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select
from test_web_console import CLIENT_NOW, World, csrf, sign_in, world  # noqa: F401 - the fixture is used by name
from typer.testing import CliRunner

from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.payouts import repository as payout_repo
from settleguard.payouts.details import current_reason
from settleguard.payouts.model import PayoutStatus
from settleguard.terminals.checks import CODES
from settleguard.troubleshoot import service
from settleguard.troubleshoot.model import Check, Outcome, Symptom, ops_steps

ZONE = ZoneInfo("Asia/Shanghai")
_TAGS = re.compile(r"<[^>]+>")


def run(w: World, merchant_no: str, symptom: Symptom | None) -> Any:
    return service.run(w.engine, merchant_no, symptom, now=CLIENT_NOW, zone=ZONE)


def check(report: Any, which: Check) -> Any:
    return next(r for r in report.results if r.check is which)


def text(page: str) -> str:
    return _TAGS.sub(" ", page)


def plant_break(engine: Engine, payout_id: int, type_: str, amount_fen: int) -> int:
    with engine.begin() as conn:
        return int(conn.execute(insert(t.recon_breaks).values(
            break_key=f"{type_}:P{payout_id}", type=type_, status="open", amount_fen=amount_fen, end_to_end_id=None,
            bank_ref="B1", booking_date=CLIENT_NOW.date(), payout_id=payout_id, bank_line_id=None, opened_at=CLIENT_NOW,
            cleared_at=None, detail={}, run_id=1, last_run_id=1)).inserted_primary_key[0])


def plant_finding(engine: Engine, merchant_id: int, code: str) -> int:
    """An open stored finding on the merchant's terminal (no telemetry: the checks' re-run leaves it alone)."""
    spec = CODES[code]
    with engine.begin() as conn:
        tid = conn.execute(select(t.terminals.c.id).where(t.terminals.c.merchant_id == merchant_id)).scalars().first()
        return int(conn.execute(insert(t.terminal_findings).values(
            terminal_id=tid, code=code, category=spec.category, severity=spec.severity, owner=spec.owner,
            status="open", open_key=code, detail_zh="主机 10.9.9.9:5000", detail_en="host 10.9.9.9:5000", evidence={},
            first_seen_at=CLIENT_NOW, last_seen_at=CLIENT_NOW, closed_at=None)).inserted_primary_key[0])


def cases_of(engine: Engine, merchant_id: int) -> list[tuple[int, list[int], int]]:
    """(case id, linked payouts, notes) of the merchant's troubleshooter cases."""
    c, cp, cn = t.cases, t.case_payouts, t.case_notes
    with engine.connect() as conn:
        ids = conn.execute(select(c.c.id).where(c.c.merchant_id == merchant_id, c.c.title.like("自助排障%"))
                           .order_by(c.c.id)).scalars().all()
        return [(i, sorted(conn.execute(select(cp.c.payout_id).where(cp.c.case_id == i)).scalars()),
                 int(conn.execute(select(func.count()).select_from(cn).where(cn.c.case_id == i)).scalar_one()))
                for i in ids]


def test_each_symptom_runs_its_checks_on_the_planted_situation(world: World) -> None:  # noqa: F811
    a, b = world.held_a, world.paid_b
    # 钱没到账, merchant a: its payout is held because the bank said the account name is wrong → re-bind
    r = run(world, a.merchant.merchant_no, Symptom.MONEY_NOT_ARRIVED)
    assert [x.check for x in r.results] == [Check.PAYOUTS, Check.CARD, Check.FAILURES, Check.RECON]
    payouts = check(r, Check.PAYOUTS)
    assert payouts.outcome is Outcome.FAIL
    assert payouts.payout_ids == (a.payout_id,)
    assert "户名" in payouts.found[0].zh
    assert "挂账" in payouts.found[0].zh
    assert any("重新绑定结算卡" in s.zh for s in r.steps())
    assert any("bind" in s.en for s in r.steps())
    assert check(r, Check.CARD).outcome is Outcome.FAIL
    assert r.outcome is Outcome.FAIL
    assert r.payout_ids == (a.payout_id,)
    # 钱没到账, merchant b: paid on a date → the merchant is told when, to which card, and to check that card
    r = run(world, b.merchant.merchant_no, Symptom.MONEY_NOT_ARRIVED)
    with world.engine.connect() as conn:
        paid = payout_repo.last_event_to(conn, b.payout_id, PayoutStatus.SUCCEEDED)
    assert paid is not None
    day = paid["created_at"].astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")
    assert check(r, Check.PAYOUTS).outcome is Outcome.OK
    assert any(day in s.zh and "请查看结算卡" in s.zh for s in r.steps())
    assert r.outcome is Outcome.OK
    # 结算失败: the held payout and the failed attempt behind it
    r = run(world, a.merchant.merchant_no, Symptom.SETTLEMENT_FAILED)
    assert check(r, Check.FAILURES).outcome is Outcome.WARN
    assert "银行卡信息错误" in check(r, Check.FAILURES).found[0].zh
    # 连不上网 / 签到失败: a registered terminal without findings is ok
    for s in (Symptom.CANNOT_CONNECT, Symptom.SIGN_IN_FAILED):
        r = run(world, b.merchant.merchant_no, s)
        assert [x.check for x in r.results] == [Check.TERMINALS]
        assert r.outcome is Outcome.OK
    # … and a stored finding is named with the merchant's step (a wrong host: stop, ask the acquirer)
    fid = plant_finding(world.engine, a.merchant.id, "wrong_host")
    r = run(world, a.merchant.merchant_no, Symptom.CANNOT_CONNECT)
    term = check(r, Check.TERMINALS)
    assert term.outcome is Outcome.FAIL
    assert term.finding_ids == (fid,)
    assert "主机地址不是收单机构的" in term.found[0].zh
    assert CODES["wrong_host"].merchant_zh in [s.zh for s in r.steps()]
    # 凭证校验码不一致: terminals and reconciliation; 余额不足/被扣款: a duplicate debit is a problem found
    r = run(world, b.merchant.merchant_no, Symptom.CHECK_CODE_MISMATCH)
    assert [x.check for x in r.results] == [Check.TERMINALS, Check.RECON]
    assert r.outcome is Outcome.OK
    bid = plant_break(world.engine, b.payout_id, "duplicate_debit", b.amount)
    r = run(world, b.merchant.merchant_no, Symptom.BALANCE_DEBITED)
    recon = check(r, Check.RECON)
    assert recon.outcome is Outcome.FAIL
    assert recon.break_ids == (bid,)
    assert "银行重复扣款" in recon.found[0].zh
    assert any("退回" in s.zh for s in r.steps())
    assert check(run(world, b.merchant.merchant_no, Symptom.CHECK_CODE_MISMATCH), Check.RECON).outcome is Outcome.WARN
    # no symptom: every check
    assert [x.check for x in run(world, b.merchant.merchant_no, None).results] == list(Check)


def test_symptoms_are_read_in_chinese_english_or_code_and_anything_else_is_refused() -> None:
    assert service.symptom_of("钱没到账") is Symptom.MONEY_NOT_ARRIVED
    assert service.symptom_of("Cannot Connect") is Symptom.CANNOT_CONNECT
    assert service.symptom_of("check_code_mismatch") is Symptom.CHECK_CODE_MISMATCH
    assert service.symptom_of("余额不足/被扣款") is Symptom.BALANCE_DEBITED
    assert service.symptom_of("  ") is None
    with pytest.raises(service.TroubleshootRefused) as refused:
        service.symptom_of("<script>" * 50)
    assert "未知症状" in refused.value.zh
    assert "unknown symptom" in refused.value.en
    assert len(refused.value.zh) < 400  # what was typed is echoed, cut


def test_a_merchant_sees_only_its_own_and_never_an_operations_step(world: World) -> None:  # noqa: F811
    a, b = world.held_a, world.paid_b
    plant_finding(world.engine, a.merchant.id, "wrong_host")
    mera = sign_in(world, "mera")
    assert mera.get(f"/m/{b.merchant.id}/troubleshoot").status_code == 404
    assert mera.get(f"/m/{b.merchant.id}/troubleshoot?symptom=money_not_arrived").status_code == 404
    assert mera.get("/m/999999/troubleshoot").status_code == 404
    assert mera.get(f"/merchants/{a.merchant.id}/troubleshoot").status_code == 403  # the staff page
    token = csrf(mera, f"/m/{a.merchant.id}")
    assert mera.post(f"/m/{b.merchant.id}/troubleshoot/case",
                     data={"symptom": "money_not_arrived", "csrf_token": token}).status_code == 404
    assert cases_of(world.engine, b.merchant.id) == []
    assert mera.get(f"/m/{a.merchant.id}/troubleshoot?symptom=nonsense").status_code == 422
    hostile = mera.get(f"/m/{a.merchant.id}/troubleshoot", params={"symptom": "<script>alert(1)</script>"})
    assert hostile.status_code == 422
    assert "<script>alert" not in hostile.text  # echoed escaped
    assert mera.get(f"/m/{a.merchant.id}/troubleshoot", params={"symptom": "x" * 101}).status_code == 400
    picker = mera.get(f"/m/{a.merchant.id}/troubleshoot")
    assert picker.status_code == 200
    assert "钱没到账" in picker.text
    assert "凭证校验码不一致" in picker.text
    assert f"/m/{a.merchant.id}/troubleshoot" in mera.get(f"/m/{a.merchant.id}").text  # linked from the portal

    with world.engine.connect() as conn:
        _, attempts = payout_repo.history(conn, a.payout_id)
        reason = current_reason(conn, a.payout_id, PayoutStatus.HELD, attempts)
    assert reason is not None
    ops = [s.zh for s in ops_steps(reason)] + [CODES["wrong_host"].ops_zh]
    assert ops[0]
    for symptom in ("钱没到账", "连不上网"):
        page = mera.get(f"/m/{a.merchant.id}/troubleshoot", params={"symptom": symptom})
        assert page.status_code == 200
        assert "重新绑定结算卡" in page.text or CODES["wrong_host"].merchant_zh in page.text
        assert b.merchant.merchant_no not in page.text
        rebind = f'class="button primary" href="/m/{a.merchant.id}/card"'
        assert (rebind in page.text) is (symptom == "钱没到账")  # the re-bind button under a failed card check
        for step in ops:
            assert step not in page.text, step
    supp = sign_in(world, "supp")
    staff = supp.get(f"/merchants/{a.merchant.id}/troubleshoot?symptom=money_not_arrived")
    assert staff.status_code == 200
    assert ops_steps(reason)[0].zh in staff.text
    assert CODES["wrong_host"].ops_zh in supp.get(f"/merchants/{a.merchant.id}/troubleshoot?symptom=连不上网").text
    assert f"/merchants/{a.merchant.id}/troubleshoot" in supp.get(f"/merchants/{a.merchant.id}").text
    assert "Troubleshooter" in supp.get(f"/merchants/{a.merchant.id}/troubleshoot?symptom=签到失败&lang=en").text


def test_open_case_opens_exactly_one_case_with_the_payouts_linked(world: World) -> None:  # noqa: F811
    a = world.held_a
    mera = sign_in(world, "mera")
    token = csrf(mera, f"/m/{a.merchant.id}")
    assert mera.post(f"/m/{a.merchant.id}/troubleshoot/case",
                     data={"symptom": "钱没到账", "csrf_token": "forged"}).status_code == 403
    assert cases_of(world.engine, a.merchant.id) == []
    first = mera.post(f"/m/{a.merchant.id}/troubleshoot/case", data={"symptom": "钱没到账", "csrf_token": token})
    again = mera.post(f"/m/{a.merchant.id}/troubleshoot/case", data={"symptom": "money_not_arrived", "csrf_token": token})
    assert first.status_code == again.status_code == 200
    (case_id, linked, notes), = cases_of(world.engine, a.merchant.id)
    assert linked == [a.payout_id]
    assert notes == 1
    assert f"#{case_id}" in first.text
    assert "已开工单" in first.text
    assert "正在处理中" in again.text
    with world.engine.connect() as conn:
        body = conn.execute(select(t.case_notes.c.body).where(t.case_notes.c.case_id == case_id)).scalar_one()
    assert "户名" in body
    assert "结算款状态" in body
    audi = sign_in(world, "audi")  # an auditor reads the support view but opens no case
    assert audi.get(f"/merchants/{a.merchant.id}/troubleshoot?symptom=结算失败").status_code == 200
    assert audi.post(f"/merchants/{a.merchant.id}/troubleshoot/case",
                     data={"symptom": "结算失败", "csrf_token": csrf(audi, "/")}).status_code == 403
    supp = sign_in(world, "supp")
    assert supp.post(f"/merchants/{a.merchant.id}/troubleshoot/case",
                     data={"symptom": "结算失败", "csrf_token": csrf(supp, "/")}).status_code == 200
    assert len(cases_of(world.engine, a.merchant.id)) == 2  # another symptom, another case


def test_cli_troubleshoots_and_opens_a_case(world: World, db_url: str) -> None:  # noqa: F811
    a = world.held_a
    runner = CliRunner()
    base = ["--db", db_url, "troubleshoot"]
    shown = runner.invoke(cli, [*base, a.merchant.merchant_no, "--symptom", "钱没到账"])
    assert shown.exit_code == 0, shown.output
    assert "户名" in shown.output
    assert "怎么办 What to do" in shown.output
    out = runner.invoke(cli, [*base, a.merchant.merchant_no, "--symptom", "money not arrived", "--json", "--open-case",
                              "--by", "support.wang"])
    assert out.exit_code == 0, out.output
    js = json.loads(out.stdout)
    assert js["symptom"] == "money_not_arrived"
    assert js["outcome"] == "fail"
    assert "ops" not in js
    assert js["payout_ids"] == [a.payout_id]
    assert js["case"]["created"] is True
    assert [c["check"] for c in js["checks"]] == ["payouts", "card", "failures", "recon"]
    assert cases_of(world.engine, a.merchant.id) == [(js["case"]["id"], [a.payout_id], 1)]
    bad = runner.invoke(cli, [*base, a.merchant.merchant_no, "--symptom", "打印机坏了"])
    assert bad.exit_code == 2
    assert "未知症状" in bad.output
    assert "打印机坏了" in bad.output
    missing = runner.invoke(cli, [*base, "000000000000000", "--symptom", "结算失败"])
    assert missing.exit_code == 1
    assert "没有商户" in missing.output
    assert len(cases_of(world.engine, a.merchant.id)) == 1
