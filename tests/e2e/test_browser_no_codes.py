"""Browser acceptance of issue 18: after a demo-like setup (``settleguard demo`` with a few merchants, a case
opened by hand, an operator and a merchant user), every console and portal page shows labels, never an
internal code (a payout status, a failure category, a role, a case status or priority as stored), in Chinese
and in English; the portal groups its guidance and shows no operations instruction; and the screenshots of
the README are taken at 1366×768 and 390×844.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/run with fonts-noto-cjk for the Chinese).
Screenshots go to docs/screenshots/ when SETTLEGUARD_SCREENSHOTS=1 (``<page>.png`` at 1366 wide,
``<page>-phone.png`` at 390 wide), to the test's temporary folder otherwise.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_browser_console import CHROMIUM, ROOT, _browser_or_skip
from test_people_acceptance import SETTLEGUARD, free_port, sg

from settleguard import labels
from settleguard.access.model import Role
from settleguard.cases.model import CaseStatus, Priority
from settleguard.diagnosis import Category, knowledge_base
from settleguard.payouts.model import PayoutStatus

OPERATOR, MERCHANT_USER, PASSWORD = "ops-wang", "shop-demo", "正确的马-电池-订书钉-2026"
PRIORITIES = tuple(str(p) for p in Priority)
# what may never be read as text: the stored codes of statuses, categories, roles, case statuses, priorities
# and case sources
CODES = sorted({*(str(s) for s in PayoutStatus), *(c.value for c in Category), *(str(r) for r in Role),
                *(str(s) for s in CaseStatus), *PRIORITIES, *labels.CASE_SOURCE})
# operations instructions of the step library that a merchant must never read (portal_guidance.py)
OPS_STEPS = ("keep_evidence", "inquire_first", "reconcile", "manual_review", "fix_instruction_data",
             "compliance_review", "fund_provision_account", "split_payout")
SIZES = {"": {"width": 1366, "height": 768}, "-phone": {"width": 390, "height": 844}}


class DemoSite:
    def __init__(self, url: str, merchant_id: int, payout_id: int, case_id: int) -> None:
        self.url, self.merchant_id, self.payout_id, self.case_id = url, merchant_id, payout_id, case_id


def _serve(db: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    server = subprocess.Popen([str(SETTLEGUARD), "--db", db, "serve", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=cwd, env={**base, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise AssertionError("settleguard serve did not start")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    cwd = tmp_path_factory.mktemp("demo")
    db = f"sqlite:///{cwd / 'demo.db'}"
    env = {"SETTLEGUARD_KEY_FILE": str(cwd / "demo.key")}
    sg(db, "demo", "--merchants", "80", "--days", "3", "--data-dir", str(cwd / "days"), cwd=cwd, env=env)
    held = json.loads(sg(db, "payouts", "list", "--status", "held", "--json", cwd=cwd, env=env).stdout)
    assert held, "the demo holds no payout"
    p = held[0]
    opened = sg(db, "cases", "open", "--merchant", p["merchant_no"], "--payout", str(p["id"]), "--category",
                str(p["category"] or "card_info_error"), "--title", "户名不符，需商户换绑结算卡", "--priority", "p2",
                "--actor", OPERATOR, cwd=cwd, env=env).stdout
    case_id = int(re.findall(r"\d+", opened)[-1])
    base = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEGUARD_")}
    for user, role, extra in ((OPERATOR, "operator", []), (MERCHANT_USER, "merchant", ["--merchant-no", p["merchant_no"]])):
        done = subprocess.run([str(SETTLEGUARD), "--db", db, "users", "add", user, "--role", role, *extra,
                               "--password-stdin"], input=PASSWORD + "\n", cwd=cwd, capture_output=True, text=True,
                              timeout=120, env={**base, **env})
        assert done.returncode == 0, done.stdout + done.stderr
    server, url = _serve(db, cwd, env)
    try:
        yield DemoSite(url, int(p["merchant_id"]), int(p["id"]), case_id)
    finally:
        server.terminate()
        server.wait(timeout=20)


def _shots(tmp_path: Path) -> Path:
    if os.environ.get("SETTLEGUARD_SCREENSHOTS") == "1":
        out = ROOT / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path


def _login(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


def visible_text(page: Any, lang: str) -> str:
    """What a reader of ``lang`` sees: the page's rendered text; on a Chinese page without the English
    glosses (``.en``), which are words, not codes, in English."""
    if lang == "en":
        return str(page.inner_text("body"))
    return str(page.evaluate("""() => { const s = document.createElement('style');
        s.textContent = '.en { display: none !important; }'; document.head.appendChild(s);
        const text = document.body.innerText; s.remove(); return text; }"""))


def codes_in(text: str, lang: str) -> list[str]:
    """The internal codes in ``text``. A code with an underscore and a priority ("p1"; "P1 紧急" is its label)
    anywhere as a whole word; on a Chinese page also a one-word code ("held") standing alone as a table cell,
    a line, a "·" item or in parentheses, where a label belongs (in a bilingual phrase such as "挂账 held" it is an English
    gloss, and on an English page the English label of ``held`` is "held")."""
    found = []
    for code in CODES:
        word = re.escape(code)
        if "_" in code or code in PRIORITIES:
            pattern = rf"(?<![\w-]){word}(?![\w-])"
        elif lang == "zh":
            pattern = rf"(?:^|[\t·(（])[ ]*{word}[ ]*(?=$|[\t·)）])"
        else:
            continue
        if re.search(pattern, text, re.ASCII | re.MULTILINE):
            found.append(code)
    return found


def _check(page: Any, path: str, where: str) -> None:
    for lang in ("zh", "en"):
        page.goto(f"{where}{path}{'&' if '?' in path else '?'}lang={lang}")
        page.wait_for_load_state("networkidle")
        found = codes_in(visible_text(page, lang), lang)
        assert found == [], f"{path} ({lang}) shows internal codes {found}"
        wide = page.evaluate("document.documentElement.scrollWidth")  # (a phone's innerWidth grows with the page)
        assert wide <= page.viewport_size["width"] + 1, f"{path} ({lang}) is {wide} px wide, wider than the window"
    page.goto(f"{where}{path}{'&' if '?' in path else '?'}lang=zh")  # back to Chinese (the language cookie)
    page.wait_for_load_state("networkidle")


def test_the_code_check_finds_codes_as_words_only() -> None:
    assert codes_in("状态\theld\t¥1.00\n挂账 held (银行卡信息错误)", "zh") == ["held"]
    assert codes_in("挂账 held (银行卡信息错误 card info error) · 户名", "zh") == []
    assert codes_in("2026-12-07 13:23 · ops-wang (manual)", "zh") == ["manual"]
    assert codes_in("12.00 · held\ncard_info_error", "en") == ["card_info_error"]
    assert codes_in("P1 紧急 · p1 · held-out · unheld · waiting_bank.", "zh") == ["p1", "waiting_bank"]


def test_no_page_shows_an_internal_code_and_the_screenshots(demo: DemoSite, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    shots = _shots(tmp_path)
    console = {"dashboard": "/", "payouts": "/payouts", "payout": f"/payouts/{demo.payout_id}",
               "case": f"/cases/{demo.case_id}"}
    others = ["/payouts?status=held", "/cases", f"/merchants/{demo.merchant_id}", "/recon", "/recon/breaks"]
    portal = {"merchant": f"/m/{demo.merchant_id}", "merchant-history": f"/m/{demo.merchant_id}#history"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for suffix, size in SIZES.items():
            phone = suffix == "-phone"
            for user, pages, extra in ((OPERATOR, console, others), (MERCHANT_USER, portal, [f"/m/{demo.merchant_id}/card"])):
                page = browser.new_context(viewport=size, is_mobile=phone, has_touch=phone, locale="zh-CN",
                                           timezone_id="Asia/Shanghai").new_page()
                _login(page, demo.url, user)
                for path in extra:
                    _check(page, path, demo.url)
                for name, path in pages.items():
                    _check(page, path, demo.url)
                    if name in ("merchant-history", "payouts"):  # what the window shows (the queue is long)
                        if name == "merchant-history":
                            page.evaluate("document.getElementById('history').scrollIntoView()")
                        page.screenshot(path=str(shots / f"{name}{suffix}.png"))
                    else:
                        if name == "dashboard":
                            page.wait_for_selector("[data-chart=status] canvas", timeout=10_000)
                        page.screenshot(path=str(shots / f"{name}{suffix}.png"), full_page=True)
                page.context.close()
        browser.close()
    for name in (*console, *portal):
        for suffix in SIZES:
            assert (shots / f"{name}{suffix}.png").stat().st_size > 5_000


def test_the_portal_groups_the_guidance_and_shows_no_operations_instruction(demo: DemoSite) -> None:
    sync_playwright = _browser_or_skip()
    steps = knowledge_base().steps
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport=SIZES["-phone"], is_mobile=True, has_touch=True)
        _login(page, demo.url, MERCHANT_USER)
        for lang in ("zh", "en"):
            page.goto(f"{demo.url}/m/{demo.merchant_id}?lang={lang}")
            text = page.inner_text("body")
            for step in OPS_STEPS:
                said = steps[step].en if lang == "en" else steps[step].zh
                assert said not in text, (lang, step)
            shown = page.locator("ol.steps li").all_inner_texts()
            assert len(shown) == len(set(shown)), shown  # each step once, not once per payout
        assert page.locator("header .who").inner_text().split(" · ")[0] not in (MERCHANT_USER, "")
        assert MERCHANT_USER not in page.inner_text("header")  # the shop's name, not the login name
        assert page.locator("table.history thead th").count() == 4
        browser.close()


def test_the_readme_links_the_screenshots() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("dashboard", "payouts", "payout", "case", "merchant", "merchant-history"):
        for suffix in SIZES:
            assert f"docs/screenshots/{name}{suffix}.png" in readme, name + suffix
            assert (ROOT / "docs" / "screenshots" / f"{name}{suffix}.png").is_file()
