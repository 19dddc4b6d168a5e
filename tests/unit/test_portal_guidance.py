"""What a merchant reads of a diagnosis (issue 18): the knowledge base names each step's and each note's reader
(guidance.toml ``audience``, rules' ``note_audience``); a diagnosis carries ``merchant_guidance`` — the merchant's
own steps and notes as written, the platform's steps in neutral words, never an operations instruction — and
the portal (web/console/portal_guidance.py) groups payouts by it, the merchant's groups first."""

from __future__ import annotations

from pathlib import Path

import pytest

from settleguard.diagnosis import classify, knowledge_base
from settleguard.diagnosis.kb import KnowledgeBaseError, load
from settleguard.diagnosis.model import NOTHING_TO_DO, Audience
from settleguard.web.console.portal_guidance import groups

KB_DIR = Path(knowledge_base().directory)


def _operations_texts() -> set[str]:
    kb = knowledge_base()
    steps = {t for s in kb.steps.values() if s.audience is Audience.operations for t in (s.zh, s.en)}
    notes = {t for r in kb.rules if r.note_zh and r.note_audience is Audience.operations for t in (r.note_zh, r.note_en)}
    return steps | notes


def test_every_step_names_its_reader_and_platform_steps_say_what_the_merchant_is_told() -> None:
    kb = knowledge_base()
    audiences = {sid: s.audience for sid, s in kb.steps.items()}
    assert audiences["rebind_card"] is Audience.merchant
    assert audiences["keep_evidence"] is Audience.operations
    assert audiences["wait_and_retry"] is Audience.platform
    for s in kb.steps.values():
        assert (s.audience is Audience.platform) == bool(s.merchant_zh and s.merchant_en), s.id
    noted = [r for r in kb.rules if r.note_zh]
    assert {r.note_audience for r in noted} == {Audience.merchant, Audience.operations}


def test_no_diagnosis_of_any_rule_tells_a_merchant_an_operations_instruction() -> None:
    ops = _operations_texts()
    kb = knowledge_base()
    seen_note = 0
    for r in kb.rules:
        d = classify(r.scheme if r.codes else None, r.codes[0] if r.codes else None,
                     r.examples[0] if r.examples else None)
        if d.rule != r.id:
            continue
        for lang in ("zh", "en"):
            shown = d.for_merchant(lang)
            assert shown, r.id
            assert not ops & set(shown), (r.id, ops & set(shown))
        if r.note_zh and r.note_audience is Audience.merchant:
            assert r.note_zh in d.merchant_zh, r.id  # kept, not filtered away
            assert r.note_en in d.merchant_en, r.id
            seen_note += 1
    assert seen_note >= 20


def test_a_merchant_note_is_kept_and_the_operations_steps_are_told_or_dropped() -> None:
    d = classify("allinpay", "3031", "账号户名不符")
    assert "请核对开户名是否与银行预留户名完全一致" in d.merchant_zh
    assert d.merchant_acts
    busy = classify("allinpay", "3028", "系统忙，请稍后再提交")
    assert not busy.merchant_acts
    assert "保留银行返回原文" not in "".join(busy.merchant_zh)
    assert all(t not in busy.merchant_zh for t in busy.guidance_zh if "运维" in t)
    only_ops = classify("allinpay", "3045", None)
    assert only_ops.merchant_zh == (NOTHING_TO_DO[0],)
    assert only_ops.merchant_en == (NOTHING_TO_DO[1],)
    assert only_ops.to_dict("en")["merchant_guidance"] == [NOTHING_TO_DO[1]]


@pytest.mark.parametrize(("change", "message"), [
    ('audience = "merchant"\n', "audience must be one of"),
    ('audience = "platform"\n', "keys must be exactly"),
])
def test_a_step_without_a_valid_reader_is_refused(tmp_path: Path, change: str, message: str) -> None:
    for f in KB_DIR.glob("*.toml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    g = tmp_path / "guidance.toml"
    text = g.read_text(encoding="utf-8")
    if change.endswith('"merchant"\n'):
        text = text.replace(change, 'audience = "everyone"\n', 1)
    else:  # a platform step loses what the merchant is told
        start = text.index(change)
        end = text.index("\n", text.index("merchant_en", start))
        text = text[:start] + change + text[end + 1:]
    g.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=message):
        load(tmp_path)


def test_a_note_without_its_reader_is_refused(tmp_path: Path) -> None:
    for f in KB_DIR.glob("*.toml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    f = tmp_path / "allinpay.toml"
    f.write_text(f.read_text(encoding="utf-8").replace('note_audience = "merchant"\n', "", 1), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="note_audience"):
        load(tmp_path)


def test_payouts_with_the_same_steps_are_one_group_the_merchants_first() -> None:
    mismatch = classify("allinpay", "3031", "账号户名不符").to_dict("zh")
    busy = classify("allinpay", "3028", "系统忙，请稍后再提交").to_dict("zh")
    trouble = [{"id": 1, "status": "retry_scheduled", "diagnosis": busy},
               {"id": 2, "status": "held", "diagnosis": mismatch},
               {"id": 3, "status": "held", "diagnosis": mismatch},
               {"id": 4, "status": "result_unknown", "diagnosis": None}]
    got = groups(trouble, "zh")
    assert [[p["id"] for p in g["payouts"]] for g in got] == [[2, 3], [1], [4]]
    assert [g["act"] for g in got] == [True, False, False]
    assert got[0]["reasons"] == [mismatch["meaning"]]
    assert "请核对开户名是否与银行预留户名完全一致" in got[0]["steps"]
    assert all("保留银行返回原文" not in s for g in got for s in g["steps"])
