"""The reader's cheaper paths (hex check by isalnum + bytes.fromhex, only the fields the analysis needs kept,
short text checked for printability only) refuse and mask exactly what the careful path did."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.sim.terminal_logs import TEST_PAN, LogWriter, encode
from settleguard.terminals.cup_spec import KEPT_FIELDS, SENSITIVE_DROPPED
from settleguard.terminals.log_reader import parse_line, parse_lines
from settleguard.terminals.model import BadLine, Message

AT = "2026-12-07T08:30:00+08:00"
SALE = encode({"t": "0200", "2": TEST_PAN, "4": "000000001000", "11": "000001", "41": "10000001"}).hex().upper()


@pytest.mark.parametrize("hexdata", [
    SALE[:20] + " " + SALE[20:],  # whitespace inside: bytes.fromhex would skip it
    SALE[:20] + "\t" + SALE[20:22] + SALE[23:],
    SALE[:-2] + "٠١",  # Arabic-Indic digits: alphanumeric, not hex
    SALE[:-2] + "ＡＢ",  # full-width letters
    SALE[:-2] + "G0",
    SALE[:-2] + "0x",
])
def test_anything_but_plain_hex_digits_is_refused(hexdata: str) -> None:
    got = parse_line(1, f"{AT} TX 10000001 {hexdata}")
    assert isinstance(got, BadLine)
    assert got.en in ("message has non-hex characters", "odd number of hex digits (message cut)")


def test_lower_case_hex_is_read() -> None:
    got = parse_line(1, f"{AT} TX 10000001 {SALE.lower()}")
    assert isinstance(got, Message)
    assert got.amount_fen == 1_000


def test_only_the_kept_fields_remain_and_never_keys_mac_tracks_pin_or_ic_data() -> None:
    w = LogWriter()
    w.sign_in()  # the 0810 carries working keys in field 62
    w.sale(1_000)  # tracks (35), PIN block (52), security (53), MAC (64)
    for m in parse_lines(w.lines).messages:
        assert set(m.fields) <= set(KEPT_FIELDS)
        assert not set(m.fields) & (SENSITIVE_DROPPED | {"62", "64"})
    assert "11" * 24 not in repr(parse_lines(w.lines).messages)


def test_a_card_number_hidden_in_a_text_field_is_masked_and_control_characters_shown() -> None:
    raw = encode({"t": "0210", "11": "000001", "37": "\x1b[2J\x07abcdefg", "42": TEST_PAN[:15],
                  "44": "card " + TEST_PAN[:16]}).hex()
    got = parse_line(1, f"{AT} RX 10000001 {raw}")
    assert isinstance(got, Message)
    assert got.get("37").startswith("\\x1b[2J\\x07")
    assert TEST_PAN[:15] not in got.get("42")
    assert TEST_PAN[:16] not in got.get("44")


@given(text=st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=25),
       rrn=st.text(alphabet=st.characters(max_codepoint=127), min_size=12, max_size=12))
def test_each_text_field_is_what_the_careful_path_bounded_would_give(text: str, rrn: str) -> None:
    from settleguard.masking import bounded

    raw = encode({"t": "0210", "11": "000001", "37": rrn, "44": text})
    got = parse_line(1, f"{AT} RX 10000001 {raw.hex()}")
    assert isinstance(got, Message)
    assert got.get("44") == bounded(text, 40)
    assert got.get("37") == bounded(rrn, 40)


@cache
def _day() -> tuple[str, ...]:
    from settleguard.sim.terminal_logs import fault_log

    return (*fault_log("unbalanced_batch"), *fault_log("data_mismatch", "10000002"))


@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 600), st.sampled_from(
    ["flip", "cut", "insert", "bitmap"]), st.sampled_from("0123456789ABCDEFZ ")), min_size=1, max_size=6))
def test_garbled_messages_are_bad_lines_or_messages_and_the_analysis_never_raises(
        edits: list[tuple[int, int, str, str]]) -> None:
    from settleguard.terminals.analysis import analyze

    lines = list(_day())
    for which, pos, how, char in edits:
        i = which % len(lines)
        when, direction, terminal, hexdata = lines[i].split(" ", 3)
        p = pos % len(hexdata)
        if how == "flip":
            hexdata = hexdata[:p] + char + hexdata[p + 1:]
        elif how == "cut":
            hexdata = hexdata[:p]
        elif how == "insert":
            hexdata = hexdata[:p] + char * 2 + hexdata[p:]
        else:  # a random bit in the primary bitmap (bytes 13..20 after TPDU, header and MTI)
            b = 26 + p % 16
            hexdata = hexdata[:b] + char + hexdata[b + 1:]
        lines[i] = f"{when} {direction} {terminal} {hexdata}"
    read = parse_lines(lines)
    assert len(read.messages) + read.bad_total == len(lines)
    for f in analyze(read.messages):
        assert f.evidence
        assert TEST_PAN not in repr(f.as_dict())
