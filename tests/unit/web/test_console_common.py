"""Pure helpers of the HTML console (web/console): money in yuan, masking digits in bank text, local
redirect targets, JSON safe inside a script element, labels in both languages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from settleguard.payouts.model import PayoutStatus
from settleguard.web.console.common import inline_json, local_time, redact, safe_next, yuan
from settleguard.web.console.labels import CATEGORY, PAYOUT_STATUS, label


@pytest.mark.parametrize(("fen", "shown"), [(0, "0.00"), (5, "0.05"), (123_456_789, "1,234,567.89"), (-150, "-1.50"),
                                            (None, "-")])
def test_yuan(fen: int | None, shown: str) -> None:
    assert yuan(fen) == shown


def test_redact_masks_card_and_account_numbers_only() -> None:
    text = '{"acct":"6212261234567890123","code":"3031","merchant":"898100058120001","amount":12345}'
    out = redact(text)
    assert "6212261234567890123" not in out
    assert "621226*********0123" in out
    assert '"3031"' in out  # short codes and amounts stay
    assert "12345" in out
    assert "898100*****0001" in out  # a 15-digit number is masked too: masking errs on the safe side


@pytest.mark.parametrize(("asked", "go"), [("/payouts?status=held", "/payouts?status=held"), ("//evil.example", "/"),
                                           ("https://evil.example", "/"), ("/\\evil", "/"), ("", "/"), (None, "/")])
def test_safe_next_stays_on_the_site(asked: str | None, go: str) -> None:
    assert safe_next(asked, "/") == go


def test_inline_json_cannot_close_the_script_element() -> None:
    value = {"name": "</script><script>alert(1)</script>", "zh": "银行"}
    text = str(inline_json(value))
    assert "<" not in text
    assert json.loads(text) == value


def test_local_time_is_china_time() -> None:
    assert local_time(datetime(2026, 11, 19, 16, 30, tzinfo=UTC)) == "2026-11-20 00:30"


def test_every_payout_status_has_words_in_both_languages() -> None:
    assert set(PAYOUT_STATUS) == {str(s) for s in PayoutStatus}
    assert label(PAYOUT_STATUS, "held", "zh") == "挂账"
    assert label(PAYOUT_STATUS, "held", "en") == "held"
    assert label(CATEGORY, "card_info_error", "zh") == "银行卡信息错误"
    assert label(CATEGORY, "new_category", "zh") == "new_category"
