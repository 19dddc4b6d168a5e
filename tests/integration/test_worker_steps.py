"""The worker's cycle is an ordered list of named steps (settleguard.worker.STEPS): each gets one context built by
the composition root (time zone, settings) and returns its summary; a new domain joins by adding a step, without
editing the others. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from test_payout_send import SEND_AT, VALUE_DAY, ScriptedBank, make_payouts

from settleguard.cards.vault import Vault
from settleguard.notify.delivery import DeliverySettings
from settleguard.worker import STEPS, CycleContext, NamedStep, cycle


def test_the_cycle_runs_its_steps_in_order() -> None:
    assert [s.name for s in STEPS] == ["inbox", "day", "released", "cards", "send", "cases", "notices", "overdue",
                                       "recon", "backup", "risk_scan", "terminal_silence"]


def test_a_new_step_joins_the_cycle_and_sees_what_the_composition_root_passed(engine: Engine, vault: Vault,
                                                                               tmp_path: Path) -> None:
    make_payouts(engine, vault, tmp_path, [10_000])
    delivery = DeliverySettings(batch=3, cycle_seconds=5.0)
    seen: list[CycleContext] = []

    def scan(ctx: CycleContext) -> str:
        seen.append(ctx)
        return f"scanned at {ctx.now:%H:%M} in {ctx.tz}"

    steps = (*STEPS, NamedStep("extra_scan", scan))
    summary = cycle(engine, ScriptedBank(), vault, None, as_of=VALUE_DAY, now=SEND_AT, tz="Asia/Tokyo",
                    delivery=delivery, steps=steps)
    assert summary.send.sent == 1  # the payout steps ran as ever
    assert list(summary.steps) == ["inbox", "day", "released", "cards", "send", "cases", "notices", "overdue",
                                  "recon", "backup", "risk_scan", "terminal_silence", "extra_scan"]
    assert summary.steps["send"] is summary.send
    assert summary.steps["extra_scan"] == "scanned at 09:00 in Asia/Tokyo"
    (ctx,) = seen
    assert (ctx.tz, ctx.delivery, ctx.as_of, ctx.cards.timezone) == ("Asia/Tokyo", delivery, VALUE_DAY, "Asia/Tokyo")

    only_scan = cycle(engine, ScriptedBank(), vault, None, as_of=VALUE_DAY, now=SEND_AT + timedelta(minutes=1),
                      tz="UTC", steps=(NamedStep("extra_scan", scan),))
    assert list(only_scan.steps) == ["extra_scan"]
    assert only_scan.send.sent == 0  # a step not in the list does not run
    assert only_scan.cases is None
