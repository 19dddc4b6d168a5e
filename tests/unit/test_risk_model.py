"""Risk rules, predicates, baselines and explanations (risk.model, risk.engine, the SQL of risk.repository)."""

from __future__ import annotations

import sqlite3
import statistics
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.risk import engine as eng
from settleguard.risk import model as m
from settleguard.risk import repository as repo
from settleguard.risk.service import load_rules

DEFAULT = load_rules()


def test_the_default_rules_load_and_cover_every_planted_kind_of_signal() -> None:
    ids = {r.id for r in DEFAULT.rules}
    assert ids >= {"round_amounts", "night_sales", "credit_heavy", "same_card", "just_under_limit",
                   "unmatched_refunds", "mcc_ticket", "volume_spike", "volume_drop", "silence", "reactivated"}
    assert all(r.feature in m.FEATURES for r in DEFAULT.rules)
    assert DEFAULT.flag_score <= DEFAULT.case_score
    assert DEFAULT.features.mcc_max_ticket_yuan["5411"] == 2000


def test_an_operator_file_merges_over_the_defaults_by_key_and_rule_id() -> None:
    rs = m.rule_set([("default", '[features]\nnight_end_hour = 5\n[[rules]]\nid = "a"\nfeature = "night_share"\n'
                                 'threshold = 0.5\nweight = 40\n[[rules]]\nid = "b"\nfeature = "round_share"\n'
                                 'threshold = 0.5\nweight = 40\n'),
                     ("ops.toml", '[features]\nnight_end_hour = 6\n[[rules]]\nid = "a"\nthreshold = 0.3\n'
                                  '[[rules]]\nid = "b"\nenabled = false\n[[rules]]\nid = "c"\n'
                                  'feature = "same_card_max"\nthreshold = 5\nweight = 50\n')])
    assert rs.features.night_end_hour == 6
    assert [(r.id, r.threshold, r.weight) for r in rs.rules] == [("a", 0.3, 40), ("c", 5.0, 50)]
    assert rs.sources == ("default", "ops.toml")


@pytest.mark.parametrize(("text", "where", "zh"), [
    ('[[rules]]\nid = "x"\nfeature = "nope"\nthreshold = 1\nweight = 1\n', "rules[0] (x).feature", "未知特征"),
    ('[[rules]]\nid = "x"\nfeature = "round_share"\nop = ">"\nthreshold = 1\nweight = 1\n', "rules[0] (x).op", "须为"),
    ('[[rules]]\nid = "x"\nfeature = "round_share"\nthreshold = 1\nweight = 500\n', "rules[0] (x).weight", "须为"),
    ('[[rules]]\nid = "x"\nfeature = "round_share"\nthreshold = "high"\nweight = 5\n', "rules[0] (x).threshold",
     "须为"),
    ('[[rules]]\nid = "x y"\nfeature = "round_share"\nthreshold = 1\nweight = 5\n', "rules[0] (x y).id", "须为"),
    ("[features]\nnight_hours = 3\n", "features.night_hours", "未知的键"),
    ("[features]\nlimits_yuan = [5000, -1]\n", "features.limits_yuan", "须为"),
    ('[features.mcc_max_ticket_yuan]\n"54" = 100\n', "features.mcc_max_ticket_yuan.54", "4 位"),
    ("[scoring]\nflag_score = 80\ncase_score = 60\n", "scoring.case_score", "不能低于"),
    ("[oops]\n", "oops", "未知的表"),
    ("[features\n", "", "不是有效的 TOML"),
])
def test_a_bad_rule_file_is_refused_naming_the_key(text: str, where: str, zh: str) -> None:
    with pytest.raises(m.RulesError) as err:
        m.rule_set([("ops.toml", text)])
    assert err.value.source == "ops.toml"
    assert where in err.value.where
    assert zh in err.value.zh
    assert err.value.en


def test_an_unreadable_or_huge_operator_file_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    missing = Path(str(tmp_path)) / "none.toml"
    with pytest.raises(m.RulesError, match="cannot be read"):
        load_rules(missing)
    big = Path(str(tmp_path)) / "big.toml"
    big.write_text("# " + "x" * (1 << 20), encoding="utf-8")
    with pytest.raises(m.RulesError, match="larger than 1 MiB"):
        load_rules(big)
    binary = Path(str(tmp_path)) / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(m.RulesError):
        load_rules(binary)


