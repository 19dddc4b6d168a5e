"""The knowledge-base loader validates strictly: a broken file gives a clear error naming the file and
the rule, and nothing half-loaded is ever used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from settleguard.diagnosis import Classifier, knowledge_base
from settleguard.diagnosis.kb import EVIDENCE_IDS, STEP_IDS, KnowledgeBaseError, default_directory, load
from settleguard.diagnosis.model import Category

GOOD_RULE = '''
[[rules]]
id = "allinpay.9001"
codes = ["9001"]
category = "card_info_error"
retryable = false
decision = "hold"
owner = "merchant"
meaning_zh = "测试"
meaning_en = "test"
steps = ["rebind_card"]
evidence = ["bank_response"]
'''
HEADER = 'scheme = "allinpay"\nsource = "test"\n'


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    shutil.copy(default_directory() / "guidance.toml", tmp_path / "guidance.toml")
    return tmp_path


def write(kb_dir: Path, body: str, name: str = "allinpay.toml") -> Path:
    path = kb_dir / name
    path.write_text(body, encoding="utf-8")
    return path


def test_the_packaged_knowledge_base_loads_with_all_steps_and_evidence() -> None:
    kb = knowledge_base()
    assert set(STEP_IDS) <= set(kb.steps)
    assert set(EVIDENCE_IDS) <= set(kb.evidence)
    assert all(t.zh and t.en for t in [*kb.steps.values(), *kb.evidence.values()])
    assert len(kb.rules) > 400
    assert {r.category for r in kb.rules} == set(Category)


def test_a_directory_with_only_some_scheme_files_loads_those(kb_dir: Path) -> None:
    write(kb_dir, HEADER + GOOD_RULE)
    kb = load(kb_dir)
    assert kb.schemes == ("allinpay",)
    d = Classifier(kb).classify("allinpay", "9001", None)
    assert d.rule == "allinpay.9001"
    assert d.category is Category.card_info_error


BROKEN = [
    ("unknown top-level key", HEADER + "extra = 1\n" + GOOD_RULE, "unknown top-level keys ['extra']"),
    ("scheme/file mismatch", 'scheme = "nacha"\nsource = "x"\n' + GOOD_RULE, "does not match the file name"),
    ("no source", 'scheme = "allinpay"\n' + GOOD_RULE, "source must be"),
    ("not TOML", HEADER + "[[rules]\n", "not valid TOML"),
    ("unknown rule key", HEADER + GOOD_RULE.replace('owner = "merchant"', 'owner = "merchant"\ncolour = "red"'),
     "rule allinpay.9001: unknown keys ['colour']"),
    ("missing key", HEADER + GOOD_RULE.replace('meaning_en = "test"\n', ""), "rule allinpay.9001: missing key 'meaning_en'"),
    ("bad category", HEADER + GOOD_RULE.replace('"card_info_error"', '"CARD_INFO"'), "rule allinpay.9001: unknown category 'CARD_INFO'"),
    ("bad decision", HEADER + GOOD_RULE.replace('"hold"', '"wait"'), "rule allinpay.9001: unknown decision 'wait'"),
    ("bad owner", HEADER + GOOD_RULE.replace('"merchant"', '"customer"'), "rule allinpay.9001: unknown owner 'customer'"),
    ("bad step", HEADER + GOOD_RULE.replace('["rebind_card"]', '["rebind_card", "pray"]'), "unknown step 'pray'"),
    ("bad evidence", HEADER + GOOD_RULE.replace('["bank_response"]', '["selfie"]'), "unknown evidence 'selfie'"),
    ("duplicate id", HEADER + GOOD_RULE + GOOD_RULE.replace('["9001"]', '["9002"]'), "rule allinpay.9001: duplicate id"),
    ("duplicate code", HEADER + GOOD_RULE + GOOD_RULE.replace('allinpay.9001', 'allinpay.9002'),
     "rule allinpay.9002: code 9001 is already used by rule allinpay.9001"),
    ("bad regex", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'codes = ["9001"]\npatterns = ["户名(不符"]'),
     "rule allinpay.9001: pattern '户名(不符' is not a valid regular expression"),
    ("empty-matching regex", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'patterns = ["x*"]'), "matches the empty string"),
    ("upper-case pattern", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'patterns = ["Account closed"]'), "upper-case"),
    ("traditional pattern", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'patterns = ["帳戶凍結"]'), "never appears in normalised"),
    ("id of another scheme", HEADER + GOOD_RULE.replace('id = "allinpay.9001"', 'id = "nacha.9001"'), "id must look like"),
    ("wrong type", HEADER + GOOD_RULE.replace("retryable = false", 'retryable = "no"'), "retryable must be a bool"),
    ("no codes nor patterns", HEADER + GOOD_RULE.replace('codes = ["9001"]', "codes = []"), "needs codes or patterns"),
    ("unsafe: unknown result retried", HEADER + GOOD_RULE.replace('"card_info_error"', '"result_unknown"')
     .replace('"hold"', '"retry"'), "must have decision inquire"),
    ("unsafe: duplicate retryable", HEADER + GOOD_RULE.replace('"card_info_error"', '"duplicate"').replace('"hold"', '"inquire"')
     .replace("retryable = false", "retryable = true"), "must not be retryable"),
    ("unsafe: risk retried", HEADER + GOOD_RULE.replace('"card_info_error"', '"risk_or_compliance_block"')
     .replace('"hold"', '"retry"'), "never retried automatically"),
    ("unknown guesses", HEADER + GOOD_RULE.replace('"card_info_error"', '"unknown"'), "must have decision review"),
    ("no steps", HEADER + GOOD_RULE.replace('["rebind_card"]', "[]"), "at least one step"),
    # issue 18: a rule whose fields contradict each other, and the context patterns
    ("retryable contradicts the decision", HEADER + GOOD_RULE.replace("retryable = false", "retryable = true"),
     "retryable must be False for decision hold"),
    ("bad unless regex", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'patterns = ["户名"]\nunless = ["商户名("]'),
     "pattern '商户名(' is not a valid regular expression"),
    ("unless without patterns", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'codes = ["9001"]\nunless = ["x"]'),
     "unless only makes sense for a rule with patterns"),
    ("near_misses not strings", HEADER + GOOD_RULE.replace('codes = ["9001"]', 'patterns = ["x"]\nnear_misses = [1]'),
     "near_misses must be a list of non-empty strings"),
]


@pytest.mark.parametrize(("what", "body", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_scheme_file_gives_a_clear_error_naming_file_and_rule(kb_dir: Path, what: str, body: str,
                                                                       message: str) -> None:
    path = write(kb_dir, body)
    with pytest.raises(KnowledgeBaseError) as exc:
        load(kb_dir)
    assert str(path) in str(exc.value)
    assert message in str(exc.value)


def test_text_rules_may_not_carry_codes(kb_dir: Path) -> None:
    body = GOOD_RULE.replace("allinpay.9001", "text.x").replace('codes = ["9001"]', 'codes = ["1"]\npatterns = ["x"]')
    write(kb_dir, 'scheme = "text"\nsource = "t"\n' + body, "text.toml")
    with pytest.raises(KnowledgeBaseError, match="text.toml: rule text.x: text rules have no codes"):
        load(kb_dir)


def test_an_unexpected_toml_file_is_an_error(kb_dir: Path) -> None:
    write(kb_dir, HEADER + GOOD_RULE, "visa.toml")
    with pytest.raises(KnowledgeBaseError, match="visa.toml: unexpected file"):
        load(kb_dir)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.replace("[steps.manual_review]", "[steps.manual_reviewx]"), "[steps] lacks ['manual_review']"),
    (lambda s: s.replace("[evidence.inquiry_result]\n", "[evidence.inquiry_result]\nfr = \"x\"\n"), "exactly zh and en"),
    (lambda s: s + "\n[colours]\nred = 1\n", "unknown top-level keys ['colours']"),
])
def test_a_broken_guidance_file_gives_a_clear_error(kb_dir: Path, edit: object, message: str) -> None:
    path = kb_dir / "guidance.toml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    with pytest.raises(KnowledgeBaseError) as exc:
        load(kb_dir)
    assert "guidance.toml" in str(exc.value)
    assert message in str(exc.value)


def test_a_missing_guidance_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="guidance.toml: missing"):
        load(tmp_path)
