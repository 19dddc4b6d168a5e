"""Risk (异常交易分析, 套现 monitoring): the rule set, the per-transaction predicates behind each feature, the
robust baseline score, the merchant's score and its explanation in zh / en. Pure: no I/O, no clock.

A rule set is TOML (``risk/rules.toml`` ships the defaults, docs/risk.md justifies them; an operator file merges
over it, see :func:`merge`). The day's counts per merchant are computed in the database (risk.repository) with
the same predicates as :func:`is_round`, :func:`is_night`, :func:`is_under_limit` and :func:`mcc_max_fen` here
(a unit test checks the two agree); the shares, baseline scores and rules are evaluated on those counts
(risk.engine, vectorised); a flagged merchant is explained here.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Features a rule may read: name -> (zh, en, kind). kind: "share" (0..1, shown as %), "count", "z" (robust
# z-score), "days", "yuan".
FEATURES: Mapping[str, tuple[str, str, str]] = {
    "sale_count": ("消费笔数", "sales", "count"),
    "sale_yuan": ("消费金额", "sales amount", "yuan"),
    "avg_ticket_yuan": ("平均客单价", "average ticket", "yuan"),
    "round_share": ("整数金额占比", "share of round amounts", "share"),
    "night_share": ("凌晨交易占比", "share of night sales", "share"),
    "credit_share": ("信用卡占比", "credit-card share", "share"),
    "same_card_max": ("同一卡当日最多笔数", "most sales on one card", "count"),
    "under_limit_share": ("贴近限额金额占比", "share just under a limit", "share"),
    "over_mcc_share": ("超出行业常见单笔金额占比", "share above the MCC's typical ticket", "share"),
    "unmatched_refunds": ("无对应消费的退货/撤销笔数", "refunds / voids without a matching sale", "count"),
    "amount_z": ("交易额稳健 z 值", "amount robust z", "z"),
    "count_z": ("交易笔数稳健 z 值", "count robust z", "z"),
    "silence_active_days": ("今日无交易，此前活跃天数", "silent today after active days", "days"),
    "reactivated_after_days": ("沉寂天数后恢复交易", "days silent before today's sales", "days"),
}
OPS = (">=", "<=")
MAX_SCORE = 100
MAD_SCALE = 1.4826  # MAD x this estimates a normal distribution's standard deviation


class RulesError(ValueError):
    """A rule file that cannot be used: zh then en, naming the file and the key."""

    def __init__(self, source: str, where: str, zh: str, en: str) -> None:
        super().__init__(f"{source}: {where}: {zh} / {en}")
        self.source, self.where, self.zh, self.en = source, where, zh, en


@dataclass(frozen=True)
class FeatureParams:
    round_multiple_yuan: int = 100
    round_endings_yuan: tuple[int, ...] = (999, 998)
    night_start_hour: int = 0
    night_end_hour: int = 5
    limits_yuan: tuple[int, ...] = (5000, 10000, 20000, 50000)
    under_limit_band: float = 0.02
    mcc_default_max_ticket_yuan: int = 5000
    mcc_max_ticket_yuan: Mapping[str, int] = field(default_factory=dict)

    def digest(self) -> str:
        """SHA-256 of the parameters the stored daily counts depend on."""
        data = {"round": self.round_multiple_yuan, "endings": sorted(self.round_endings_yuan),
                "night": [self.night_start_hour, self.night_end_hour], "limits": sorted(self.limits_yuan),
                "band": self.under_limit_band, "mcc_default": self.mcc_default_max_ticket_yuan,
                "mcc": dict(sorted(self.mcc_max_ticket_yuan.items()))}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def limit_bands_fen(self) -> list[tuple[int, int]]:
        """[low, high) in fen of every "just under a limit" band."""
        return [(math.ceil(y * 100 * (1 - self.under_limit_band)), y * 100) for y in sorted(set(self.limits_yuan))]

    def mcc_thresholds_fen(self) -> list[int]:
        """Every distinct MCC ticket threshold, in fen, ascending."""
        return sorted({y * 100 for y in [self.mcc_default_max_ticket_yuan, *self.mcc_max_ticket_yuan.values()]})


@dataclass(frozen=True)
class BaselineParams:
    days: int = 30
    min_days: int = 7
    mad_floor_share: float = 0.25
    mad_floor_yuan: int = 100


@dataclass(frozen=True)
class Rule:
    id: str
    feature: str
    op: str
    threshold: float
    weight: int
    min_sales: int
    name_zh: str
    name_en: str

    def fires(self, value: float | None, sales: int) -> bool:
        if value is None or sales < self.min_sales or (isinstance(value, float) and math.isnan(value)):
            return False
        return value >= self.threshold if self.op == ">=" else value <= self.threshold


@dataclass(frozen=True)
class RuleSet:
    features: FeatureParams
    baseline: BaselineParams
    rules: tuple[Rule, ...]
    flag_score: int = 40
    case_score: int = 60
    evidence_per_rule: int = 50
    sources: tuple[str, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# --- reading a rule set ------------------------------------------------------------------------------------

def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: tables key by key, ``rules`` by id (a rule's keys replace the base rule's,
    a new id is added at the end)."""
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        if key == "rules" and isinstance(value, list) and isinstance(base.get("rules"), list):
            rules = [dict(r) for r in base["rules"]]
            ids = [r.get("id") for r in rules]
            for r in value:
                if isinstance(r, dict) and r.get("id") in ids:
                    rules[ids.index(r.get("id"))].update(r)
                else:
                    rules.append(r)
            out["rules"] = rules
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge(base[key], value)
        else:
            out[key] = value
    return out


