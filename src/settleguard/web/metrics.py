"""Prometheus text exposition (format 0.0.4) for ``GET /metrics``, written by hand: HTTP requests
counted per method, route template and status in this process, and business gauges read from the
database on each scrape (payouts by status, money held, open cases)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # requests that matched no route share one label (no unbounded label values)


def escape(value: str) -> str:
    """A label value escaped as the text format requires (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}" if labels else ""


def family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float | int]],
           suffix: str = "") -> list[str]:
    """One metric family: HELP, TYPE and its samples."""
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        v = repr(float(value)) if isinstance(value, float) else str(int(value))
        out.append(f"{name}{suffix}{_labels(labels)} {v}")
    return out


class HttpMetrics:
    """Requests and their total duration per (method, route, status), in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.seconds: dict[tuple[str, str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        with self._lock:
            self.requests[key] += 1
            self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def snapshot(self) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], float]]:
        with self._lock:
            return dict(self.requests), dict(self.seconds)

    def lines(self) -> list[str]:
        counts, seconds = self.snapshot()
        keys = sorted(counts)
        label = [{"method": m, "route": r, "status": s} for m, r, s in keys]
        return (family("settleguard_http_requests_total", "counter", "HTTP requests by method, route and status",
                       zip(label, [counts[k] for k in keys], strict=True))
                + family("settleguard_http_request_duration_seconds_total", "counter",
                         "Seconds spent answering HTTP requests by method, route and status",
                         zip(label, [seconds[k] for k in keys], strict=True)))


class MetricsMiddleware:
    """Counts every HTTP request by its route template (``/api/v1/payouts/{payout_id}``), so ids do not
    become label values; requests that match no route count as ``unmatched``."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route: Any = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(scope.get("method", ""), str(path), status, time.perf_counter() - started)


def business_lines(payouts: Mapping[str, tuple[int, int]], cases: Mapping[str, int], open_statuses: Iterable[str],
                   payout_statuses: Iterable[str]) -> list[str]:
    """Gauges from the database: payouts and their fen by status (every status, zeros included),
    money held (held payouts), cases by status and open cases."""
    statuses = sorted(set(payout_statuses) | set(payouts))
    held = payouts.get("held", (0, 0))[1]
    open_set = set(open_statuses)
    case_statuses = sorted(set(cases) | open_set)
    return (family("settleguard_payouts", "gauge", "Payouts by status",
                   [({"status": s}, payouts.get(s, (0, 0))[0]) for s in statuses])
            + family("settleguard_payouts_amount_fen", "gauge", "Payout amounts in fen by status",
                     [({"status": s}, payouts.get(s, (0, 0))[1]) for s in statuses])
            + family("settleguard_held_amount_fen", "gauge", "Money held (挂账) in held payouts, fen", [({}, held)])
            + family("settleguard_cases", "gauge", "Cases by status",
                     [({"status": s}, cases.get(s, 0)) for s in case_statuses])
            + family("settleguard_open_cases", "gauge", "Cases still being worked on (open, waiting_bank, "
                     "waiting_merchant)", [({}, sum(cases.get(s, 0) for s in open_set))]))
