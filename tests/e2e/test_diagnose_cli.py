"""``settleguard diagnose`` as a user runs it: a subprocess per command (no database needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160", "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "settleguard", "diagnose", *args], input=stdin, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"diagnose {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_a_single_diagnosis_is_a_panel_with_chinese_first() -> None:
    out = run("--scheme", "allinpay", "--code", "3031", "--message", "账号户名不符").stdout
    assert "结算失败诊断 Diagnosis" in out
    assert "银行卡信息错误 card info error" in out
    assert "挂账 hold" in out
    assert "allinpay.3031" in out
    assert "核对结算卡卡号" in out                     # guidance in Chinese by default
    assert out.index("类别 category") < out.index("处理步骤 steps")
    en = run("--scheme", "allinpay", "--code", "3031", "--lang", "en").stdout
    assert "Check the settlement card number" in en
    assert "核对结算卡卡号" not in en


def test_json_prints_one_object() -> None:
    obj = json.loads(run("--message", "帳戶已凍結", "--json").stdout)
    assert obj["category"] == "card_status_abnormal"
    assert obj["decision"] == "hold"
    assert obj["retryable"] is False
    assert obj["rule"] == "text.card_status"
    assert 0 < obj["confidence"] <= 1
    assert obj["needs_review"] is False
    assert isinstance(obj["guidance"], list)
    assert obj["guidance"]
    unknown = json.loads(run("--message", "交易失败", "--json").stdout)
    assert unknown["category"] == "unknown"
    assert unknown["needs_review"] is True
    assert unknown["confidence"] < 0.5


def test_explain_shows_which_rule_matched_and_why() -> None:
    out = run("--scheme", "iso20022", "--code", "NARR", "--message", "Beneficiary name mismatch", "--explain").stdout
    assert "判断依据 why" in out
    assert "stage=narrative" in out
    assert "text.card_info" in out
    assert "beneficiary name mismatch" in out           # the normalised text
    obj = json.loads(run("--code", "96", "--message", "交易状态未明，请查询", "--explain", "--json").stdout)
    assert obj["category"] == "result_unknown"
    assert obj["explanation"]["code"] == "96"
    assert any("query first" in n for n in obj["explanation"]["notes"])


def test_batch_from_a_file_keeps_order_copies_ids_and_reports_a_malformed_line(tmp_path: Path) -> None:
    lines = [
        {"id": "P1", "scheme": "allinpay", "code": "3031", "message": None},
        "this is not json",
        {"id": "P3", "message": "交易状态未明，请查询"},
        {"id": "P4", "scheme": "nacha", "code": "R01", "batch": 7},
        {"id": "P5", "scheme": "visa", "code": "05"},
        {"id": "P6"},
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
                 encoding="utf-8")
    out = [json.loads(line) for line in run("--batch", str(f), "--lang", "en").stdout.splitlines()]
    assert len(out) == 6
    assert out[0]["id"] == "P1"
    assert out[0]["category"] == "card_info_error"
    assert out[0]["rule"] == "allinpay.3031"
    assert out[1] == {"line": 2, "error": out[1]["error"]}
    assert "JSONDecodeError" in out[1]["error"]
    assert out[2]["id"] == "P3"
    assert out[2]["decision"] == "inquire"
    assert out[3]["id"] == "P4"
    assert out[3]["batch"] == 7
    assert out[3]["category"] == "insufficient_funds"
    assert out[4]["line"] == 5
    assert "visa" in out[4]["error"]
    assert out[5]["id"] == "P6"
    assert out[5]["category"] == "unknown"
    assert out[5]["needs_review"] is True
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in "".join(o["guidance"])) for o in out if "guidance" in o)


def test_batch_from_stdin() -> None:
    stdin = '{"id":1,"code":"AC04"}\n\n{"id":2,"message":"重复交易"}\n[1,2]\n'
    out = [json.loads(line) for line in run("--batch", "-", stdin=stdin).stdout.splitlines()]
    assert [o.get("id") for o in out] == [1, 2, None]
    assert out[0]["category"] == "card_status_abnormal"
    assert out[1]["category"] == "duplicate"
    assert out[2]["line"] == 4
    assert "expected a JSON object" in out[2]["error"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in out[0]["guidance"][0])     # zh by default


@pytest.mark.parametrize(("args", "text"), [
    (("--scheme", "visa", "--code", "05"), "未知的代码体系"),
    (("--lang", "fr", "--code", "AC04"), "zh"),
    ((), "--code"),
])
def test_bad_usage_exits_non_zero_with_an_explanation(args: tuple[str, ...], text: str) -> None:
    proc = run(*args, check=False)
    assert proc.returncode == 2
    assert text in proc.stderr


def test_the_review_flag_agrees_with_the_decision_and_a_limit_text_is_not_ignored() -> None:
    # issue 18: 3045 printed 人工复核 review beside needs review: 否 no, and ignored the text that says limit
    alone = run("--scheme", "allinpay", "--code", "3045").stdout
    assert "人工复核 review" in alone
    assert "needs review: 是 yes" in alone
    out = run("--scheme", "allinpay", "--code", "3045", "--message", "超过当日累计限额").stdout
    assert "超出限额 limit exceeded" in out
    assert "needs review: 否 no" in out
    assert "代码 3045 由文字说明判断" in out
    obj = json.loads(run("--scheme", "allinpay", "--code", "3045", "--json").stdout)
    assert (obj["decision"], obj["needs_review"]) == ("review", True)
    specific = run("--scheme", "allinpay", "--code", "3031", "--message", "余额不足").stdout
    assert "银行卡信息错误 card info error" in specific
    assert "文字说明 text says" in specific
    assert "余额不足 insufficient funds" in specific


def test_a_word_inside_another_word_or_a_positive_statement_is_not_a_failure() -> None:
    for message in ("商户名称变更", "冻结已解除", "未超过限额", "sign-in succeeded"):
        obj = json.loads(run("--message", message, "--json").stdout)
        assert obj["category"] == "unknown", (message, obj["rule"])
        assert obj["needs_review"] is True
        assert obj["confidence"] < 0.5


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_panel_wraps_guidance_at_80_and_120_columns_and_never_cuts_it(width: int, lang: str) -> None:
    # issue 18: the README's AC04 example cut every step with "…" at 80-120 columns
    from long_output import assert_fits, assert_whole
    from settleguard.diagnosis import classify

    env = {**os.environ, "COLUMNS": str(width), "PYTHONIOENCODING": "utf-8"}
    out = subprocess.run([sys.executable, "-m", "settleguard", "diagnose", "--scheme", "iso20022", "--code", "AC04",
                          "--message", "账户已销户", "--lang", lang], env=env, capture_output=True, text=True,
                         encoding="utf-8", timeout=300, check=True).stdout
    d = classify("iso20022", "AC04", "账户已销户")
    assert_fits(out, width, max_lines=45)
    assert_whole(out, d.meaning(lang))  # also the input's message in zh
    assert_whole(out, *d.guidance(lang), *d.evidence(lang), once=True)
