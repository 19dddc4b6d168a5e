"""The diagnosis vocabulary: categories of shared/design/failure-taxonomy.md, decisions, owners, the
knowledge-base rule and the diagnosis a classification returns. Pure: standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """The taxonomy's categories; the identifiers are a public contract, used verbatim."""

    card_info_error = "card_info_error"
    card_status_abnormal = "card_status_abnormal"
    system_or_network_fault = "system_or_network_fault"
    limit_exceeded = "limit_exceeded"
    verification_failed = "verification_failed"
    insufficient_funds = "insufficient_funds"
    risk_or_compliance_block = "risk_or_compliance_block"
    transaction_data_error = "transaction_data_error"
    duplicate = "duplicate"
    result_unknown = "result_unknown"
    unknown = "unknown"


class Decision(StrEnum):
    retry = "retry"
    hold = "hold"
    inquire = "inquire"
    review = "review"
    split = "split"  # type: ignore[assignment]  # the member shadows str.split; the value is the contract
    resign_in = "resign_in"


class Owner(StrEnum):
    merchant = "merchant"
    bank = "bank"
    platform = "platform"
    terminal = "terminal"


class Audience(StrEnum):
    """Who reads a step or a rule's note (guidance.toml, issue 18)."""

    merchant = "merchant"      # the merchant reads it as written (portal, notices)
    platform = "platform"      # the platform does it by itself; the merchant is told so in its own words
    operations = "operations"  # the acquirer's staff only; never shown to a merchant


# what a merchant reads when nothing in a diagnosis's guidance is for it (zh, en)
NOTHING_TO_DO = ("我们正在处理这笔出款，暂不需要您操作，有结果会通知您",
                 "We are handling this payout; nothing to do for now, you will be told the result")


class Stage(StrEnum):
    """Which stage of the classifier decided."""

    code = "code"            # the code (given, or embedded in the text) matched a rule
    narrative = "narrative"  # a "see the text" code; the text decided
    text = "text"            # free-text matching
    none = "none"            # nothing matched: unknown


CATEGORY_ZH: dict[Category, str] = {
    Category.card_info_error: "银行卡信息错误",
    Category.card_status_abnormal: "银行卡状态异常",
    Category.system_or_network_fault: "系统或网络故障",
    Category.limit_exceeded: "超出限额",
    Category.verification_failed: "签到或验证失败",
    Category.insufficient_funds: "余额不足",
    Category.risk_or_compliance_block: "风控或合规拦截",
    Category.transaction_data_error: "交易信息错误",
    Category.duplicate: "重复交易",
    Category.result_unknown: "结果未明",
    Category.unknown: "原因不明",
}

DECISION_ZH: dict[Decision, str] = {
    Decision.retry: "自动重试",
    Decision.hold: "挂账",
    Decision.inquire: "先查询",
    Decision.review: "人工复核",
    Decision.split: "拆分付款",
    Decision.resign_in: "重新签到",
}

OWNER_ZH: dict[Owner, str] = {
    Owner.merchant: "商户",
    Owner.bank: "银行/通道",
    Owner.platform: "平台",
    Owner.terminal: "终端",
}

# The taxonomy's default decision per category.
DEFAULT_DECISION: dict[Category, Decision] = {
    Category.card_info_error: Decision.hold,
    Category.card_status_abnormal: Decision.hold,
    Category.system_or_network_fault: Decision.retry,
    Category.limit_exceeded: Decision.split,
    Category.verification_failed: Decision.resign_in,
    Category.insufficient_funds: Decision.retry,
    Category.risk_or_compliance_block: Decision.hold,
    Category.transaction_data_error: Decision.review,
    Category.duplicate: Decision.inquire,
    Category.result_unknown: Decision.inquire,
    Category.unknown: Decision.review,
}

# Decisions that send money again (now or after a fix that needs no human review of the payment).
RESENDING_DECISIONS: frozenset[Decision] = frozenset({Decision.retry, Decision.split, Decision.resign_in})
# Categories whose only safe decision is an inquiry: the money may already have moved.
QUERY_FIRST_CATEGORIES: frozenset[Category] = frozenset({Category.result_unknown, Category.duplicate})


def rule_problems(category: Category, decision: Decision, retryable: bool) -> list[str]:
    """The safety constraints every rule obeys; empty when the combination is allowed."""
    problems = []
    if category in QUERY_FIRST_CATEGORIES and decision is not Decision.inquire:
        problems.append(f"category {category} must have decision inquire (query before anything else)")
    if category in QUERY_FIRST_CATEGORIES and retryable:
        problems.append(f"category {category} must not be retryable (the money may already have moved)")
    if decision is Decision.inquire and category not in QUERY_FIRST_CATEGORIES:
        problems.append("decision inquire is reserved for result_unknown and duplicate")
    if category is Category.unknown and decision is not Decision.review:
        problems.append("category unknown must have decision review (never guess)")
    if category is Category.unknown and retryable:
        problems.append("category unknown must not be retryable")
    if category is Category.risk_or_compliance_block and (decision in RESENDING_DECISIONS or retryable):
        problems.append("risk_or_compliance_block is never retried automatically")
    if retryable is not (decision in RESENDING_DECISIONS):
        problems.append(f"retryable must be {decision in RESENDING_DECISIONS} for decision {decision} "
                        "(retryable means the decision sends the money again: retry, split, resign_in)")
    return problems