def read_toml(text: str, source: str) -> dict[str, Any]:
    if len(text) > 1 << 20:
        raise RulesError(source, "-", "规则文件超过 1 MiB", "the rule file is larger than 1 MiB")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(source, str(exc), "不是有效的 TOML", "not valid TOML") from None


def _num(source: str, where: str, value: Any, *, lo: float | None = None, hi: float | None = None,
         integer: bool = False) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and not (integer and not isinstance(value, int))
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        ok = False
    if not ok:
        rng = f"{lo if lo is not None else '-∞'}..{hi if hi is not None else '∞'}"
        kind_zh, kind_en = ("整数", "an integer") if integer else ("数值", "a number")
        raise RulesError(source, where, f"须为 {rng} 之间的{kind_zh}，填写的是 {value!r}",
                         f"must be {kind_en} in {rng}, got {value!r}")
    return value


def _table(source: str, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise RulesError(source, f"[{key}]", "须为表", "must be a table")
    return value


_KNOWN = {"features": {"round_multiple_yuan", "round_endings_yuan", "night_start_hour", "night_end_hour",
                       "limits_yuan", "under_limit_band", "mcc_default_max_ticket_yuan", "mcc_max_ticket_yuan"},
          "baseline": {"days", "min_days", "mad_floor_share", "mad_floor_yuan"},
          "scoring": {"flag_score", "case_score", "evidence_per_rule"}}
_RULE_KEYS = {"id", "feature", "op", "threshold", "weight", "min_sales", "name_zh", "name_en", "enabled"}


def parse(data: Mapping[str, Any], source: str) -> RuleSet:
    """A :class:`RuleSet` from parsed TOML; :class:`RulesError` naming the key on anything wrong."""
    for key in data:
        if key not in (*_KNOWN, "rules"):
            raise RulesError(source, key, "未知的表", "unknown table")
    for section, keys in _KNOWN.items():
        for key in _table(source, data, section):
            if key not in keys:
                raise RulesError(source, f"{section}.{key}", "未知的键", "unknown key")
    f, b, s = _table(source, data, "features"), _table(source, data, "baseline"), _table(source, data, "scoring")
    d = FeatureParams()
    mcc = f.get("mcc_max_ticket_yuan", {})
    if not isinstance(mcc, dict):
        raise RulesError(source, "features.mcc_max_ticket_yuan", "须为表", "must be a table")
    for code, y in mcc.items():
        if len(code) != 4 or not code.isdigit():
            raise RulesError(source, f"features.mcc_max_ticket_yuan.{code}", "MCC 须为 4 位数字",
                             "an MCC is 4 digits")
        _num(source, f"features.mcc_max_ticket_yuan.{code}", y, lo=1, hi=10**9, integer=True)

    def ints(key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        value = f.get(key, list(default))
        if not isinstance(value, list) or len(value) > 32:
            raise RulesError(source, f"features.{key}", "须为最多 32 个整数的列表", "must be a list of at most 32 integers")
        return tuple(_num(source, f"features.{key}", v, lo=1, hi=10**9, integer=True) for v in value)

    features = FeatureParams(
        round_multiple_yuan=_num(source, "features.round_multiple_yuan", f.get("round_multiple_yuan",
                                                                                d.round_multiple_yuan),
                                 lo=1, hi=10**7, integer=True),
        round_endings_yuan=tuple(e for e in ints("round_endings_yuan", d.round_endings_yuan)
                                 if _num(source, "features.round_endings_yuan", e, lo=1, hi=999, integer=True)),
        night_start_hour=_num(source, "features.night_start_hour", f.get("night_start_hour", d.night_start_hour),
                              lo=0, hi=23, integer=True),
        night_end_hour=_num(source, "features.night_end_hour", f.get("night_end_hour", d.night_end_hour),
                            lo=0, hi=24, integer=True),
        limits_yuan=ints("limits_yuan", d.limits_yuan),
        under_limit_band=_num(source, "features.under_limit_band", f.get("under_limit_band", d.under_limit_band),
                              lo=0.0, hi=0.5),
        mcc_default_max_ticket_yuan=_num(source, "features.mcc_default_max_ticket_yuan",
                                         f.get("mcc_default_max_ticket_yuan", d.mcc_default_max_ticket_yuan),
                                         lo=1, hi=10**9, integer=True),
        mcc_max_ticket_yuan=dict(mcc),
    )
    db = BaselineParams()
    baseline = BaselineParams(
        days=_num(source, "baseline.days", b.get("days", db.days), lo=7, hi=366, integer=True),
        min_days=_num(source, "baseline.min_days", b.get("min_days", db.min_days), lo=2, hi=366, integer=True),
        mad_floor_share=_num(source, "baseline.mad_floor_share", b.get("mad_floor_share", db.mad_floor_share),
                             lo=0.0, hi=10.0),
        mad_floor_yuan=_num(source, "baseline.mad_floor_yuan", b.get("mad_floor_yuan", db.mad_floor_yuan),
                            lo=0, hi=10**9, integer=True),
    )
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RulesError(source, "rules", "须为 [[rules]] 表数组", "must be an array of [[rules]] tables")
    rules: list[Rule] = []
    for i, r in enumerate(raw_rules):
        where = f"rules[{i}]" + (f" ({r.get('id')})" if isinstance(r, dict) and r.get("id") else "")
        if not isinstance(r, dict):
            raise RulesError(source, where, "须为表", "must be a table")
        for key in r:
            if key not in _RULE_KEYS:
                raise RulesError(source, f"{where}.{key}", "未知的键", "unknown key")
        if r.get("enabled", True) is False:
            continue
        rid = r.get("id")
        if not isinstance(rid, str) or not rid or len(rid) > 32 or not all(c.isalnum() or c == "_" for c in rid):
            raise RulesError(source, f"{where}.id", "须为 1–32 位字母、数字或 _", "must be 1-32 letters, digits or _")
        if any(x.id == rid for x in rules):
            raise RulesError(source, f"{where}.id", f"规则 {rid} 重复", f"rule {rid} appears twice")
        feature = r.get("feature")
        if feature not in FEATURES:
            raise RulesError(source, f"{where}.feature", f"未知特征 {feature!r}，可用：{', '.join(FEATURES)}",
                             f"unknown feature {feature!r}; one of {', '.join(FEATURES)}")
        op = r.get("op", ">=")
        if op not in OPS:
            raise RulesError(source, f"{where}.op", f"须为 {' 或 '.join(OPS)}", f"must be {' or '.join(OPS)}")
        names = [r.get("name_zh", rid), r.get("name_en", rid)]
        if not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names):
            raise RulesError(source, f"{where}.name_zh/name_en", "须为 1–64 个字符", "must be 1-64 characters")
        rules.append(Rule(rid, str(feature), str(op), float(_num(source, f"{where}.threshold", r.get("threshold"))),
                          _num(source, f"{where}.weight", r.get("weight"), lo=0, hi=MAX_SCORE, integer=True),
                          _num(source, f"{where}.min_sales", r.get("min_sales", 0), lo=0, hi=10**6, integer=True),
                          names[0], names[1]))
    flag = _num(source, "scoring.flag_score", s.get("flag_score", 40), lo=1, hi=MAX_SCORE, integer=True)
    case = _num(source, "scoring.case_score", s.get("case_score", 60), lo=1, hi=MAX_SCORE, integer=True)
    if case < flag:
        raise RulesError(source, "scoring.case_score", "不能低于 flag_score", "cannot be below flag_score")
    return RuleSet(features, baseline, tuple(rules), flag, case,
                   _num(source, "scoring.evidence_per_rule", s.get("evidence_per_rule", 50), lo=1, hi=10_000,
                        integer=True), (source,))


def rule_set(texts: Sequence[tuple[str, str]]) -> RuleSet:
    """The rule set of ``(source, TOML text)`` pairs, each merged over the ones before (the default first)."""
    data: dict[str, Any] = {}
    for source, text in texts:
        data = merge(data, read_toml(text, source))
    out = parse(data, " + ".join(s for s, _ in texts))
    return RuleSet(out.features, out.baseline, out.rules, out.flag_score, out.case_score, out.evidence_per_rule,
                   tuple(s for s, _ in texts))


# --- per-transaction predicates (the database computes the same; risk.repository) ---------------------------

def is_round(amount_fen: int, p: FeatureParams) -> bool:
    """A whole multiple of ``round_multiple_yuan`` yuan, or whole yuan ending in one of ``round_endings_yuan``
    (per 1,000 yuan: 999, 1,999, 9,999 yuan)."""
    if amount_fen % (p.round_multiple_yuan * 100) == 0:
        return True
    return amount_fen % 100 == 0 and (amount_fen // 100) % 1000 in p.round_endings_yuan


def is_night(local_hour: int, p: FeatureParams) -> bool:
    if p.night_start_hour <= p.night_end_hour:
        return p.night_start_hour <= local_hour < p.night_end_hour
    return local_hour >= p.night_start_hour or local_hour < p.night_end_hour


def is_under_limit(amount_fen: int, p: FeatureParams) -> bool:
    return any(lo <= amount_fen < hi for lo, hi in p.limit_bands_fen())


def mcc_max_fen(mcc: str, p: FeatureParams) -> int:
    return p.mcc_max_ticket_yuan.get(mcc, p.mcc_default_max_ticket_yuan) * 100


# --- baseline --------------------------------------------------------------------------------------------------

def robust_z(value: float, median: float, mad: float, b: BaselineParams, *, money: bool) -> float:
    """(value - median) / spread, the spread = MAD x 1.4826, at least ``mad_floor_share`` of the median and, for
    amounts in fen (``money``), ``mad_floor_yuan`` yuan (at least 1 otherwise)."""
    floor = max(b.mad_floor_share * abs(median), b.mad_floor_yuan * 100 if money else 1.0)
    return (value - median) / max(MAD_SCALE * mad, floor)


# --- score and explanation --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """A rule that fired: the feature's value, and the merchant's baseline where the rule compares with it."""

    rule: Rule
    value: float
    baseline_zh: str = ""  # e.g. "前 30 天中 21 天有交易，日交易额中位数 1,234.00 元"
    baseline_en: str = ""


def score(hits: Sequence[Hit]) -> int:
    return min(MAX_SCORE, sum(h.rule.weight for h in hits))


def show_value(feature: str, value: float) -> str:
    kind = FEATURES[feature][2]
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "z":
        return f"{value:+.1f}"
    if kind == "yuan":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def explain(hits: Sequence[Hit]) -> tuple[str, str]:
    """(zh, en): per fired rule its name, the feature, the value, the threshold, the baseline and the rule id."""
    zh, en = [], []
    for h in hits:
        r = h.rule
        fzh, fen_, _ = FEATURES[r.feature]
        op_zh = "≥" if r.op == ">=" else "≤"
        v, th = show_value(r.feature, h.value), show_value(r.feature, r.threshold)
        zh.append(f"{r.name_zh}：{fzh} {v}（阈值 {op_zh} {th}{'，基线：' + h.baseline_zh if h.baseline_zh else ''}；"
                  f"规则 {r.id}，{r.weight} 分）")
        en.append(f"{r.name_en}: {fen_} {v} (threshold {op_zh} {th}{'; baseline: ' + h.baseline_en if h.baseline_en else ''}; "
                  f"rule {r.id}, {r.weight} points)")
    return "；".join(zh), "; ".join(en)
