"""The failover test's bank: ``settleguard simulate bank``'s HTTP app over a SimulatedBank that keeps its book.

Two records, both JSON lines, both the bank's own (nothing from settleguard's database):

- the book (``--state``): every instruction the bank executed or refused, by idempotency key, with the money
  it paid (channels/simulator.py); a key paid twice would show two entries with ``paid_fen`` > 0;
- the request log (``--requests``): every payment request that reached the bank, by key, before it is
  answered: a key requested more often than settleguard recorded send attempts for it means a recorded
  attempt was lost (asynchronous replication losing the last commits on failover).

No random faults: every payment succeeds unless the failover breaks the conversation, so what the test sees
is the failover's doing. Usage: ``python tests/ha/ha_bank.py --port N --state FILE --requests FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from settleguard.channels.http_bank import PAY_PATH
from settleguard.channels.simulator import SimulatedBank
from settleguard.sim.bank_server import create_app, serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class RequestLog:
    """ASGI middleware: append each payment request's ``req_sn`` to a file (one write per line)."""

    def __init__(self, app: Any, path: Path) -> None:
        self.app = app
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope.get("path") != PAY_PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def tally() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    try:
                        key = str(json.loads(b"".join(chunks))["req_sn"])
                    except (ValueError, KeyError, TypeError):
                        key = "?"
                    os.write(self.fd, (json.dumps({"key": key}) + "\n").encode())
            return msg

        await self.app(scope, tally, send)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--requests", type=Path, required=True)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    args = ap.parse_args()
    bank = SimulatedBank(7, args.state, card_fault_rates=(), attempt_fault_rates=())
    app = create_app(bank, latency_ms=args.latency_ms, timeout_seconds=5.0, seed=7)
    print(f"ha bank listening on {args.port}", flush=True)
    serve(RequestLog(app, args.requests), "127.0.0.1", args.port)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
