"""Pure parts of the binding service: the layered BIN table (longest prefix across the operator's and the
packaged table, the operator's rows winning on an equal prefix) and masked reprs and errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from settleguard.cards.bins import BinInfo, BinTable, luhn_complete
from settleguard.cards.model import Problem
from settleguard.cards.service import BindRefused, BindRequest, BindResult, layered_bins

PAN = luhn_complete("621226" + "123456789012")


def row(prefix: str, bank: str, length: int = 19) -> BinInfo:
    return BinInfo(prefix, bank, bank, bank, "DC", length)


prefixes = st.text(alphabet="12", min_size=3, max_size=7)


def reference(pan: str, operator: list[BinInfo], packaged: list[BinInfo]) -> str | None:
    """Longest prefix over both tables; on an equal prefix the operator's row."""
    best: tuple[int, int, str] | None = None
    for source, rows in ((1, operator), (0, packaged)):
        for r in rows:
            if pan.startswith(r.bin) and (best is None or (len(r.bin), source) > best[:2]):
                best = (len(r.bin), source, r.bank_code)
    return None if best is None else best[2]


@given(st.sets(prefixes, max_size=6), st.sets(prefixes, max_size=6), st.text(alphabet="12", min_size=19,
                                                                               max_size=19))
def test_layered_lookup_is_longest_prefix_with_the_operator_winning_ties(
        op: set[str], pk: set[str], pan: str) -> None:
    operator = [row(p, f"OP{p}") for p in sorted(op)]
    packaged = [row(p, f"PK{p}") for p in sorted(pk)]
    got = layered_bins(operator, BinTable(packaged)).lookup(pan)
    assert (None if got is None else got.bank_code) == reference(pan, operator, packaged)


def test_without_operator_rows_the_packaged_table_is_used_as_is() -> None:
    packaged = BinTable([row("621226", "ICBC")])
    assert layered_bins([], packaged) is packaged


def test_requests_results_and_refusals_never_show_the_card_number() -> None:
    spaced = " ".join(PAN[i:i + 4] for i in range(0, len(PAN), 4))
    req = BindRequest("898100058120001", spaced, "张三", "11010519491231002X", "13812345678")
    text = repr(req) + str(req)
    assert PAN not in text
    assert spaced not in text
    assert "621226*********" in text
    assert "11010519491231002X" not in text
    assert "13812345678" not in text
    refusal = BindRefused("check_failed", "卡片检查未通过", "checks failed",
                          problems=[Problem("luhn_failed", "校验位错误", "check digit wrong", "warning")])
    assert PAN not in str(refusal) + repr(refusal.as_dict())
    result = BindResult(1, 1, "621226*********" + PAN[-4:], "ICBC", "中国工商银行", "DC", False, (), "00", "ok",
                        "normal")
    assert PAN not in repr(result) + repr(result.as_dict())
