"""``settleguard card check`` as a user runs it: no database, Chinese first, never the full card number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from stdnum.cn import ric

from settleguard.cards.model import luhn_complete

GOOD = luhn_complete("622848012345678901")             # ABC 19-digit debit card
ONE_DIGIT_CHANGED = GOOD[:10] + str((int(GOOD[10]) + 3) % 10) + GOOD[11:]
CREDIT = luhn_complete("625919001234567")               # PSBC 16-digit credit card
UNKNOWN_TYPO = "9" + GOOD[1:]                           # a typo in the BIN: unknown issuer, Luhn fails
ID = "110101199003070" + "01"
ID += ric.calc_check_digit(ID + "0")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The database URL points at a directory that does not exist: the check must not touch it.
    env = {**os.environ, "SETTLEGUARD_DB": f"sqlite:///{cwd}/missing/dir/never.db",
           "SETTLEGUARD_KEY_FILE": str(cwd / "missing" / "e2e.key"), "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "settleguard", "card", "check", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def assert_no_full_pan(proc: subprocess.CompletedProcess[str], *pans: str) -> None:
    for pan in pans:
        assert pan not in proc.stdout
        assert pan not in proc.stderr
        assert pan[6:-4] not in proc.stdout + proc.stderr


def test_a_good_debit_card_passes_with_bank_type_and_masked_number(tmp_path: Path) -> None:
    proc = run(GOOD, "--name", "张三", "--id", ID, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "中国农业银行" in out
    assert "借记卡" in out
    assert "debit card" in out
    assert GOOD[:6] + "*********" + GOOD[-4:] in out
    assert out.index("可以作为结算卡") < out.index("valid settlement card")
    assert "✓ 通过 passed" in out
    assert_no_full_pan(proc, GOOD)
    assert not (tmp_path / "missing").exists()


def test_one_digit_changed_says_which_check_failed_and_what_to_do_chinese_first(tmp_path: Path) -> None:
    proc = run(ONE_DIGIT_CHANGED.translate(str.maketrans("0123456789", "０１２３４５６７８９")), cwd=tmp_path)
    out = proc.stdout
    assert "Luhn 校验位" in out
    assert "? 请核对 check it" in out
    assert "卡号未通过 Luhn 校验" in out
    assert "请对照银行卡逐位核对" in out
    zh = out.index("卡号未通过 Luhn 校验")
    en = out.index("fails the Luhn check")
    assert zh < en
    # a warning (binding is not refused: the bank decides), but the headline says to check the number
    assert proc.returncode == 1
    assert "卡号可能输错了，请核对" in out
    assert "可以作为结算卡" not in out
    assert_no_full_pan(proc, ONE_DIGIT_CHANGED)


REPORTED = "6222020200112233447"  # issue 18: ICBC's BIN, a wrong check digit


def test_the_reported_number_is_headlined_probably_mistyped_not_valid(tmp_path: Path) -> None:
    human = run(REPORTED, cwd=tmp_path)
    headline = human.stdout.splitlines()[0]
    assert "卡号可能输错了，请核对" in headline
    assert headline.index("可能输错了") < headline.index("probably mistyped, check it")
    assert "可以作为结算卡" not in human.stdout
    assert "valid settlement card" not in human.stdout
    assert "未通过 failed" in human.stdout  # the Luhn line below says the same as the headline
    assert human.returncode == 1
    doc = json.loads(run(REPORTED, "--json", cwd=tmp_path).stdout)
    assert (doc["valid"], doc["bindable"], doc["verdict"], doc["verdict_cause"]) == (False, True, "check",
                                                                                     "luhn_failed")
    assert doc["verdict_zh"] == "卡号可能输错了，请核对"
    assert [p["code"] for p in doc["problems"]] == ["luhn_failed"]


def test_a_good_card_with_only_a_warning_says_so_in_the_headline(tmp_path: Path) -> None:
    proc = run(GOOD, "--kind", "personal", cwd=tmp_path)  # no name nor ID: a warning, not an error
    headline = proc.stdout.splitlines()[0]
    assert "可以作为结算卡，但请先看 1 条警告" in headline
    assert "read the 1 warning first" in headline
    assert proc.returncode == 0


def test_one_digit_changed_in_the_bin_is_an_error_with_exit_code_1(tmp_path: Path) -> None:
    proc = run(UNKNOWN_TYPO, "--json", cwd=tmp_path)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["valid"] is False
    assert doc["luhn_ok"] is False
    assert doc["bank_code"] is None
    assert doc["card_type"] is None
    assert doc["masked"] == UNKNOWN_TYPO[:6] + "*********" + UNKNOWN_TYPO[-4:]
    failed = {p["code"]: p for p in doc["problems"]}
    assert failed["luhn_failed"]["severity"] == "error"
    assert "卡号几乎肯定输错了" in failed["luhn_failed"]["zh"]
    assert failed["luhn_failed"]["en"]
    assert_no_full_pan(proc, UNKNOWN_TYPO)

    human = run(UNKNOWN_TYPO, cwd=tmp_path)
    assert human.returncode == 1
    assert "✗ 未通过 failed" in human.stdout
    assert human.stdout.index("不能作为结算卡") < human.stdout.index("not a valid settlement card")
    assert_no_full_pan(human, UNKNOWN_TYPO)


def test_a_credit_card_is_refused_as_a_settlement_card(tmp_path: Path) -> None:
    proc = run(CREDIT, "--kind", "personal", "--json", cwd=tmp_path)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert (doc["bank_code"], doc["bank_name"], doc["card_type"]) == ("PSBC", "中国邮政储蓄银行", "CC")
    assert "not_debit_card" in {p["code"] for p in doc["problems"]}
    assert_no_full_pan(proc, CREDIT)


@pytest.mark.parametrize("args", [["--kind", "corporate", "--name", "某某有限公司"], ["--name", "张三1"]])
def test_other_refusals_exit_1_and_keep_the_number_masked(tmp_path: Path, args: list[str]) -> None:
    proc = run(GOOD, *args, "--json", cwd=tmp_path)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["valid"] is False
    assert_no_full_pan(proc, GOOD)


def test_a_malformed_number_is_named_by_position_not_echoed(tmp_path: Path) -> None:
    bad = GOOD[:8] + "O" + GOOD[9:]
    proc = run(bad, cwd=tmp_path)
    assert proc.returncode == 1
    assert "第 9 个字符“O”不是数字" in proc.stdout
    assert GOOD[:8] not in proc.stdout + proc.stderr
