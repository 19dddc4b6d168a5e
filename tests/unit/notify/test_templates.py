"""Rendering every notice kind from the packaged templates, Chinese first then English, with the
diagnosis meaning and guidance, the amount in yuan from integer fen, the payout and the masked card."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import settleguard.notify
from settleguard.diagnosis import Category, Diagnosis, classify, knowledge_base
from settleguard.notify.model import CATEGORY_KINDS, DEFAULT_STEPS, EVENT_KINDS, KINDS, Notice
from settleguard.notify.render import render, render_all, texts

CARD = "622202*********0123"
TEMPLATES = Path(settleguard.notify.__file__).parent / "templates"


def diagnosis_for(category: str) -> Diagnosis:
    """A real diagnosis of ``category`` from the knowledge base (a rule's own code, classified)."""
    if category == "unknown":
        return classify(None, None, "完全无法识别的回复 zzqx")
    for rule in knowledge_base().rules:
        if rule.category.value == category and rule.codes and rule.scheme != "text":
            d = classify(rule.scheme, rule.codes[0], None)
            if d.category.value == category:
                return d
    raise AssertionError(f"no rule for {category}")


def notice(kind: str, amount_fen: int = 123456, d: Diagnosis | None = None, **kw: object) -> Notice:
    steps = DEFAULT_STEPS.get(kind, ((), ()))
    base: dict[str, object] = dict(kind=kind, merchant_no="M0000001", merchant_name="张三小吃店", amount_fen=amount_fen,
                                   payout_id=77, payout_key="SG77", card_masked=CARD,
                                   steps_zh=steps[0], steps_en=steps[1])
    if d is not None:
        base.update(category=d.category.value, rule=d.rule, meaning_zh=d.meaning_zh, meaning_en=d.meaning_en,
                    steps_zh=d.guidance_zh, steps_en=d.guidance_en)
    base.update(kw)
    return Notice(**base)  # type: ignore[arg-type]


def test_there_is_one_template_per_taxonomy_category_and_event() -> None:
    assert set(CATEGORY_KINDS) == {c.value for c in Category}
    shipped = {p.stem for p in TEMPLATES.glob("*.j2") if not p.name.startswith("_")}
    assert shipped == set(KINDS)


@pytest.mark.parametrize("category", CATEGORY_KINDS)
def test_each_category_renders_what_failed_why_what_to_do_and_the_money_zh_first(category: str) -> None:
    d = diagnosis_for(category)
    n = notice(category, 123456, d, bank_code="X1", bank_message="银行原文")
    text = render(n, "text")
    zh, en = texts(n)
    assert text.index(zh.splitlines()[0]) < text.index("-- English --") < text.index(en.splitlines()[0])
    assert d.meaning_zh in zh
    assert d.meaning_en in en
    for s in d.guidance_zh:
        assert s in zh
    for s in d.guidance_en:
        assert s in en
    assert "1234.56 元" in zh
    assert "CNY 1234.56" in en
    assert CARD in zh
    assert CARD in en
    assert "77" in zh
    assert "SG77" in en
    assert "银行原文" in zh
    # the kind's own sentence differs between categories
    assert zh.splitlines()[0] != render(notice("unknown" if category != "unknown" else "paid"), "text").splitlines()[0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_in_every_format(kind: str) -> None:
    n = notice(kind, 500, message_zh="您的结算卡已冻结。", message_en="Your card is frozen.")
    r = render_all(n)
    assert r.subject.startswith("【结算卫士】")
    assert " / " in r.subject
    assert "\n" not in r.subject
    assert r.html.lstrip().startswith("<!DOCTYPE html>")
    assert r.html.index('lang="zh-CN"') < r.html.index('<section lang="en">')
    assert "5.00" in r.text
    assert "5.00" in r.html
    assert "5.00" in r.sms
    assert r.sms.startswith("【结算卫士】")
    assert len(r.sms) <= 300
    if kind in ("card_unusable", "card_bound", "card_rebound"):
        assert "您的结算卡已冻结。" in r.text
        assert "Your card is frozen." in r.text


@pytest.mark.parametrize("kind", ["no_card", "card_info_error", "risk_or_compliance_block", "returned"])
def test_holds_say_the_amount_is_held(kind: str) -> None:
    zh, en = texts(notice(kind, 99))
    assert "挂账金额" in zh
    assert "0.99 元" in zh
    assert "Amount held" in en


def test_a_release_and_a_payment_do_not_call_the_money_held() -> None:
    for kind in ("released", "paid"):
        zh, en = texts(notice(kind, 99))
        assert "挂账金额" not in zh
        assert "金额：0.99 元" in zh
        assert "Amount held" not in en


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=10**13))
def test_amounts_are_rendered_exactly_from_fen(fen: int) -> None:
    yuan = f"{fen // 100}.{fen % 100:02d}"
    zh, en = texts(notice("card_info_error", fen))
    assert f"{yuan} 元" in zh
    assert f"CNY {yuan}" in en


