"""Holder-name normalisation and comparison (cards/names.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.cards.names import MIDDLE_DOT, compare_names, name_problem, normalize_name


@pytest.mark.parametrize(("raw", "normal"), [
    ("张三", "张三"),
    (" 张  三 ", "张三"),
    ("張偉", "张伟"),
    ("歐陽鋒", "欧阳锋"),
    ("买买提·艾力", "买买提·艾力"),
    ("买买提•艾力", "买买提·艾力"),
    ("买买提・艾力", "买买提·艾力"),
    ("买买提･艾力", "买买提·艾力"),
    ("买买提‧艾力", "买买提·艾力"),
    ("买买提ﾟ艾力", "买买提·艾力"),
    ("买买提 · 艾力", "买买提·艾力"),
    ("买买提.艾力", "买买提·艾力"),
    ("买买提．艾力", "买买提·艾力"),
    ("·买买提·艾力·", "买买提·艾力"),
    ("Zhang San", "ZHANG SAN"),
    ("  zhang   san ", "ZHANG SAN"),
    ("ＺＨＡＮＧ　ＳＡＮ", "ZHANG SAN"),
    ("J. Smith", "J. SMITH"),
    ("某某科技（北京）有限公司", "某某科技(北京)有限公司"),
    ("某某科技 (北京) 有限公司", "某某科技(北京)有限公司"),
    ("深圳市某某貿易有限公司", "深圳市某某贸易有限公司"),
])
def test_normalize_name(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


NAME_CHARS = st.sampled_from(list("张三李四王五買買提艾力歐陽鋒ABCxyz ·•・･‧ﾟ.．（）()　有限公司"))


@given(st.text(alphabet=NAME_CHARS, max_size=20))
def test_name_normalisation_is_idempotent(raw: str) -> None:
    once = normalize_name(raw)
    assert normalize_name(once) == once
    assert not once.startswith((" ", MIDDLE_DOT))
    assert not once.endswith((" ", MIDDLE_DOT))
    assert "  " not in once
    assert once == once.upper()


@given(st.text(alphabet=NAME_CHARS, min_size=1, max_size=12), st.text(alphabet=NAME_CHARS, max_size=12))
def test_comparison_is_symmetric_and_reflexive(a: str, b: str) -> None:
    ab, ba = compare_names(a, b), compare_names(b, a)
    assert (ab.exact, ab.ok, ab.kind) == (ba.exact, ba.ok, ba.kind)
    assert ab.score == pytest.approx(ba.score)
    assert 0.0 <= ab.score <= 100.0
    if normalize_name(a):
        assert compare_names(a, a).ok
        assert compare_names(a, a).exact


@pytest.mark.parametrize(("a", "b", "kind", "ok"), [
    ("张三", "张三", "exact", True),
    ("張三", "张三", "equivalent", True),
    ("买买提•艾力", "买买提·艾力", "equivalent", True),
    ("zhang san", "ZHANG SAN", "equivalent", True),
    ("SAN ZHANG", "ZHANG SAN", "reordered", True),
    ("ZHANGSAN", "ZHANG SAN", "reordered", True),
    ("买买提艾力", "买买提·艾力", "dot_only", False),
    ("张三", "张山", "similar", False),
    ("欧阳锋", "欧阳峰", "similar", False),
    ("张三", "张三丰", "contained", False),
    ("某某科技", "某某科技有限公司", "contained", False),
    ("某某科技有限公司", "某某科技有限责任公司", "similar", False),
    ("张三", "李四", "different", False),
    ("上海某某餐饮管理有限公司", "北京另一家贸易公司", "different", False),
    ("", "张三", "empty", False),
    ("  ", "  ", "empty", False),
])
def test_compare_names(a: str, b: str, kind: str, ok: bool) -> None:
    m = compare_names(a, b)
    assert (m.kind, m.ok) == (kind, ok)
    assert m.exact is (kind in ("exact", "equivalent"))
    assert m.reason_zh
    assert m.reason_en
    if ok:
        assert "一致" in m.reason_zh
    else:
        assert "一致" not in m.reason_zh or "须" in m.reason_zh


def test_the_reason_counts_the_differing_characters() -> None:
    m = compare_names("张小三", "张晓山")
    assert m.differing_chars == 2
    assert "2 个字不同" in m.reason_zh or "完全不同" in m.reason_zh


@pytest.mark.parametrize(("name", "bad"), [
    ("", True), ("  ", True), ("张", True), ("张三1", True), ("张三@", True),
    ("张三", False), ("买买提·艾力", False), ("O'NEIL JOHN", False), ("某某科技(北京)有限公司", False),
])
def test_name_problem(name: str, bad: bool) -> None:
    assert (name_problem(name) is not None) is bad
