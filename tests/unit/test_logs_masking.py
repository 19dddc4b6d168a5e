"""settleguard.logs: every record -- message, %-arguments, fields (stdlib extra and structlog kwargs), nested
values, exception text -- leaves with card numbers and resident ID numbers masked, in JSON and in text, and
carries the run / request id bound for the unit of work."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settleguard import logs

CARD = "6217000012345678901"
CARD_GROUPED = "6222 0202 0011 2233"
CARD_FULLWIDTH = "６２１７００００１２３４５６７８"
ID_X = "11010519900307123X"
ID_DIGITS = "440301198811230016"
SECRETS = (CARD, "6222020200112233", "62170000123456789", ID_X, ID_DIGITS, "1101051990030712")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(json_mode: bool) -> None:
    logs.configure(json=json_mode)
    log = logging.getLogger("settleguard.test")
    with logs.bound(run_id="run-1"):
        log.warning(f"卡号 {CARD} 身份证 {ID_X} 分组 {CARD_GROUPED} 全角 {CARD_FULLWIDTH}")
        log.warning("args %s %s", CARD, ID_DIGITS)
        log.warning("fields", extra={"pan": CARD, "holder_id": ID_X, "amount": 6222020200112233,
                                     "nested": {"ids": [ID_DIGITS, {"deep": f"x{CARD}y"}]}})
        try:
            raise ValueError(f"bank refused card {CARD} of {ID_X}")
        except ValueError:
            log.exception(f"failed for {ID_DIGITS}")
    if json_mode:
        import structlog

        with logs.bound(request_id="req-9"):
            structlog.get_logger("settleguard.sl").error(f"structlog {CARD}", pan=CARD, ids=(ID_X,),
                                                         exc_info=RuntimeError(f"echo {CARD} {ID_X}"))


def _assert_masked(out: str) -> None:
    for secret in (*SECRETS, "6222020200112233", "621700001234567890"):
        assert secret not in out
        assert secret.lower() not in out
    for grouped in (CARD_GROUPED, CARD_FULLWIDTH):
        assert grouped not in out
    assert "621700*********8901" in out
    assert "110105********123X" in out
    assert "440301********0016" in out
    assert "622202******2233" in out  # the grouped one and the integer field


def test_json_records_are_masked_everywhere_and_carry_the_run_id(capsys: pytest.CaptureFixture[str]) -> None:
    _emit(True)
    err = capsys.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert len(records) == 5, err
    _assert_masked(err)
    assert all(r["run_id"] == "run-1" for r in records[:4])
    assert records[2]["pan"] == "621700*********8901"
    assert records[2]["amount"] == "622202******2233"
    assert records[2]["nested"]["ids"][1]["deep"] == "x621700*********8901y"
    assert "ValueError: bank refused card 621700*********8901 of 110105********123X" in records[3]["exception"]
    assert records[4]["request_id"] == "req-9"
    assert "run_id" not in records[4]
    assert records[4]["level"] == "error"
    assert "ts" in records[4]
    assert records[4]["logger"] == "settleguard.sl"


def test_text_records_are_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    _emit(False)
    err = capsys.readouterr().err
    _assert_masked(err)
    assert "[run_id=run-1]" in err
    assert "ValueError: bank refused card 621700*********8901" in err


def test_short_numbers_amounts_dates_and_codes_are_left_alone() -> None:
    text = "金额 12345.67 元 日期 20261120 错误码 E1234 电话 13800138000 参考号 SG20261120M42"
    assert logs.mask_text(text) == text
    assert logs.mask_value({"n": 12345678, "ok": True}) == {"n": 12345678, "ok": True}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(card=st.text(alphabet="0123456789", min_size=13, max_size=19).filter(lambda s: s[0] != "0"),
       rid=st.text(alphabet="0123456789", min_size=17, max_size=17), last=st.sampled_from("0123456789Xx"),
       left=st.sampled_from(["", " ", "卡", "：", "a "]), right=st.sampled_from(["", " ", "号", "。", " b"]))
def test_no_card_or_id_number_survives_in_any_field(capsys: pytest.CaptureFixture[str], card: str, rid: str,
                                                    last: str, left: str, right: str) -> None:
    logs.configure(json=True)
    capsys.readouterr()
    ident = rid + last
    logging.getLogger("settleguard.prop").error(f"{left}{card}{right}", extra={"v": f"{left}{ident}{right}"})
    out = capsys.readouterr().err
    assert card not in out
    assert ident not in out
    record = json.loads(out)
    assert record["event"].startswith(left)
    assert record["event"].endswith(right)
