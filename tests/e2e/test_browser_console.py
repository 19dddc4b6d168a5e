"""Browser tests of the operations console and the merchant portal (issue 7), with Playwright driving
Debian's chromium (/usr/bin/chromium; .ci/run installs it; Playwright downloads nothing).

A SQLite database is built as a user would build it: a merchant with a bound card, its day imported and
settled through the CLI, and the payout sent through the simulated bank, which answers allinpay 3031
账号户名不符, so the payout is held. Users are added with ``settleguard users add`` and the site runs as
``settleguard serve`` in a subprocess. Then, in the browser:

1. an operator logs in, sees the held payout on the dashboard, opens it from there and reads the
   diagnosis and the guidance (Chinese first);
2. the merchant logs in on the portal, sees the held payout with what to do, re-binds the card with the
   four elements, and after ``settleguard worker --once`` sees the payout released and paid.

Screenshots of the dashboard, the payout page and the merchant page go to the test's temporary folder; the
README's screenshots (docs/screenshots/) are taken by test_browser_no_codes.py at 1366×768 and 390×844.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_people_acceptance import DAY, SALE_FEN, SETTLEGUARD, SH, VALUE_DAY, free_port, sg

from factories import Txn, make_merchants, ref, write_csv
from settleguard.cards.bins import luhn_complete
from settleguard.cards.vault import load_vault
from settleguard.cards.verifier import CardStatus, VerificationOutcome
from settleguard.cards.verifier_sim import SimulatedVerifier
from settleguard.channels.simulator import NAME_MISMATCH, SimulatedBank
from settleguard.db.engine import open_engine
from settleguard.diagnosis import classify
from settleguard.settlement.model import CardType, TxnKind

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ID_NUMBER = "11010519491231002X"  # the factories' merchants' legal person 张三 (tests/payout_helpers.py)
PHONE = "13812345678"
OPERATOR, MERCHANT_USER, PASSWORD = "ops-li", "shop-owner", "正确的马-电池-订书钉-2026"


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extras pin it
        problem = f"playwright is not installed: {exc}"
    else:
        if CHROMIUM.exists():
            return sync_playwright
        problem = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires the browser tests: {problem}")
    pytest.skip(problem)


def _seed(pan: str, key: str) -> int:
    """A simulator seed with which the first send of ``key`` fails with 3031 户名不符, the card verifier finds
    the card normal, and the released instruction ``key``R1 goes through without a busy or timeout blip."""
    for seed in range(1, 200_000):
        bank = SimulatedBank(seed)
        if (bank.card_fault(pan) == NAME_MISMATCH and bank.attempt_fault(key, 1) is None
                and bank.attempt_fault(f"{key}R1", 1) is None
                and SimulatedVerifier(seed).status_of(pan) is CardStatus.NORMAL):
            return seed
    raise AssertionError("no simulator seed fails this card with 3031")


def _new_card(seed: int) -> str:
    """A Luhn-valid ICBC debit card that the simulated verifier (this seed) finds normal and matching, and
    that the simulated bank pays."""
    verifier, bank = SimulatedVerifier(seed), SimulatedBank(seed)
    for n in range(1, 100_000):
        pan = luhn_complete(f"621226{880_000_000_000 + n:012d}")
        if (verifier.status_of(pan) is CardStatus.NORMAL
                and verifier.verify_four_elements(pan, "张三", ID_NUMBER, PHONE).outcome is VerificationOutcome.MATCH
                and bank.card_fault(pan) is None):
            return pan
    raise AssertionError("no card the simulators accept")


class Site:
    def __init__(self, db: str, cwd: Path, env: dict[str, str], merchant_id: int, payout_id: int, new_pan: str,
                 url: str) -> None:
        self.db, self.cwd, self.env = db, cwd, env
        self.merchant_id, self.payout_id, self.new_pan, self.url = merchant_id, payout_id, new_pan, url


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = f"sqlite:///{tmp_path / 'console.db'}"
    cwd = tmp_path
    env = {"SETTLEGUARD_KEY_FILE": str(cwd / "merchant-cards.key")}
    sg(db, "db", "upgrade", cwd=cwd, env=env)
    engine = open_engine(db)
    with engine.begin() as conn:
        [m] = make_merchants(conn, load_vault(None, cwd / "merchant-cards.key"), 1)
    engine.dispose()
    csv_path = write_csv(cwd / "pos.csv", [Txn(ref(), m.merchant_no, m.terminal_no,
                                               datetime.combine(DAY, dtime(12, 5), SH), TxnKind.SALE, CardType.QR,
                                               SALE_FEN)])
    sg(db, "import", "transactions", str(csv_path), cwd=cwd, env=env)
    sg(db, "settle", "--date", DAY.isoformat(), cwd=cwd, env=env)
    [due] = json.loads(sg(db, "payouts", "list", "--json", cwd=cwd, env=env).stdout)
    seed = _seed(m.pan, str(due["idempotency_key"]))
    env |= {"SETTLEGUARD_SIM_SEED": str(seed), "SETTLEGUARD_CARD_VERIFIER_SEED": str(seed)}
    sent = json.loads(sg(db, "payouts", "send", "--as-of", VALUE_DAY.isoformat(), "--json", cwd=cwd, env=env).stdout)
    assert sent["held"] == 1
    for user, role, extra in ((OPERATOR, "operator", []), (MERCHANT_USER, "merchant", ["--merchant-no", m.merchant_no])):
        base = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
        done = subprocess.run([str(SETTLEGUARD), "--db", db, "users", "add", user, "--role", role, *extra,
                               "--password-stdin"], input=PASSWORD + "\n", cwd=cwd, capture_output=True, text=True,
                              timeout=120, env={**base, **env})
        assert done.returncode == 0, done.stdout + done.stderr
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    server = subprocess.Popen([str(SETTLEGUARD), "--db", db, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=cwd, env={**base, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("settleguard serve did not start")
        yield Site(db, cwd, env, m.id, int(due["id"]), _new_card(seed), url)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _shots(tmp_path: Path) -> Path:
    return tmp_path  # docs/screenshots/ is test_browser_no_codes.py's


def _login(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_an_operator_finds_the_held_payout_and_reads_the_guidance(site: Site, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    kb = classify("allinpay", "3031", "账号户名不符")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{site.url}/")
        assert page.url.startswith(f"{site.url}/login")  # not logged in: sent to the login page
        _login(page, site.url, OPERATOR)
        assert page.url.rstrip("/") == site.url
        assert "运营概览" in page.inner_text("h1")
        page.wait_for_selector("[data-chart=status] canvas, [data-chart=status] svg", timeout=10_000)  # ECharts drew
        page.screenshot(path=str(_shots(tmp_path) / "dashboard.png"), full_page=True)
        _check_dashboard_charts(page)
        page.click("a[href='/payouts?status=held']")  # the dashboard's row of held payouts
        page.click(f"a[href='/payouts/{site.payout_id}']")
        body = page.inner_text("body")
        assert "账号户名不符" in body
        assert kb.meaning_zh in body
        for step in kb.guidance_zh:
            assert step in body
        assert body.index(kb.guidance_zh[0]) < body.index("English")  # Chinese first, English on demand
        page.screenshot(path=str(_shots(tmp_path) / "payout.png"), full_page=True)
        browser.close()


def _check_dashboard_charts(page: Any) -> None:
    """Issue 18: the payouts shown are of the day that has them (the server's clock is the real date), rate
    axes say %, bank and category names are one per row (they overlapped as rotated labels under bars) and
    axis labels are inside the chart (the ageing axis was clipped)."""
    assert page.input_value("input[name=day]") == VALUE_DAY.isoformat()
    assert "挂账" in page.inner_text("section.card >> nth=0")

    def option(chart: str) -> Any:
        return page.evaluate("""(c) => { const o = echarts.getInstanceByDom(document.querySelector(`[data-chart=${c}]`))
                                        .getOption();
            return {x: o.xAxis[0].type, y: o.yAxis[0].type, fmt: String(o.xAxis[0].axisLabel.formatter),
                    contain: o.grid[0].containLabel, tip: o.tooltip[0].valueFormatter(1.5)}; }""", chart)

    for chart in ("bank", "category"):
        got = option(chart)
        assert (got["x"], got["y"], got["fmt"], got["tip"], got["contain"]) == ("value", "category", "{value}%",
                                                                                "1.5%", True), (chart, got)
    held = option("held")
    assert (held["x"], held["y"], held["contain"]) == ("category", "value", True)


def test_the_api_docs_render_without_internet(site: Site, tmp_path: Path) -> None:
    # issue 18: /api/v1/docs loaded Swagger UI from a CDN and was blank offline
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        outside: list[str] = []

        def offline(route: Any) -> None:  # nothing but this server is reachable
            if route.request.url.startswith(site.url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.goto(f"{site.url}/api/v1/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
        assert "结算卫士" in page.inner_text(".swagger-ui .info .title")
        assert page.locator(".opblock").count() > 10  # the operations are listed
        assert outside == []
        browser.close()


def test_a_merchant_rebinds_the_card_and_sees_the_held_payout_paid(site: Site, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # a phone
        _login(page, site.url, MERCHANT_USER)
        assert page.url.endswith(f"/m/{site.merchant_id}")
        body = page.inner_text("body")
        assert "户名" in body  # why it failed, in Chinese
        assert "挂账" in body
        page.click(f"a[href='/m/{site.merchant_id}/card']")
        page.fill("input[name=pan]", site.new_pan)
        page.fill("input[name=name]", "张三")
        page.fill("input[name=id_number]", ID_NUMBER)
        page.fill("input[name=phone]", PHONE)
        page.click("form.stack button[type=submit]")
        page.wait_for_selector("[role=status]")
        assert "绑定成功" in page.inner_text("[role=status]")
        assert site.new_pan not in page.content()  # masked only

        sg(site.db, "worker", "--once", cwd=site.cwd, env=site.env)  # releases and pays to the new card
        page.goto(f"{site.url}/m/{site.merchant_id}")
        shown = json.loads(sg(site.db, "payouts", "show", str(site.payout_id), "--json", cwd=site.cwd,
                              env=site.env).stdout)
        assert shown["payout"]["status"] == "succeeded"
        assert [e["to_status"] for e in shown["events"]][-3:] == ["released", "submitted", "succeeded"]
        body = page.inner_text("body")
        assert "已付款" in body or "成功" in body
        assert site.new_pan[-4:] in body  # the new card, masked
        page.screenshot(path=str(_shots(tmp_path) / "merchant.png"), full_page=True)
        browser.close()


def test_screenshots_folder_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("dashboard.png", "merchant.png"):
        assert f"docs/screenshots/{name}" in readme
        assert (ROOT / "docs" / "screenshots" / name).is_file()
