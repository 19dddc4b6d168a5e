"""Loading and strictly validating the knowledge base (src/settleguard/diagnosis/kb/*.toml).

Every problem is reported with the file and the rule id, and the first problem stops the load: a
knowledge base that loads is one the classifier can trust."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from settleguard.diagnosis.model import Audience, Category, Decision, Owner, Rule, Text, rule_problems
from settleguard.diagnosis.normalize import SCHEME_NAMES, normalize_code, normalize_message

# The scheme files, in the order the classifier consults them when no scheme is given.
TEXT_SCHEME = "text"
ALL_SCHEMES: tuple[str, ...] = SCHEME_NAMES
CODE_SCHEMES: tuple[str, ...] = tuple(s for s in SCHEME_NAMES if s != TEXT_SCHEME)
GUIDANCE_FILE = "guidance.toml"

STEP_IDS: tuple[str, ...] = (
    "rebind_card", "confirm_card_status", "bind_other_card", "contact_bank_support", "wait_and_retry",
    "inquire_first", "check_terminal", "resign_in", "contact_platform_hotline", "fund_provision_account",
    "split_payout", "next_window", "raise_limit", "compliance_review", "complete_real_name",
    "fix_instruction_data", "manual_review", "keep_evidence", "repay_after_fix", "reconcile",
)
EVIDENCE_IDS: tuple[str, ...] = (
    "bank_response", "payout_attempts", "inquiry_result", "card_binding", "card_status_history",
    "terminal_logs", "contact_record", "settlement_statement", "compliance_docs",
)

_FILE_KEYS = {"scheme", "source", "rules"}
_REQUIRED = {"id": str, "category": str, "retryable": bool, "decision": str, "owner": str,
             "meaning_zh": str, "meaning_en": str, "steps": list, "evidence": list}
_OPTIONAL = {"codes": list, "patterns": list, "narrative": bool, "note_zh": str, "note_en": str, "note_audience": str,
             "examples": list, "unless": list, "near_misses": list}
_ESCAPE = re.compile(r"\\.")


class KnowledgeBaseError(ValueError):
    """The knowledge base is broken; the message names the file and the rule."""


@dataclass(frozen=True)
class KnowledgeBase:
    rules: tuple[Rule, ...]
    steps: Mapping[str, Text]
    evidence: Mapping[str, Text]
    sources: Mapping[str, str]                       # scheme -> source line of its file
    codes: Mapping[str, Mapping[str, Rule]]          # scheme -> normalised code -> rule
    text_rules: tuple[Rule, ...]                     # kb/text.toml, in file order
    pattern_rules: Mapping[str, tuple[Rule, ...]]    # scheme -> its rules that have patterns, in file order
    directory: str = ""
    schemes: tuple[str, ...] = field(default=())     # the scheme files that were present

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def default_directory() -> Path:
    return Path(str(resources.files("settleguard.diagnosis") / "kb"))


def load(directory: str | Path | None = None) -> KnowledgeBase:
    """Load and validate ``guidance.toml`` and every ``<scheme>.toml`` present in ``directory``
    (the packaged kb/ by default). A missing scheme file is simply not loaded; an unexpected .toml file
    is an error."""
    base = Path(directory) if directory is not None else default_directory()
    guidance_path = base / GUIDANCE_FILE
    if not guidance_path.exists():
        raise KnowledgeBaseError(f"{guidance_path}: missing (the step and evidence library)")
    steps, evidence = _load_guidance(guidance_path)
    known_files = {f"{s}.toml" for s in ALL_SCHEMES} | {GUIDANCE_FILE}
    for p in sorted(base.glob("*.toml")):
        if p.name not in known_files:
            raise KnowledgeBaseError(f"{p}: unexpected file; scheme files are {', '.join(ALL_SCHEMES)}")
    rules: list[Rule] = []
    sources: dict[str, str] = {}
    present: list[str] = []
    for scheme in ALL_SCHEMES:
        path = base / f"{scheme}.toml"
        if not path.exists():
            continue
        present.append(scheme)
        source, file_rules = _load_scheme(path, scheme, steps, evidence)
        sources[scheme] = source
        rules.extend(file_rules)
    seen: dict[str, str] = {}
    codes: dict[str, dict[str, Rule]] = {s: {} for s in present}
    for r in rules:
        if r.id in seen:
            raise KnowledgeBaseError(f"{r.file}: rule {r.id}: duplicate id (also in {seen[r.id]})")
        seen[r.id] = r.file
        for c in r.codes:
            other = codes[r.scheme].get(c)
            if other is not None:
                raise KnowledgeBaseError(f"{r.file}: rule {r.id}: code {c} is already used by rule {other.id}")
            codes[r.scheme][c] = r
    pattern_rules = {s: tuple(r for r in rules if r.scheme == s and r.patterns) for s in present}
    return KnowledgeBase(
        rules=tuple(rules), steps=steps, evidence=evidence, sources=sources, codes=codes,
        text_rules=pattern_rules.get(TEXT_SCHEME, ()), pattern_rules=pattern_rules,
        directory=str(base), schemes=tuple(present),
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeBaseError(f"{path}: not valid TOML: {exc}") from None


def _load_guidance(path: Path) -> tuple[dict[str, Text], dict[str, Text]]:
    data = _read(path)
    extra = set(data) - {"steps", "evidence"}
    if extra:
        raise KnowledgeBaseError(f"{path}: unknown top-level keys {sorted(extra)} (expected steps, evidence)")
    out: list[dict[str, Text]] = []
    for section, required in (("steps", STEP_IDS), ("evidence", EVIDENCE_IDS)):
        table = data.get(section)
        if not isinstance(table, dict):
            raise KnowledgeBaseError(f"{path}: [{section}] is missing")
        items: dict[str, Text] = {}
        for key, entry in table.items():
            where = f"{path}: [{section}.{key}]"
            if not isinstance(entry, dict):
                raise KnowledgeBaseError(f"{where}: expected a table with zh and en")
            items[key] = _guidance_entry(where, section, key, entry)
        missing = [k for k in required if k not in items]
        if missing:
            raise KnowledgeBaseError(f"{path}: [{section}] lacks {missing}")
        out.append(items)
    return out[0], out[1]


def _guidance_entry(where: str, section: str, key: str, entry: dict[str, Any]) -> Text:
    """A step (zh, en, audience; a platform step also merchant_zh, merchant_en) or a piece of evidence (zh, en)."""
    if section == "evidence":
        expected = {"zh", "en"}
    else:
        audience = entry.get("audience")
        if audience not in {a.value for a in Audience}:
            raise KnowledgeBaseError(f"{where}: audience must be one of {[a.value for a in Audience]}, "
                                     f"got {audience!r}")
        expected = {"zh", "en", "audience"} | ({"merchant_zh", "merchant_en"} if audience == "platform" else set())
    if set(entry) != expected:
        names = " and ".join(["zh", "en", *sorted(expected - {"zh", "en"})])
        raise KnowledgeBaseError(f"{where}: keys must be exactly {names}, got {sorted(entry)}")
    texts = sorted(expected - {"audience"})
    if not all(isinstance(entry[k], str) and entry[k].strip() for k in texts):
        raise KnowledgeBaseError(f"{where}: {', '.join(texts)} must be non-empty strings")
    if section == "evidence":
        return Text(key, entry["zh"].strip(), entry["en"].strip())
    return Text(key, entry["zh"].strip(), entry["en"].strip(), Audience(entry["audience"]),
                entry.get("merchant_zh", "").strip(), entry.get("merchant_en", "").strip())


def _load_scheme(path: Path, scheme: str, steps: Mapping[str, Text],
                 evidence: Mapping[str, Text]) -> tuple[str, list[Rule]]:
    data = _read(path)
    extra = set(data) - _FILE_KEYS
    if extra:
        raise KnowledgeBaseError(f"{path}: unknown top-level keys {sorted(extra)} (expected {sorted(_FILE_KEYS)})")
    if data.get("scheme") != scheme:
        raise KnowledgeBaseError(f"{path}: scheme = {data.get('scheme')!r} does not match the file name ({scheme!r})")
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise KnowledgeBaseError(f"{path}: source must be a non-empty string naming where the codes come from")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise KnowledgeBaseError(f"{path}: no [[rules]]")
    rules = [_rule(path, scheme, i, raw, steps, evidence) for i, raw in enumerate(raw_rules, 1)]
    return source, rules


def _rule(path: Path, scheme: str, index: int, raw: Any, steps: Mapping[str, Text],
          evidence: Mapping[str, Text]) -> Rule:
    rid = raw.get("id") if isinstance(raw, dict) else None
    where = f"{path}: rule {rid if isinstance(rid, str) else f'#{index}'}"

    def bad(msg: str) -> KnowledgeBaseError:
        return KnowledgeBaseError(f"{where}: {msg}")

    if not isinstance(raw, dict):
        raise bad("expected a table")
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise bad(f"unknown keys {sorted(unknown)}")
    for key, typ in _REQUIRED.items():
        if key not in raw:
            raise bad(f"missing key {key!r}")
        if not isinstance(raw[key], typ):
            raise bad(f"{key} must be a {typ.__name__}")
    for key, typ in _OPTIONAL.items():
        if key in raw and not isinstance(raw[key], typ):
            raise bad(f"{key} must be a {typ.__name__}")
    for key in ("codes", "patterns", "steps", "evidence", "examples", "unless", "near_misses"):
        if not all(isinstance(v, str) and v.strip() for v in raw.get(key, [])):
            raise bad(f"{key} must be a list of non-empty strings")
    for key in ("meaning_zh", "meaning_en"):
        if not raw[key].strip():
            raise bad(f"{key} must not be empty")
    if not raw["id"].startswith(f"{scheme}.") or len(raw["id"]) <= len(scheme) + 1:
        raise bad(f"id must look like '{scheme}.<code or slug>'")
    try:
        category = Category(raw["category"])
    except ValueError:
        raise bad(f"unknown category {raw['category']!r}; one of {[c.value for c in Category]}") from None
    try:
        decision = Decision(raw["decision"])
    except ValueError:
        raise bad(f"unknown decision {raw['decision']!r}; one of {[d.value for d in Decision]}") from None
    try:
        owner = Owner(raw["owner"])
    except ValueError:
        raise bad(f"unknown owner {raw['owner']!r}; one of {[o.value for o in Owner]}") from None
    for problem in rule_problems(category, decision, raw["retryable"]):
        raise bad(problem)
    if not raw["steps"]:
        raise bad("steps must name at least one step")
    for s in raw["steps"]:
        if s not in steps:
            raise bad(f"unknown step {s!r} (not in guidance.toml [steps])")
    for e in raw["evidence"]:
        if e not in evidence:
            raise bad(f"unknown evidence {e!r} (not in guidance.toml [evidence])")
    codes_raw: list[str] = raw.get("codes", [])
    codes = tuple(c for c in (normalize_code(c) for c in codes_raw) if c)
    if len(set(codes)) != len(codes):
        raise bad("a code is listed twice")
    patterns: list[str] = raw.get("patterns", [])
    for p in patterns:
        _check_pattern(p, bad)
    unless: list[str] = raw.get("unless", [])
    for p in unless:
        _check_pattern(p, bad)
    if unless and not patterns:
        raise bad("unless only makes sense for a rule with patterns")
    narrative = bool(raw.get("narrative", False))
    has_note = bool(raw.get("note_zh", "").strip() or raw.get("note_en", "").strip())
    if has_note != ("note_audience" in raw):
        raise bad("a note names its reader: note_audience = \"merchant\" or \"operations\" (and only with a note)")
    if has_note and raw["note_audience"] not in (Audience.merchant, Audience.operations):
        raise bad(f"note_audience must be merchant or operations, got {raw['note_audience']!r}")
    if scheme == TEXT_SCHEME and codes:
        raise bad("text rules have no codes (codes belong to their scheme's file)")
    if not codes and not patterns:
        raise bad("a rule needs codes or patterns")
    if narrative and not codes:
        raise bad("narrative = true only makes sense for codes")
    return Rule(
        id=raw["id"], scheme=scheme, codes=codes, patterns=tuple(patterns), narrative=narrative,
        category=category, retryable=raw["retryable"], decision=decision, owner=owner,
        meaning_zh=raw["meaning_zh"].strip(), meaning_en=raw["meaning_en"].strip(),
        steps=tuple(raw["steps"]), evidence=tuple(raw["evidence"]),
        note_zh=raw.get("note_zh", "").strip(), note_en=raw.get("note_en", "").strip(),
        note_audience=Audience(raw.get("note_audience", Audience.operations)),
        examples=tuple(raw.get("examples", [])), file=str(path), unless=tuple(unless),
        near_misses=tuple(raw.get("near_misses", [])),
    )


def _check_pattern(pattern: str, bad: Any) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise bad(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
    if compiled.search("") is not None:
        raise bad(f"pattern {pattern!r} matches the empty string (it would match every message)")
    literal = _ESCAPE.sub("", pattern)
    if any("A" <= ch <= "Z" for ch in literal):
        raise bad(f"pattern {pattern!r} has upper-case letters; patterns see lower-case text")
    for ch in set(literal):
        if not ch.isascii() and ch.isprintable() and normalize_message(ch) != ch:
            raise bad(f"pattern {pattern!r} contains {ch!r}, which never appears in normalised text "
                      f"(write {normalize_message(ch)!r}: simplified, half-width, no punctuation)")
