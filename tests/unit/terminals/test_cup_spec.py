"""The project's CUP POS spec round-trips every message type: encode, decode, equal (issue 21 acceptance)."""

from __future__ import annotations

import iso8583
from hypothesis import given
from hypothesis import strategies as st

from settleguard.sim.terminal_logs import SCENARIOS, TPDU_HEADER, clean_log, encode, scenario_log
from settleguard.terminals.cup_spec import CUP_POS

ALL_MTIS = {"0800", "0810", "0200", "0210", "0400", "0410", "0500", "0510", "0320", "0330"}


def _wire_messages() -> list[bytes]:
    lines = [*clean_log()]
    for kind in SCENARIOS:
        lines += scenario_log(kind)
    return [bytes.fromhex(line.split()[3]) for line in lines]


def test_every_message_type_of_the_simulator_round_trips() -> None:
    seen = set()
    for raw in _wire_messages():
        decoded, _ = iso8583.decode(raw, CUP_POS)
        again, _ = iso8583.encode(dict(decoded), CUP_POS)
        assert bytes(again) == raw
        seen.add(decoded["t"])
    assert seen == ALL_MTIS | {"0100"}  # 0100: the unknown-message scenario, decodable all the same


def test_the_mti_is_bcd_and_the_bitmap_binary() -> None:
    raw = encode({"t": "0200", "11": "000001", "39": "00"})
    assert raw[:11].hex() == TPDU_HEADER
    assert raw[11:13] == b"\x02\x00"  # BCD MTI, not the ASCII "0200"
    assert raw[13:21] == bytes.fromhex("0020000002000000")  # fields 11 and 39, binary
    assert raw[21:24] == b"\x00\x00\x01"  # field 11 as BCD


def test_an_odd_pan_is_bcd_with_its_digit_count_and_an_f_pad() -> None:
    raw = encode({"t": "0200", "2": "6222020200112233446"})
    assert raw[21:32].hex().upper() == "19" + "6222020200112233446" + "F"


@given(mti=st.sampled_from(sorted(ALL_MTIS)),
       pan=st.text("0123456789", min_size=13, max_size=19),
       amount=st.integers(0, 999_999_999_999),
       trace=st.integers(0, 999_999),
       rrn=st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=12, max_size=12),
       code=st.sampled_from(["00", "A0", "99", "97", "96", "98", "90", "94", "Q7"]),
       f48=st.text("0123456789", min_size=0, max_size=322),
       f60=st.text("0123456789", min_size=1, max_size=17),
       keys=st.binary(min_size=0, max_size=64))
def test_any_message_round_trips(mti: str, pan: str, amount: int, trace: int, rrn: str, code: str, f48: str,
                                 f60: str, keys: bytes) -> None:
    doc = {"h": TPDU_HEADER, "t": mti, "2": pan, "4": f"{amount:012d}", "11": f"{trace:06d}", "22": "021",
           "37": rrn, "39": code, "41": "10000001", "42": "898110000000001", "60": f60, "64": "00" * 8}
    if f48:
        doc["48"] = f48
    if keys:
        doc["62"] = keys.hex().upper()
    raw, _ = iso8583.encode(dict(doc), CUP_POS)
    decoded, _ = iso8583.decode(bytes(raw), CUP_POS)
    decoded.pop("p")
    assert decoded == doc
