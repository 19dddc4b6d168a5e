"""Made-up but realistic POS terminal message logs (终端报文日志) for tests and the demo.

A :class:`LogWriter` plays one terminal talking to the host: each call appends the request (TX) and, unless
the fault says otherwise, the answer (RX), encoded with the project's CUP POS spec (terminals/cup_spec.py)
and written in the log format of docs/terminals.md. :func:`clean_log` is a day without a fault;
:data:`SCENARIOS` builds a log that shows one finding kind each; :func:`demo_log` joins a few terminals.
Card numbers are made up (Luhn-valid test numbers); nothing here is real.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final

import iso8583

from settleguard.terminals.cup_spec import CUP_POS

BEIJING: Final = timezone(timedelta(hours=8))
START: Final = datetime(2026, 12, 7, 8, 30, tzinfo=BEIJING)
TPDU_HEADER: Final = "6000030000" + "603100000000"  # TPDU (to NII 0003) + the 6-byte application header
TEST_PAN: Final = "6222020200112233446"  # Luhn-valid, made up


def encode(fields: dict[str, str]) -> bytes:
    """The wire bytes (after the 2-byte length) of a message given by its decoded fields (MTI in "t")."""
    raw, _ = iso8583.encode({"h": TPDU_HEADER, **fields}, CUP_POS)
    return bytes(raw)


@dataclass
class LogWriter:
    terminal: str = "10000001"
    merchant: str = "898110000000001"
    at: datetime = START
    batch: int = 1
    trace: int = 0
    lines: list[str] = field(default_factory=list)

    def _line(self, direction: str, fields: dict[str, str], after: float = 1.0) -> None:
        self.at += timedelta(seconds=after)
        msg = {**fields, "41": self.terminal, "42": self.merchant}
        self.lines.append(f"{self.at.isoformat()} {direction} {self.terminal} {encode(msg).hex().upper()}")

    def _next_trace(self) -> str:
        self.trace += 1
        return f"{self.trace:06d}"

    def _f60(self, kind: str, code: str) -> str:
        return f"{kind}{self.batch:06d}{code}"

    def network(self, code: str, answer: str | None = "00", extra: dict[str, str] | None = None) -> None:
        """0800/0810 with 60.3 ``code`` (001 sign-on, 301 echo, 360 parameters); ``answer`` None: no answer."""
        trace = self._next_trace()
        req = {"t": "0800", "11": trace, "60": self._f60("00", code), **(extra or {})}
        if code == "001":
            req["63"] = "303120"  # operator "01 "
        self._line("TX", req, after=30)
        if answer is not None:
            resp = {"t": "0810", "11": trace, "12": self.at.strftime("%H%M%S"), "13": self.at.strftime("%m%d"),
                    "32": "48020000", "37": f"{self.at:%H%M%S}{trace}", "39": answer,
                    "60": self._f60("00", code)}
            if code == "001" and answer == "00":
                resp["62"] = "11" * 24  # working keys (made up)
            self._line("RX", resp)

    def sign_in(self, answer: str | None = "00") -> None:
        self.network("001", answer)

    def echo(self, answer: str | None = "00") -> None:
        self.network("301", answer)

    def parameter_download(self, answer: str | None = "00") -> None:
        self.network("360", answer)

    def _sale_fields(self, mti: str, trace: str, amount: int) -> dict[str, str]:
        return {"t": mti, "2": TEST_PAN, "3": "000000", "4": f"{amount:012d}", "11": trace, "22": "021",
                "25": "00", "35": TEST_PAN + "D30122011234567", "49": "156", "52": "A1B2C3D4E5F60718",
                "53": "2600000000000000", "60": self._f60("22", "000"), "64": "0102030405060708"}

    def sale(self, amount: int, answer: str | None = "00", answer_after: float = 2.0) -> str:
        """A sale; ``answer`` None: the host never answers. Returns the trace number."""
        trace = self._next_trace()
        self._line("TX", self._sale_fields("0200", trace, amount), after=45)
        if answer is not None:
            resp = {"t": "0210", "2": TEST_PAN, "3": "000000", "4": f"{amount:012d}", "11": trace,
                    "12": self.at.strftime("%H%M%S"), "13": self.at.strftime("%m%d"), "25": "00", "32": "48020000",
                    "37": f"{self.at:%H%M%S}{trace}", "39": answer, "49": "156", "60": self._f60("22", "000"),
                    "64": "0102030405060708"}
            if answer == "00":
                resp["38"] = f"A{trace[1:]}"
            self._line("RX", resp, after=answer_after)
        return trace

    def reversal(self, trace: str, amount: int, answer: str | None = "00") -> None:
        """The 0400 the terminal sends for an unanswered sale (same trace number), then the 0410."""
        req = {k: v for k, v in self._sale_fields("0400", trace, amount).items() if k not in ("35", "52")}
        req["39"] = "98"  # reason: no answer
        self._line("TX", req, after=65)
        if answer is not None:
            self._line("RX", {"t": "0410", "3": "000000", "4": f"{amount:012d}", "11": trace, "39": answer,
                              "60": self._f60("22", "000")})

    def settle(self, sales: list[int], result: str = "1", upload: str = "full") -> None:
        """0500 with field 48 totals; the 0510 flags ``result`` (1 balanced, 2 not, 3 error) for domestic cards.
        After a "2": ``upload`` "full" (0320 details then the batch end), "partial" (details only), "none"."""
        total, count = sum(sales), len(sales)
        block = f"{total:012d}{count:03d}{0:012d}{0:03d}"
        f48 = f"{block}0{0:012d}{0:03d}{0:012d}{0:03d}0"
        trace = self._next_trace()
        self._line("TX", {"t": "0500", "11": trace, "48": f48, "49": "156", "60": self._f60("00", "201"),
                          "63": "303120"}, after=60)
        answer48 = f48[:30] + result + f48[31:61] + "1"
        self._line("RX", {"t": "0510", "11": trace, "12": self.at.strftime("%H%M%S"), "13": self.at.strftime("%m%d"),
                          "37": f"{self.at:%H%M%S}{trace}", "39": "00", "48": answer48, "49": "156",
                          "60": self._f60("00", "201")})
        if result == "2" and upload != "none":
            for amount in sales:
                t = self._next_trace()
                self._line("TX", {"t": "0320", "2": TEST_PAN, "3": "000000", "4": f"{amount:012d}", "11": t,
                                  "60": self._f60("00", "201")})
                self._line("RX", {"t": "0330", "11": t, "39": "00", "60": self._f60("00", "201")})
            if upload == "full":
                t = self._next_trace()
                self._line("TX", {"t": "0320", "11": t, "48": f"{count:04d}", "60": self._f60("00", "202")})
                self._line("RX", {"t": "0330", "11": t, "39": "00", "60": self._f60("00", "202")})
        self.batch += 1


def clean_log(terminal: str = "10000001") -> list[str]:
    """A normal day: sign-in, parameters, an echo, three sales, a balanced settlement."""
    w = LogWriter(terminal=terminal)
    w.sign_in()
    w.parameter_download()
    w.echo()
    amounts = [12_800, 3_550, 99_900]
    for a in amounts:
        w.sale(a)
    w.settle(amounts)
    return w.lines


def _sign_in_mac_error(w: LogWriter) -> None:
    w.sign_in("A0")


def _no_sign_in(w: LogWriter) -> None:
    w.sale(1_000)


def _timeout_reversal(w: LogWriter) -> None:
    w.sign_in()
    trace = w.sale(25_000, answer=None)
    w.reversal(trace, 25_000)


def _code(code: str) -> Callable[[LogWriter], None]:
    def run(w: LogWriter) -> None:
        w.sign_in()
        w.sale(5_000, answer=code)
    return run


def _unbalanced(w: LogWriter) -> None:
    w.sign_in()
    amounts = [10_000, 20_000]
    for a in amounts:
        w.sale(a)
    w.settle(amounts, result="2", upload="full")


def _unbalanced_interrupted(w: LogWriter) -> None:
    w.sign_in()
    w.sale(10_000)
    w.settle([10_000], result="2", upload="partial")


def _settlement_error(w: LogWriter) -> None:
    w.sign_in()
    w.sale(10_000)
    w.settle([10_000], result="3")


def _echo_failed(w: LogWriter) -> None:
    w.sign_in()
    w.echo(None)
    w.echo("96")
    w.sale(100)  # the log runs on past the timeout


def _parameter_download(w: LogWriter) -> None:
    w.sign_in()
    w.parameter_download("96")


def _reversal_only(w: LogWriter) -> None:
    w.sign_in()
    w.reversal("000777", 500)


def _no_response(w: LogWriter) -> None:
    w.sign_in()
    w.reversal("000777", 800, answer=None)
    w.sale(900)
    w.sale(1_000)  # the log runs on past the timeout


# finding kind -> how to produce a log that shows it (after it, every scenario may show others too)
SCENARIOS: Final[dict[str, Callable[[LogWriter], None]]] = {
    "sign_in_failed": _sign_in_mac_error,
    "no_sign_in": _no_sign_in,
    "sale_timeout": _timeout_reversal,
    "no_response": _no_response,
    "reversal_sent": _reversal_only,
    "key_error": _code("A0"),
    "terminal_not_registered": _code("97"),
    "cut_over": _code("90"),
    "duplicate": _code("94"),
    "switch_fault": _code("96"),
    "issuer_timeout": _code("98"),
    "reconcile_error": _code("95"),
    "declined": _code("51"),
    "unknown_response_code": _code("Q7"),
    "settlement_unbalanced": _unbalanced,
    "settlement_error": _settlement_error,
    "batch_upload_incomplete": _unbalanced_interrupted,
    "echo_failed": _echo_failed,
    "parameter_download_failed": _parameter_download,
}


def scenario_log(kind: str, terminal: str = "10000001") -> list[str]:
    w = LogWriter(terminal=terminal)
    SCENARIOS[kind](w)
    return w.lines


def demo_log() -> list[str]:
    """Three terminals: a clean one, one with a MAC error after a key change and a timed-out sale, one with an
    unbalanced batch; with a comment and a blank line, as real logs have."""
    w = LogWriter(terminal="10000002")
    w.sign_in("A0")
    w.sign_in()
    trace = w.sale(25_000, answer=None)
    w.reversal(trace, 25_000)
    w.sale(8_800)
    w2 = LogWriter(terminal="10000003")
    _unbalanced(w2)
    return ["# 终端报文日志 terminal message log (settleguard demo)", *clean_log("10000001"), "",
            *w.lines, *w2.lines]
