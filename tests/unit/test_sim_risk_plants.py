"""The generator's card numbers and the merchants it plants for the demo's risk scan (issue 22 item 7): Luhn-valid
numbers of real BINs matching each row's card type, regular customers' cards recurring but never four times a day,
voids on the card and amount of a sale they cancel; ordinary merchants clean of every per-day risk rule, the
planted ones showing exactly their pattern; all deterministic for a seed."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pyarrow as pa
import pytest
from stdnum import luhn

from settleguard.cards.bins import load_packaged_bins
from settleguard.risk import model as rm
from settleguard.risk.service import load_rules
from settleguard.sim import risk_plants
from settleguard.sim.generator import (
    CARD_COLUMN,
    MAX_SAME_CARD,
    SimMerchant,
    generate_merchants,
    generate_transactions,
)

START = date(2026, 11, 16)
DAYS = [START + timedelta(days=i) for i in range(3)]
RULES = load_rules()


@pytest.fixture(scope="module")
def merchants() -> list[SimMerchant]:
    return generate_merchants(2000, seed=42)


@pytest.fixture(scope="module")
def plan(merchants: list[SimMerchant]) -> risk_plants.RiskPlan:
    return risk_plants.plan(merchants, DAYS, seed=42)


@pytest.fixture(scope="module")
def last_day(merchants: list[SimMerchant], plan: risk_plants.RiskPlan) -> pa.Table:
    return risk_plants.day_table(plan, merchants, DAYS[-1], 42, "Asia/Shanghai")


def test_card_numbers_are_luhn_valid_with_a_real_bin_of_the_rows_card_type(merchants: list[SimMerchant]) -> None:
    table = generate_transactions(merchants[:300], START, seed=42, cards=True)
    assert table.column_names[-1] == CARD_COLUMN
    bins = load_packaged_bins()
    checked = 0
    for row in table.to_pylist():
        pan = row[CARD_COLUMN]
        if row["card_type"] == "qr":
            assert not pan
            continue
        assert luhn.is_valid(pan), pan
        info = bins.lookup(pan)
        assert info is not None
        assert info.length == len(pan)
        assert info.card_type == ("CC" if row["card_type"] == "credit" else "DC")
        checked += 1
    assert checked > 1000
    assert generate_transactions(merchants[:300], START, seed=42, cards=True).equals(table)  # deterministic
    assert not generate_transactions(merchants[:300], START, seed=43, cards=True).equals(table)


def test_regular_customers_come_back_but_no_card_is_used_four_times_a_day(merchants: list[SimMerchant]) -> None:
    days = [generate_transactions(merchants, d, seed=42, cards=True).to_pylist() for d in DAYS[:2]]
    for rows in days:
        per_card = Counter((r["merchant_no"], r[CARD_COLUMN]) for r in rows if r["kind"] == "sale" and r[CARD_COLUMN])
        assert max(per_card.values()) <= MAX_SAME_CARD < 4  # risk's same_card fires at 4
        assert sum(1 for n in per_card.values() if n > 1) > 50  # but regulars do come back the same day
        assert len(per_card) > 0.9 * sum(per_card.values())  # mostly distinct cards
    seen = [{(r["merchant_no"], r[CARD_COLUMN]) for r in rows if r[CARD_COLUMN]} for rows in days]
    assert len(seen[0] & seen[1]) > 500  # and on the next day


def test_voids_and_reversals_cancel_a_same_day_sale_on_its_card(merchants: list[SimMerchant]) -> None:
    rows = generate_transactions(merchants, START, seed=42, cards=True).to_pylist()
    sales = {(r["merchant_no"], r["amount_fen"], r["card_type"], r[CARD_COLUMN]) for r in rows if r["kind"] == "sale"}
    cancels = [r for r in rows if r["kind"] in ("void", "reversal")]
    assert len(cancels) > 300
    assert all((r["merchant_no"], r["amount_fen"], r["card_type"], r[CARD_COLUMN]) in sales for r in cancels)


def _per_merchant(rows: list[dict[str, object]], mcc: dict[str, str]) -> dict[str, dict[str, float]]:
    """The per-day features risk's rules read, computed with risk.model's own predicates."""
    p = RULES.features
    out: dict[str, dict[str, float]] = {}
    acc: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        acc.setdefault(str(r["merchant_no"]), []).append(r)
    for no, rs in acc.items():
        sales = [r for r in rs if r["kind"] == "sale"]
        n = len(sales)
        if not n:
            continue
        amounts = [int(str(r["amount_fen"])) for r in sales]
        cards = Counter(r[CARD_COLUMN] for r in sales if r[CARD_COLUMN])
        amounts_set = set(amounts)
        out[no] = {
            "sales": n,
            "round_share": sum(rm.is_round(a, p) for a in amounts) / n,
            "night_share": sum(rm.is_night(int(str(r["occurred_at"])[11:13]), p) for r in sales) / n,
            "credit_share": sum(r["card_type"] == "credit" for r in sales) / n,
            "same_card_max": max(cards.values(), default=0),
            "under_limit_share": sum(rm.is_under_limit(a, p) for a in amounts) / n,
            "over_mcc_share": sum(a > rm.mcc_max_fen(mcc[no], p) for a in amounts) / n,
            "unmatched_refunds": sum(1 for r in rs if r["kind"] in ("void", "reversal")
                                     and int(str(r["amount_fen"])) not in amounts_set),
        }
    return out


def _fired(features: dict[str, float]) -> set[str]:
    return {r.id for r in RULES.rules if r.feature in features
            and r.fires(features[r.feature], int(features["sales"]))}


def test_ordinary_merchants_trip_no_per_day_risk_rule_and_the_planted_ones_their_pattern(
        merchants: list[SimMerchant], plan: risk_plants.RiskPlan, last_day: pa.Table) -> None:
    mcc = {m.merchant_no: m.mcc for m in merchants}
    planted = {p.merchant_no: p for p in plan.plants}
    assert sorted(p.pattern for p in plan.plants) == sorted(risk_plants.PATTERNS)
    assert len(planted) == 4
    assert merchants[0].merchant_no not in planted
    for day in DAYS[:-1]:
        table = risk_plants.day_table(plan, merchants, day, 42, "Asia/Shanghai")
        features = _per_merchant(table.to_pylist(), mcc)
        assert {no: _fired(f) for no, f in features.items() if _fired(f)} == {}
        silent = plan.of("silent_then_busy")
        assert silent is not None
        assert silent.merchant_no not in features
    features = _per_merchant(last_day.to_pylist(), mcc)
    fired = {no: _fired(f) for no, f in features.items() if _fired(f)}
    per_day = {p.merchant_no: set(p.rules) for p in plan.plants if p.pattern != "silent_then_busy"}
    assert fired == per_day  # the baseline rules of the silent merchant need the database's window (e2e test)
    silent = plan.of("silent_then_busy")
    assert silent is not None
    assert features[silent.merchant_no]["sales"] >= 10


def test_the_plan_is_deterministic_and_needs_enough_merchants(merchants: list[SimMerchant],
                                                              plan: risk_plants.RiskPlan) -> None:
    assert risk_plants.plan(merchants, DAYS, seed=42) == plan
    assert risk_plants.plan(merchants, DAYS, seed=7) != plan
    assert all(p.day == DAYS[-1] for p in plan.plants)
    assert risk_plants.plan(merchants[:6], DAYS, seed=42).plants == ()
    assert risk_plants.plan(merchants, [], seed=42).plants == ()


def test_the_silent_merchants_history_is_18_days_ending_20_days_before_its_plant_day(
        merchants: list[SimMerchant], plan: risk_plants.RiskPlan) -> None:
    history = risk_plants.history_table(plan, merchants, 42, "Asia/Shanghai")
    silent = plan.of("silent_then_busy")
    assert history is not None
    assert silent is not None
    assert set(history["merchant_no"].to_pylist()) == {silent.merchant_no}
    days = sorted({date.fromisoformat(str(t)[:10]) for t in history["occurred_at"].to_pylist()})
    assert days[0] == DAYS[-1] - timedelta(days=37)
    assert days[-1] == DAYS[-1] - timedelta(days=20)
    assert len(days) >= 15
    assert risk_plants.history_table(risk_plants.RiskPlan(), merchants, 42, "Asia/Shanghai") is None


def test_planted_references_are_unique_and_do_not_collide_with_the_days(last_day: pa.Table) -> None:
    refs = last_day["external_ref"].to_pylist()
    assert len(set(refs)) == len(refs)
