"""Run ``settleguard`` (normally ``settleguard worker``) against the chaos test's bank and clock.

The command line is settleguard's own (``cli.main.app``); only the composition root changes:

- the bank channel is a :class:`~settleguard.channels.simulator.SimulatedBank` with the fault rates, seed and
  shared state file given as JSON in ``SG_CHAOS_BANK`` (every worker process shares that one bank's book);
- the clock reads the ISO timestamp in the file named by ``SG_CHAOS_CLOCK``, which the test moves forward
  (retries, cool-downs and staleness bounds then pass in seconds instead of hours).

Usage: ``python tests/chaos/chaos_worker.py worker --interval 0.02 --json`` with ``SETTLEGUARD_DB`` set.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from functools import cached_property
from pathlib import Path

from settleguard.channels.base import BankChannel
from settleguard.channels.simulator import SimulatedBank
from settleguard.cli import main as cli_main
from settleguard.cli.runtime import Runtime


def bank_from_env() -> SimulatedBank:
    cfg = json.loads(os.environ["SG_CHAOS_BANK"])
    return SimulatedBank(int(cfg["seed"]), Path(cfg["state"]),
                         card_fault_rates=[tuple(x) for x in cfg["card_fault_rates"]],
                         attempt_fault_rates=[tuple(x) for x in cfg["attempt_fault_rates"]],
                         timeout_executed_rate=float(cfg["timeout_executed_rate"]))


class ChaosRuntime(Runtime):
    @cached_property
    def channel(self) -> BankChannel:
        return bank_from_env()

    def now(self) -> datetime:
        return datetime.fromisoformat(Path(os.environ["SG_CHAOS_CLOCK"]).read_text(encoding="utf-8").strip())


if __name__ == "__main__":
    cli_main.Runtime = ChaosRuntime  # type: ignore[misc]
    sys.exit(cli_main.app(sys.argv[1:], prog_name="settleguard"))
