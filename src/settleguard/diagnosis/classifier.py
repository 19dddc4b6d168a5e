"""The classifier: (scheme, code, message) → Diagnosis. Pure; the knowledge base is loaded before.

Stages, first decisive one wins:
1. code — the given code, looked up in the given scheme; with no scheme in every scheme, used only when
   all schemes that know it agree on the category. A code embedded in the message (``[E1031]…``,
   ``RESP=3017|MSG=…``) is looked up the same way when the given code decided nothing.
2. narrative — a code that means "see the text" (``narrative = true``), or a rule whose category is
   ``unknown``, is decided by the text when the text is recognised. So is a code whose rule leaves the
   decision to a person (decision ``review``) when the text names another category.
3. text — the normalised message against the text rules: first the query-first rules of text.toml
   (result_unknown, duplicate), then the given scheme's own pattern rules, then the rest of text.toml.
Nothing recognised → ``unknown``, ``needs_review``, confidence < 0.5.

Safety net: when the code says "resend" (retry, split, re-sign-in) but the message says the result is
unknown or the instruction is a duplicate, the query-first reading wins. Any other disagreement between
a decisive code and the text is kept in the explanation's notes.

A pattern match counts only in context: not when a rule's ``unless`` pattern overlaps it (word
boundaries, positive statements: 商户名称 is not 户名, 冻结已解除 is not 冻结), and not when a negation
cue comes just before it in the same clause (并非 / 不是 / 而非 / 并无 …, English not / never).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from settleguard.diagnosis.kb import CODE_SCHEMES, TEXT_SCHEME, KnowledgeBase
from settleguard.diagnosis.model import (
    NOTHING_TO_DO,
    QUERY_FIRST_CATEGORIES,
    RESENDING_DECISIONS,
    Audience,
    Category,
    Decision,
    Diagnosis,
    Explanation,
    Owner,
    Rule,
    Stage,
)
from settleguard.diagnosis.normalize import extract_code, normalize_code, normalize_message, normalize_scheme

# Confidence by how the answer was reached (documented in docs/diagnosis.md).
CONF_CODE_SCHEME = 0.95       # a specific code of the given scheme
CONF_CODE_AGREED = 0.85       # a code looked up without a scheme, every scheme that knows it agrees
CONF_EMBEDDED_SCHEME = 0.9    # a code found inside the message, in the given scheme
CONF_EMBEDDED_AGREED = 0.8    # a code found inside the message, no scheme, all agree
CONF_NARRATIVE = 0.85         # a "see the text" code whose text was recognised
CONF_REVIEW_CODE_TEXT = 0.8   # a code that leaves the decision to a person, and a text naming another category
CONF_TEXT = 0.75              # free text recognised
CONF_OVERRIDE = 0.9           # a resending code overridden by query-first text
CONF_UNKNOWN_SIGNAL = 0.3     # unknown, but there was a code or text we could not use
CONF_UNKNOWN_EMPTY = 0.1      # unknown, nothing given

UNKNOWN_STEPS = ("manual_review", "contact_bank_support", "keep_evidence")
UNKNOWN_EVIDENCE = ("bank_response", "payout_attempts", "contact_record")

# A negation cue just before a match, in the same clause (normalised text: clauses are separated by one
# space), negates it: 并非余额不足, 不是重复交易, "not a duplicate", "limit not exceeded". Only cues that
# negate a statement are universal; 未 / 没有 / 无 are not (未签到 and 没有权限 are failures), rules
# list those forms in ``unless``; a rule ("must not exceed", 不得超过) is not a negation.
_NEGATED = re.compile(r"(?:(?:并非|不是|并不是|而非|并无|非因)[^ ]{0,6}"
                      r"|(?<!must )(?<!may )(?<!shall )(?<!should )(?<!can )\b(?:not|never|no longer)"
                      r"(?: (?:a|an|the|been|be|yet|due to|because of|caused by))? )$")
_NEG_WINDOW = 16


class UnknownScheme(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: Rule
    stage: Stage
    confidence: float
    code: str | None = None
    code_source: str | None = None
    pattern: str | None = None
    notes: tuple[str, ...] = ()
    text_category: Category | None = None   # the text's reading, when the code decided against it


@dataclass(frozen=True, slots=True)
class _CodeResult:
    rule: Rule | None
    notes: tuple[str, ...] = ()


class Classifier:
    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.schemes = frozenset(kb.schemes) | frozenset(CODE_SCHEMES) | {TEXT_SCHEME}
        guard = [r for r in kb.text_rules if r.category in QUERY_FIRST_CATEGORIES]
        rest = [r for r in kb.text_rules if r.category not in QUERY_FIRST_CATEGORIES]
        self._guard = tuple(_compile(r) for r in guard)
        self._rest = tuple(_compile(r) for r in rest)
        self._scheme_patterns = {s: tuple(_compile(r) for r in rules)
                                 for s, rules in kb.pattern_rules.items() if s != TEXT_SCHEME}
        self._steps = kb.steps
        self._evidence = kb.evidence

    # -- the public entry --------------------------------------------------------------------------
    def classify(self, scheme: str | None, code: str | None, message: str | None) -> Diagnosis:
        s = normalize_scheme(scheme)
        if s is not None and s not in self.schemes:
            raise UnknownScheme(f"unknown scheme {scheme!r}; one of {', '.join(sorted(self.schemes))}")
        if s == TEXT_SCHEME:
            s = None
        c = normalize_code(code)
        norm = normalize_message(message)
        notes: list[str] = []
        hit: _Hit | None = None
        pending: _Hit | None = None   # a narrative / unknown-category code waiting for the text

        if c is not None:
            hit, pending = self._by_code(s, c, "given", notes)
        if hit is None and message:
            emb = extract_code(message)
            if emb is not None:
                ec = normalize_code(emb.code)
                if ec is not None and ec != c:
                    h2, p2 = self._by_code(s, ec, "embedded", notes)
                    hit = h2
                    pending = pending or p2
        if hit is not None and norm and hit.rule.decision in RESENDING_DECISIONS:
            guard = self._match(self._guard, norm)
            if guard is not None:
                rule, pattern = guard
                notes.append(f"code {hit.code} ({hit.rule.id}) says {hit.rule.decision}, but the text says "
                             f"{rule.category}: query first")
                hit = _Hit(rule, Stage.text, CONF_OVERRIDE, hit.code, hit.code_source, pattern)
        if hit is not None and norm and hit.stage is Stage.code:
            hit = self._code_and_text(s, hit, norm, notes)
        if hit is None and norm:
            found = self._text(s, norm)
            if found is not None:
                rule, pattern = found
                if pending is not None:
                    notes.append(f"{pending.rule.id} means 'see the text'; the text decided")
                    hit = _Hit(rule, Stage.narrative, CONF_NARRATIVE, pending.code, pending.code_source, pattern)
                else:
                    hit = _Hit(rule, Stage.text, CONF_TEXT, None, None, pattern)
        if hit is None and pending is not None:
            if not pending.rule.narrative:   # a rule whose category is unknown, and no better text
                hit = pending
            else:
                notes.append(f"{pending.rule.id} means 'see the text', and the text was not recognised")
                return self._unknown(norm, CONF_UNKNOWN_SIGNAL, notes, pending)
        if hit is None:
            conf = CONF_UNKNOWN_SIGNAL if (c or norm) else CONF_UNKNOWN_EMPTY
            return self._unknown(norm, conf, notes, None)
        return self._diagnosis(hit, norm, notes)

    # -- stages ------------------------------------------------------------------------------------
    def _code_and_text(self, scheme: str | None, hit: _Hit, norm: str, notes: list[str]) -> _Hit:
        """A decisive code next to a recognised text of another category: a code that leaves the decision
        to a person (decision review) gives way to the text; any other code decides, and the
        disagreement is noted (never silently dropped)."""
        found = self._text(scheme, norm)
        if found is None or found[0].category is hit.rule.category:
            return hit
        rule, pattern = found
        if hit.rule.decision is Decision.review:
            notes.append(f"code {hit.code} ({hit.rule.id}: {hit.rule.category}) leaves the decision to a person, "
                         f"and the text names {rule.category}: the text decides")
            return _Hit(rule, Stage.narrative, CONF_REVIEW_CODE_TEXT, hit.code, hit.code_source, pattern)
        notes.append(f"the text reads as {rule.category} ({rule.id}), but code {hit.code} ({hit.rule.id}) is "
                     f"specific: the code decides ({hit.rule.category})")
        return _Hit(hit.rule, hit.stage, hit.confidence, hit.code, hit.code_source, hit.pattern, hit.notes,
                    text_category=rule.category)

    def _by_code(self, scheme: str | None, code: str, source: str,
                 notes: list[str]) -> tuple[_Hit | None, _Hit | None]:
        """(decisive hit, pending narrative hit)."""
        res = self._lookup(scheme, code)
        notes.extend(res.notes)
        r = res.rule
        if r is None:
            return None, None
        if scheme is not None:
            conf = CONF_CODE_SCHEME if source == "given" else CONF_EMBEDDED_SCHEME
        else:
            conf = CONF_CODE_AGREED if source == "given" else CONF_EMBEDDED_AGREED
        h = _Hit(r, Stage.code, conf, code, source)
        if r.narrative or r.category is Category.unknown:
            return None, h
        return h, None

    def _lookup(self, scheme: str | None, code: str) -> _CodeResult:
        if scheme is not None:
            rule = self.kb.codes.get(scheme, {}).get(code)
            if rule is None:
                return _CodeResult(None, (f"code {code} is not in the {scheme} knowledge base",))
            return _CodeResult(rule)
        found = [table[code] for s, table in self.kb.codes.items() if code in table]
        if not found:
            return _CodeResult(None, (f"code {code} is not known to any scheme",))
        decisive = [r for r in found if not r.narrative and r.category is not Category.unknown]
        cats = {r.category for r in decisive}
        if len(cats) > 1:
            listing = ", ".join(f"{r.scheme}={r.category}" for r in decisive)
            return _CodeResult(None, (f"code {code} means different things in different schemes ({listing}); "
                                      "the text decides",))
        if decisive and len(decisive) == len(found):
            return _CodeResult(decisive[0], (f"no scheme given; code {code} found in "
                                             f"{', '.join(r.scheme for r in found)}",))
        if decisive:
            # some schemes say "see the text" for this code, others are specific: let the text decide
            return _CodeResult(None, (f"code {code} is specific in some schemes and 'see the text' in others; "
                                      "the text decides",))
        return _CodeResult(found[0])

    def _text(self, scheme: str | None, norm: str) -> tuple[Rule, str] | None:
        found = self._match(self._guard, norm)
        if found is None and scheme is not None:
            found = self._match(self._scheme_patterns.get(scheme, ()), norm)
        if found is None:
            found = self._match(self._rest, norm)
        return found

    @staticmethod
    def _match(rules: tuple[_Compiled, ...], norm: str) -> tuple[Rule, str] | None:
        for rule, rx, each, unless in rules:
            if rx.search(norm) is not None:   # the fast path: most rules do not match at all
                pattern = _counting(norm, each, unless)
                if pattern is not None:
                    return rule, pattern
        return None

    # -- building the answer -----------------------------------------------------------------------
    def _texts(self, rule_steps: tuple[str, ...], evidence: tuple[str, ...], note_zh: str,
               note_en: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        gz = ([note_zh] if note_zh else []) + [self._steps[s].zh for s in rule_steps]
        ge = ([note_en] if note_en else []) + [self._steps[s].en for s in rule_steps]
        return (tuple(gz), tuple(ge), tuple(self._evidence[e].zh for e in evidence),
                tuple(self._evidence[e].en for e in evidence))

    def _for_merchant(self, rule_steps: tuple[str, ...], note: tuple[str, str] | None,
                      ) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """What a merchant reads (zh, en) and whether it must act: a note for it and its own steps as written,
        what the platform does by itself in the merchant's words, never an operations step (guidance.toml)."""
        zh: list[str] = [note[0]] if note else []
        en: list[str] = [note[1]] if note else []
        acts = False
        for s in rule_steps:
            step = self._steps[s]
            if step.audience is Audience.merchant:
                acts = True
                said = (step.zh, step.en)
            elif step.audience is Audience.platform:
                said = (step.merchant_zh, step.merchant_en)
            else:
                continue
            if said[0] not in zh:
                zh.append(said[0])
                en.append(said[1])
        if not zh:
            zh, en = [NOTHING_TO_DO[0]], [NOTHING_TO_DO[1]]
        return tuple(zh), tuple(en), acts

    def _merchant_note(self, r: Rule) -> tuple[str, str] | None:
        return (r.note_zh, r.note_en) if r.note_zh and r.note_audience is Audience.merchant else None

    def _diagnosis(self, hit: _Hit, norm: str, notes: list[str]) -> Diagnosis:
        r = hit.rule
        gz, ge, ez, ee = self._texts(r.steps, r.evidence, r.note_zh, r.note_en)
        expl = Explanation(stage=hit.stage, normalized=norm, scheme=r.scheme, code=hit.code,
                           code_source=hit.code_source, pattern=hit.pattern, notes=tuple(notes),
                           text_category=hit.text_category)
        unknown = r.category is Category.unknown
        return Diagnosis(category=r.category, retryable=r.retryable, decision=r.decision, owner=r.owner,
                         confidence=min(hit.confidence, CONF_UNKNOWN_SIGNAL) if unknown else hit.confidence,
                         rule=r.id,
                         meaning_zh=r.meaning_zh, meaning_en=r.meaning_en, guidance_zh=gz, guidance_en=ge,
                         evidence_zh=ez, evidence_en=ee, explanation=expl,
                         **self._merchant_fields(r.steps, self._merchant_note(r)))

    def _merchant_fields(self, rule_steps: tuple[str, ...], note: tuple[str, str] | None) -> dict[str, Any]:
        mz, me, acts = self._for_merchant(rule_steps, note)
        return {"merchant_zh": mz, "merchant_en": me, "merchant_acts": acts}

    def _unknown(self, norm: str, confidence: float, notes: list[str], pending: _Hit | None) -> Diagnosis:
        note_zh = note_en = ""
        meaning_zh = "无法识别的失败原因，需要人工复核"
        meaning_en = "Unrecognised failure reason; needs human review"
        rule_id = None
        if pending is not None:
            r = pending.rule
            rule_id = r.id
            meaning_zh = f"{r.meaning_zh}（需结合文字说明，但文字无法识别）"
            meaning_en = f"{r.meaning_en} (the text decides, and it was not recognised)"
            note_zh, note_en = r.note_zh, r.note_en
        gz, ge, ez, ee = self._texts(UNKNOWN_STEPS, UNKNOWN_EVIDENCE, note_zh, note_en)
        merchant = self._merchant_fields(UNKNOWN_STEPS, None if pending is None else self._merchant_note(pending.rule))
        expl = Explanation(stage=Stage.none, normalized=norm,
                           scheme=pending.rule.scheme if pending else None,
                           code=pending.code if pending else None,
                           code_source=pending.code_source if pending else None, notes=tuple(notes))
        return Diagnosis(category=Category.unknown, retryable=False, decision=Decision.review, owner=Owner.platform,
                         confidence=confidence, rule=rule_id, meaning_zh=meaning_zh,
                         meaning_en=meaning_en, guidance_zh=gz, guidance_en=ge, evidence_zh=ez, evidence_en=ee,
                         explanation=expl, **merchant)


_Compiled = tuple[Rule, re.Pattern[str], tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]


def _compile(rule: Rule) -> _Compiled:
    """The rule, its patterns as one alternation (to find whether it matches), each pattern alone
    (to say which one did, and where) and its ``unless`` patterns."""
    return (rule, re.compile("|".join(f"(?:{p})" for p in rule.patterns)), tuple(re.compile(p) for p in rule.patterns),
            tuple(re.compile(u) for u in rule.unless))


def _counting(norm: str, each: tuple[re.Pattern[str], ...], unless: tuple[re.Pattern[str], ...]) -> str | None:
    """The first pattern (in rule order) with a match that counts: not overlapped by an ``unless`` match
    and not negated by a cue just before it. None when every match is excluded."""
    spans = [m.span() for u in unless for m in u.finditer(norm)]
    for p in each:
        m = p.search(norm)
        while m is not None:
            start, end = m.span()
            if (not any(us < end and start < ue for us, ue in spans)
                    and _NEGATED.search(norm[max(0, start - _NEG_WINDOW):start]) is None):
                return p.pattern
            m = p.search(norm, start + 1)
    return None
