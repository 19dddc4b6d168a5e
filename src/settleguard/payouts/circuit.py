"""A circuit breaker per receiving bank. Pure.

closed     payouts flow; each system or network fault of the bank is counted within a window.
           ``threshold`` faults within ``window`` open the circuit.
open       nothing is sent to the bank; after ``cool_down`` the next payout is sent alone as a
           probe (half_open).
half_open  exactly one payout (the probe) is in flight; its success closes the circuit, a
           fault opens it again for another cool-down; any other answer (a card problem, say)
           says the bank is up and closes it. A probe whose answer never came (its worker was
           killed; the payout is then inquired about, which does not count here) is given up
           after a cool-down counted from when it went out, and another payout probes.

Only ``system_or_network_fault`` counts: a wrong card number is not the bank's fault.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 20
    window: timedelta = timedelta(minutes=5)
    cool_down: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Circuit:
    bank_code: str
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    window_started_at: datetime | None = None
    opened_at: datetime | None = None  # when it opened; while half open, when the probe went out
    probe_payout_id: int | None = None

    def allows(self, now: datetime, policy: BreakerPolicy) -> int:
        """How many payouts may be sent now: unlimited (-1), one probe (1) or none (0)."""
        if self.state is CircuitState.CLOSED:
            return -1
        # Open: the cool-down is over. Half open: the probe has had a whole cool-down to answer and
        # did not (lost with its worker): another payout probes.
        if self.opened_at is not None and now - self.opened_at >= policy.cool_down:
            return 1
        return 0

    def probe(self, payout_id: int, now: datetime) -> Circuit:
        """The cool-down is over and ``payout_id`` goes out alone at ``now``."""
        return replace(self, state=CircuitState.HALF_OPEN, probe_payout_id=payout_id, opened_at=now)

    def record(self, payout_id: int, fault: bool, now: datetime, policy: BreakerPolicy) -> Circuit:
        """Count one answer of the bank (``fault``: a system or network fault)."""
        if self.state is CircuitState.HALF_OPEN:
            if payout_id != self.probe_payout_id:
                return self
            if fault:
                return replace(self, state=CircuitState.OPEN, opened_at=now, probe_payout_id=None)
            return Circuit(self.bank_code)
        if self.state is CircuitState.OPEN:
            return self  # answers to payouts sent before the circuit opened
        if not fault:
            return self
        if self.window_started_at is None or now - self.window_started_at > policy.window:
            started, failures = now, 1
        else:
            started, failures = self.window_started_at, self.failures + 1
        if failures >= policy.threshold:
            return replace(self, state=CircuitState.OPEN, failures=failures, window_started_at=started, opened_at=now)
        return replace(self, failures=failures, window_started_at=started)