def needs_review(decision: Decision) -> bool:
    """Whether a person must decide: exactly when the decision is ``review`` (every ``unknown`` is)."""
    return decision is Decision.review


@dataclass(frozen=True, slots=True)
class Text:
    """One entry of the guidance library: a step or a piece of evidence, in Chinese and English. A step names
    its ``audience``; a platform step also says, in ``merchant_zh`` / ``merchant_en``, what a merchant is told."""

    id: str
    zh: str
    en: str
    audience: Audience = Audience.operations
    merchant_zh: str = ""
    merchant_en: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the knowledge base (src/settleguard/diagnosis/kb/<scheme>.toml)."""

    id: str
    scheme: str
    codes: tuple[str, ...]
    patterns: tuple[str, ...]
    narrative: bool
    category: Category
    retryable: bool
    decision: Decision
    owner: Owner
    meaning_zh: str
    meaning_en: str
    steps: tuple[str, ...]
    evidence: tuple[str, ...]
    note_zh: str = ""
    note_en: str = ""
    note_audience: Audience = Audience.operations  # who reads the note (required in the file when there is one)
    examples: tuple[str, ...] = ()
    file: str = ""
    unless: tuple[str, ...] = ()        # context: a pattern match overlapped by one of these does not count
    near_misses: tuple[str, ...] = ()   # messages that must NOT classify to this rule (tested)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a diagnosis came out as it did."""

    stage: Stage
    normalized: str                      # the normalised message the patterns saw ("" when none)
    scheme: str | None = None            # scheme of the matched rule
    code: str | None = None              # the normalised code that was looked up
    code_source: str | None = None       # "given" | "embedded"
    pattern: str | None = None           # the pattern that matched (text / narrative stages)
    notes: tuple[str, ...] = ()          # further remarks, English (e.g. ambiguous codes, overrides)
    text_category: Category | None = None  # what the text alone reads as, when it disagrees with the answer


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One answer. Its fields cannot contradict each other: ``needs_review`` is derived from the
    decision, ``retryable`` must match it, and an ``unknown`` has confidence below 0.5 (anything
    else at least 0.5); a violation raises ValueError when the diagnosis is built."""

    category: Category
    retryable: bool
    decision: Decision
    owner: Owner
    confidence: float
    rule: str | None
    meaning_zh: str
    meaning_en: str
    guidance_zh: tuple[str, ...]
    guidance_en: tuple[str, ...]
    evidence_zh: tuple[str, ...]
    evidence_en: tuple[str, ...]
    explanation: Explanation = field(compare=False)
    # what a merchant reads (portal, notices; issue 18): its own steps and notes as written, what the platform
    # does by itself in the merchant's words, never an operations instruction. Empty when the guidance is the
    # merchant's already (a diagnosis made for a merchant, e.g. no usable card).
    merchant_zh: tuple[str, ...] = ()
    merchant_en: tuple[str, ...] = ()
    merchant_acts: bool = True  # whether the merchant itself must do something

    def __post_init__(self) -> None:
        problems = rule_problems(self.category, self.decision, self.retryable)
        if (self.category is Category.unknown) is not (self.confidence < 0.5):
            problems.append(f"confidence {self.confidence} contradicts category {self.category} "
                            "(unknown is below 0.5, anything else at least 0.5)")
        if problems:
            raise ValueError(f"contradictory diagnosis ({self.rule}): {'; '.join(problems)}")

    @property
    def needs_review(self) -> bool:
        """True exactly when the decision is ``review``: one source of truth, never a second flag."""
        return needs_review(self.decision)

    def meaning(self, lang: str = "zh") -> str:
        return self.meaning_en if lang == "en" else self.meaning_zh

    def guidance(self, lang: str = "zh") -> tuple[str, ...]:
        return self.guidance_en if lang == "en" else self.guidance_zh

    def evidence(self, lang: str = "zh") -> tuple[str, ...]:
        return self.evidence_en if lang == "en" else self.evidence_zh

    def for_merchant(self, lang: str = "zh") -> tuple[str, ...]:
        """The guidance a merchant reads, in ``lang`` (see ``merchant_zh``)."""
        told = self.merchant_en if lang == "en" else self.merchant_zh
        return told or self.guidance(lang)

    def to_dict(self, lang: str = "zh", explain: bool = False) -> dict[str, Any]:
        """The JSON form used by the CLI (and later the API): guidance and evidence in ``lang``."""
        out: dict[str, Any] = {
            "category": self.category.value,
            "retryable": self.retryable,
            "decision": self.decision.value,
            "owner": self.owner.value,
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "rule": self.rule,
            "meaning": self.meaning(lang),
            "guidance": list(self.guidance(lang)),
            "evidence": list(self.evidence(lang)),
            "merchant_guidance": list(self.for_merchant(lang)),
            "merchant_acts": self.merchant_acts,
        }
        if explain:
            e = self.explanation
            out["explanation"] = {"stage": e.stage.value, "scheme": e.scheme, "code": e.code,
                                  "code_source": e.code_source, "pattern": e.pattern,
                                  "normalized": e.normalized, "notes": list(e.notes),
                                  "text_category": e.text_category.value if e.text_category else None}
        return out
