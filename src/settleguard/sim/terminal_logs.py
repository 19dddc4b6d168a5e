"""Made-up but realistic POS terminal message logs (终端报文日志) for tests and the demo.

A :class:`LogWriter` plays one terminal talking to the host: each call appends the request (TX) and, unless
the fault says otherwise, the answer (RX), encoded with the project's CUP POS spec (terminals/cup_spec.py)
and written in the log format of docs/terminals.md. :func:`clean_log` is a day without a fault;
:data:`SCENARIOS` builds a log that shows one finding kind each; :data:`FAULTS` the faults issue 21 asks
the simulator to inject (MAC error after a key change, timeouts with reversals, an unbalanced batch, duplicates,
data mismatch, …) with the finding that names each; :func:`demo_log` joins a few terminals.
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


TIMEOUT_SECONDS: Final = 60  # the terminal's (and the analyzer's default) timeout


@dataclass(frozen=True)
class Sale:
    """A sale as one side keeps it: trace number (流水号), amount in fen, RRN (参考号), authorisation code."""

    trace: str
    amount: int
    rrn: str = ""
    auth: str = ""


@dataclass
class LogWriter:
    """One terminal and the host. Besides the log it keeps both sides' books of the current batch: ``journal``
    what the terminal counts (approved answers it received in time), ``host`` what the host approved and did
    not reverse; :meth:`settle` sends the journal's totals and the host answers balanced when both agree."""

    terminal: str = "10000001"
    merchant: str = "898110000000001"
    at: datetime = START
    batch: int = 1
    trace: int = 0
    lines: list[str] = field(default_factory=list)
    journal: dict[str, Sale] = field(default_factory=dict)
    host: dict[str, Sale] = field(default_factory=dict)

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

    def sale(self, amount: int, answer: str | None = "00", answer_after: float = 2.0, *, trace: str | None = None,
             host_amount: int | None = None, host_trace: str | None = None, receipt_auth: str | None = None) -> str:
        """A sale; ``answer`` None: the host never answers; ``answer_after`` beyond the timeout: the host approves
        but the terminal has given up (it does not count the sale). Faults: ``trace`` reuses a trace number
        (parameters reset), ``host_amount`` / ``host_trace`` the answer carries another amount / trace number,
        ``receipt_auth`` the terminal keeps (prints and uploads) another authorisation code than the host's.
        Returns the trace number."""
        trace = trace or self._next_trace()
        self._line("TX", self._sale_fields("0200", trace, amount), after=45)
        if answer is not None:
            paid = amount if host_amount is None else host_amount
            resp = {"t": "0210", "2": TEST_PAN, "3": "000000", "4": f"{paid:012d}", "11": host_trace or trace,
                    "12": self.at.strftime("%H%M%S"), "13": self.at.strftime("%m%d"), "25": "00", "32": "48020000",
                    "37": f"{self.at:%H%M%S}{trace}", "39": answer, "49": "156", "60": self._f60("22", "000"),
                    "64": "0102030405060708"}
            if answer == "00":
                resp["38"] = f"A{trace[1:]}"
            self._line("RX", resp, after=answer_after)
            if answer == "00":
                self.host[trace] = Sale(trace, paid, resp["37"], resp["38"])
                if answer_after <= TIMEOUT_SECONDS:
                    self.journal[trace] = Sale(trace, amount, resp["37"], receipt_auth or resp["38"])
        return trace

    def journal_only(self, amount: int) -> str:
        """Fault: the terminal counts a sale the host never saw (a corrupted journal, an offline sale lost)."""
        trace = self._next_trace()
        self.journal[trace] = Sale(trace, amount, f"{self.at:%H%M%S}{trace}", f"A{trace[1:]}")
        return trace

    def other(self, mti: str) -> None:
        """Fault: a message of a type the CUP POS conversation does not have (a foreign or broken application)."""
        self._line("TX", {"t": mti, "11": self._next_trace()})

    def reversal(self, trace: str, amount: int, answer: str | None = "00") -> None:
        """The 0400 the terminal sends for an unanswered sale (same trace number), then the 0410."""
        req = {k: v for k, v in self._sale_fields("0400", trace, amount).items() if k not in ("35", "52")}
        req["39"] = "98"  # reason: no answer
        self._line("TX", req, after=65)
        self.journal.pop(trace, None)
        if answer is not None:
            self._line("RX", {"t": "0410", "3": "000000", "4": f"{amount:012d}", "11": trace, "39": answer,
                              "60": self._f60("22", "000")})
            if answer == "00":
                self.host.pop(trace, None)

    def settle(self, sales: list[int] | None = None, result: str | None = None, upload: str = "full") -> None:
        """0500 with field 48 totals of the terminal's journal (or of ``sales``, amounts); the 0510 flags
        ``result`` (1 balanced, 2 not, 3 error; by default 1 when journal and host agree, else 2) for domestic
        cards. After a "2": ``upload`` "full" (0320 details then the batch end), "partial" (details only; the
        first half), "none". The books start again with the next batch."""
        counted = list(self.journal.values()) if sales is None else [
            Sale(f"9{i:05d}", a, "", "") for i, a in enumerate(sales)]
        if sales is not None and [s.amount for s in self.journal.values()] == sales:
            counted = list(self.journal.values())
        if result is None:
            agree = sorted((s.trace, s.amount) for s in counted) == sorted((s.trace, s.amount)
                                                                            for s in self.host.values())
            result = "1" if agree else "2"
        total, count = sum(s.amount for s in counted), len(counted)
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
            # one 0320 per transaction (IC-style detail upload): the original trace, amount, RRN and auth code
            for s in counted if upload == "full" else counted[: max(1, len(counted) // 2)]:
                detail = {"t": "0320", "2": TEST_PAN, "3": "000000", "4": f"{s.amount:012d}", "11": s.trace,
                          "60": self._f60("00", "201")}
                if s.rrn:
                    detail |= {"37": s.rrn, "38": s.auth}
                self._line("TX", detail)
                self._line("RX", {"t": "0330", "11": s.trace, "39": "00", "60": self._f60("00", "201")})
            if upload == "full":
                t = self._next_trace()
                self._line("TX", {"t": "0320", "11": t, "48": f"{count:04d}", "60": self._f60("00", "202")})
                self._line("RX", {"t": "0330", "11": t, "39": "00", "60": self._f60("00", "202")})
        self.batch += 1
        self.journal, self.host = {}, {}


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


def _mac_error_after_key_change(w: LogWriter) -> None:
    """A sale, then a sign-in that changes the working keys which the terminal does not take: the next sale's MAC
    fails (A0); a new sign-in mends it."""
    w.sign_in()
    w.sale(12_000)
    w.sign_in()  # key change (new working keys in the 0810's field 62)
    w.sale(5_000, answer="A0")
    w.sign_in()
    w.sale(5_000)


def _unbalanced(w: LogWriter) -> None:
    """The host approves a sale whose answer comes after the terminal gave up: the host has one more sale than
    the terminal's 0500 counts; the batch upload shows which (extra at the host)."""
    w.sign_in()
    for a in (10_000, 20_000):
        w.sale(a)
    w.sale(15_000, answer_after=TIMEOUT_SECONDS + 30)
    w.settle()


def _unbalanced_journal(w: LogWriter) -> None:
    """The terminal counts a sale the host never saw; the batch upload names it (missing at the host)."""
    w.sign_in()
    w.sale(10_000)
    w.journal_only(6_600)
    w.settle()


def _data_mismatch(w: LogWriter) -> None:
    """The host's answer carries another amount than the terminal asked for."""
    w.sign_in()
    w.sale(10_000, host_amount=1_000)


def _duplicate_trace(w: LogWriter) -> None:
    """The terminal's parameters were reset: a trace number is used twice in one batch and approved twice."""
    w.sign_in()
    trace = w.sale(3_000)
    w.sale(4_500, trace=trace)


def _unknown_message(w: LogWriter) -> None:
    w.sign_in()
    w.other("0100")


def _unbalanced_interrupted(w: LogWriter) -> None:
    w.sign_in()
    w.sale(10_000)
    w.sale(7_000)
    w.journal_only(1_000)
    w.settle(upload="partial")


def _settlement_error(w: LogWriter) -> None:
    w.sign_in()
    w.sale(10_000)
    w.settle(result="3")


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
    "key_error": _mac_error_after_key_change,
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
    "data_mismatch": _data_mismatch,
    "unknown_message": _unknown_message,
}

# the faults issue 21 asks the simulator to inject: name -> (how, the finding that names it)
FAULTS: Final[dict[str, tuple[Callable[[LogWriter], None], str]]] = {
    "mac_error_after_key_change": (_mac_error_after_key_change, "key_error"),
    "timeout_with_reversal": (_timeout_reversal, "sale_timeout"),
    "unbalanced_batch": (_unbalanced, "settlement_unbalanced"),
    "unbalanced_batch_terminal_counts_more": (_unbalanced_journal, "settlement_unbalanced"),
    "interrupted_batch_upload": (_unbalanced_interrupted, "batch_upload_incomplete"),
    "duplicate_94": (_code("94"), "duplicate"),
    "duplicate_trace": (_duplicate_trace, "duplicate"),
    "data_mismatch": (_data_mismatch, "data_mismatch"),
    "unknown_message": (_unknown_message, "unknown_message"),
}


def fault_log(fault: str, terminal: str = "10000001") -> list[str]:
    w = LogWriter(terminal=terminal)
    FAULTS[fault][0](w)
    return w.lines


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
    _unbalanced_journal(w2)
    return ["# 终端报文日志 terminal message log (settleguard demo)", *clean_log("10000001"), "",
            *w.lines, *w2.lines]
