"""The archive rule (ops/partitions_model.py): a day is detached only when settled and reconciled; every missing
step is named with the day, zh then en; an empty partition is always archivable."""

from __future__ import annotations

from datetime import date

from settleguard.ops.partitions_model import DayFacts, refusals

DAY = date(2026, 11, 16)
READY = DayFacts(DAY, settlement_run_finished=True, unsettled_merchants=0, clearing_run_finished=True, open_breaks=0,
                 payouts_in_transit=0)


def test_a_settled_and_reconciled_day_may_be_detached() -> None:
    assert refusals(READY) == []


def test_each_missing_step_is_named_with_the_day() -> None:
    facts = DayFacts(DAY, settlement_run_finished=False, unsettled_merchants=2, clearing_run_finished=False,
                     open_breaks=3, payouts_in_transit=1)
    got = refusals(facts)
    assert len(got) == 5
    assert all(r.zh.startswith("2026-11-16") and "2026-11-16" in r.en for r in got)
    assert "settle --date 2026-11-16" in got[0].en
    assert "recon clearing --date 2026-11-16" in got[2].zh
    assert "3" in got[3].zh
    assert "open reconciliation break" in got[3].en
    assert "在途" in got[4].zh
    assert "in transit" in got[4].en


def test_an_empty_partition_is_always_archivable() -> None:
    empty = DayFacts(DAY, settlement_run_finished=False, unsettled_merchants=0, clearing_run_finished=False,
                     open_breaks=0, payouts_in_transit=0, has_rows=False)
    assert refusals(empty) == []