def test_html_is_escaped_but_text_is_not() -> None:
    n = notice("card_info_error", 1, merchant_name="<script>alert(1)</script>", bank_message="a & b")
    html = render(n, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "a &amp; b" in html
    assert "<script>alert(1)</script>" in render(n, "text")


def test_a_notice_survives_the_outbox_payload_round_trip() -> None:
    d = diagnosis_for("card_status_abnormal")
    n = notice("card_status_abnormal", 4200, d)
    again = Notice.from_payload(n.kind, {"zh": "x", "en": "y", **n.facts()})
    assert render_all(again) == render_all(n)


def test_an_unknown_kind_renders_as_unknown_and_a_bad_format_is_refused() -> None:
    assert render(notice("no_such_kind"), "subject") == render(notice("unknown"), "subject")
    with pytest.raises(ValueError, match="pdf"):
        render(notice("paid"), "pdf")


def test_event_kinds_have_default_steps_or_a_message() -> None:
    for kind in EVENT_KINDS:
        zh, _ = texts(notice(kind, 1, message_zh="卡消息"))
        assert "您需要做的" in zh or "卡消息" in zh or kind == "returned"


_names = st.text(alphabet=st.sampled_from("张三李四小吃店便利超市·()（）&<>{}%A1 "), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), _names, st.one_of(st.none(), st.integers(0, 10**12)),
                          st.one_of(st.none(), st.integers(1, 10**9)), st.sampled_from(["", "SG1", "SG2R1"]),
                          st.sampled_from(["", CARD, "621700******9999"]), st.sampled_from(["", "AC04", "NARR"])),
                min_size=1, max_size=25))
def test_rendering_many_at_once_equals_rendering_each(rows: list[tuple[str, str, int | None, int | None, str, str,
                                                                       str]]) -> None:
    from settleguard.notify.render import texts_many

    notices = [notice(kind, amount, merchant_name=name, merchant_no=f"M{i}" if i % 3 else "", payout_id=pid,
                      payout_key=key, card_masked=card, bank_code=code, bank_message=code and "户名不符",
                      created_at="" if i % 4 == 0 else f"2026-11-2{i % 10}T09:00:00+08:00")
               for i, (kind, name, amount, pid, key, card, code) in enumerate(rows)]
    assert texts_many(notices) == [texts(n) for n in notices]


def test_rendering_many_falls_back_when_a_template_shapes_a_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that transforms a per-notice fact (here: upper-cases the merchant name) cannot be
    filled in from one rendering; the group is rendered one by one and still comes out right."""
    from jinja2 import DictLoader, Environment, StrictUndefined

    import settleguard.notify.render as r

    env = Environment(loader=DictLoader({"paid.j2": "{{ merchant_name|upper }} {{ payout_id }}\n-- English --\n"
                                                   "{{ merchant_name|upper }}", "_text.j2": ""}),
                      undefined=StrictUndefined)
    monkeypatch.setattr(r, "_env", lambda autoescape: env)
    notices = [notice("paid", 1, merchant_name=n, payout_id=i) for i, n in enumerate(["abc", "xyz", "Qq"])]
    assert r.texts_many(notices) == [("ABC 0", "ABC"), ("XYZ 1", "XYZ"), ("QQ 2", "QQ")]


def test_the_grouping_of_alike_notices_knows_every_field_of_a_notice() -> None:
    """render._group_key and render._SLOTS together must cover every Notice field: a new field that
    neither knows would let two different notices share one rendering."""
    from dataclasses import fields

    from settleguard.notify import render as r

    grouped = {"kind", "category", "rule", "meaning_zh", "meaning_en", "steps_zh", "steps_en", "bank_code",
               "bank_message", "message_zh", "message_en", "extra"}
    slots = set(r._SLOTS) - {"amount_yuan"} | {"amount_fen"}
    assert {f.name for f in fields(Notice)} == grouped | slots
    base = notice("card_info_error", 5)
    for name in grouped - {"kind", "extra"}:
        value = getattr(base, name)
        other = ("其它",) if isinstance(value, tuple) else "其它"
        assert r._group_key(base) != r._group_key(Notice(**{**base.__dict__, name: other}))
    assert r._group_key(base) != r._group_key(Notice(**{**base.__dict__, "extra": {"x": 1}}))