def _sql_flags(amounts: list[int], micros: list[int], p: m.FeatureParams, offset_us: int) -> list[tuple[int, ...]]:
    """The repository's SQL predicates, run by SQLite over the given rows."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE x (i INTEGER, amount_fen INTEGER, occurred_at INTEGER)")
    db.executemany("INSERT INTO x VALUES (?, ?, ?)", list(zip(range(len(amounts)), amounts, micros, strict=True)))
    sql = (f"SELECT {repo._round_sql(p)}, {repo._night_sql(p).replace(':offset_us', str(offset_us))}, "
           f"{repo._under_sql(p)} FROM x ORDER BY i")
    return [tuple(int(v) for v in r) for r in db.execute(sql)]


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.one_of(st.integers(1, 10**9), st.sampled_from([10_000, 99_900, 199_800, 499_900,
                                                                            999_999, 1_000_000, 4_900_000])),
                        min_size=1, max_size=40),
       start=st.integers(0, 23), end=st.integers(0, 24), band=st.floats(0.0, 0.2))
def test_the_sql_predicates_are_the_models(amounts: list[int], start: int, end: int, band: float) -> None:
    p = m.FeatureParams(night_start_hour=start, night_end_hour=end, under_limit_band=band)
    offset = 8 * 3600 * 10**6
    micros = [a * 7_919_000 % (86_400 * 10**6) + 1_790_000_000 * 10**6 for a in amounts]
    got = _sql_flags(amounts, micros, p, offset)
    want = [(int(m.is_round(a, p)), int(m.is_night((us + offset) // 3_600_000_000 % 24, p)),
             int(m.is_under_limit(a, p))) for a, us in zip(amounts, micros, strict=True)]
    assert got == want


def test_round_and_just_under_a_limit_by_example() -> None:
    p = DEFAULT.features
    assert [m.is_round(a, p) for a in (10_000, 50_000, 99_900, 999_900, 99_800, 12_345, 99_950, 100)] == [
        True, True, True, True, True, False, False, False]
    assert [m.is_under_limit(a, p) for a in (499_900, 490_000, 489_999, 500_000, 999_999)] == [
        True, True, False, False, True]
    assert m.mcc_max_fen("5411", p) == 200_000
    assert m.mcc_max_fen("0000", p) == p.mcc_default_max_ticket_yuan * 100


@settings(max_examples=60, deadline=None)
@given(groups=st.dictionaries(st.integers(1, 50), st.lists(st.integers(0, 10**7), min_size=1, max_size=31),
                              min_size=1, max_size=12))
def test_the_vectorised_baseline_is_the_median_and_mad_of_each_merchant(groups: dict[int, list[int]]) -> None:
    mids = np.array([k for k, vs in groups.items() for _ in vs], dtype=np.int64)
    fen = np.array([v for vs in groups.values() for v in vs], dtype=np.int64)
    order = np.random.default_rng(1).permutation(mids.size)
    b = eng.baseline(repo.Window(mids[order], fen[order] % 1000, fen[order]))
    for i, k in enumerate(b.merchant_id.tolist()):
        vs = groups[k]
        med = statistics.median(vs)
        assert b.days[i] == len(vs)
        assert b.amount_median[i] == pytest.approx(med)
        assert b.amount_mad[i] == pytest.approx(statistics.median([abs(v - med) for v in vs]))


def test_robust_z_has_a_floor_so_a_steady_merchant_is_not_infinitely_spiky() -> None:
    b = DEFAULT.baseline
    assert m.robust_z(20_000, 10_000, 0, b, money=True) == pytest.approx(10_000 / max(0.1 * 10_000, 100 * 100))
    assert m.robust_z(100, 50, 10, b, money=False) == pytest.approx(50 / (m.MAD_SCALE * 10))


def test_evaluation_scores_silence_and_a_return_after_silence() -> None:
    day = date(2026, 11, 18)
    stored = {k: np.array(v, dtype=np.int64) for k, v in {
        "merchant_id": [2], "sale_count": [30], "sale_fen": [300_000], "round_count": [0], "night_count": [0],
        "credit_count": [5], "card_max": [-1], "under_limit_count": [0], "over_mcc_count": [0],
        "unmatched_count": [0]}.items()}
    w = repo.Window(np.array([1] * 25, dtype=np.int64), np.array([20] * 25, dtype=np.int64),
                    np.array([200_000] * 25, dtype=np.int64))
    ev = eng.evaluate(day, stored, eng.baseline(w), {1: date(2026, 11, 17), 2: date(2026, 10, 20)}, DEFAULT)
    assert ev.merchant_id.tolist() == [1, 2]
    fired = {int(ev.merchant_id[j]): [r.id for i, r in enumerate(DEFAULT.rules) if ev.fired[i, j]] for j in range(2)}
    assert fired == {1: ["silence"], 2: ["reactivated"]}
    assert ev.values["reactivated_after_days"][1] == 28  # silent from 10-21 to 11-17
    assert np.isnan(ev.values["same_card_max"][1])  # no card tokens: not "one card once"


def test_the_explanation_names_rule_feature_value_threshold_and_baseline() -> None:
    spike = DEFAULT.rule("volume_spike")
    night = DEFAULT.rule("night_sales")
    assert spike is not None
    assert night is not None
    zh, en = m.explain([m.Hit(night, 0.625), m.Hit(spike, 7.25, "日交易额中位数 1,000.00 元", "median 1,000.00 yuan")])
    assert "凌晨交易占比高：凌晨交易占比 62.5%（阈值 ≥ 50.0%" in zh
    assert "规则 night_sales，40 分" in zh
    assert "基线：日交易额中位数 1,000.00 元" in zh
    assert "share of night sales 62.5% (threshold ≥ 50.0%" in en
    assert "amount robust z +7.2" in en
    assert "baseline: median 1,000.00 yuan; rule volume_spike" in en
    assert m.score([m.Hit(night, 1), m.Hit(spike, 9), m.Hit(night, 1)]) == 100
