"""What the terminal diagnostics talk about: a decoded message of a terminal's log and a finding. Pure.

A :class:`Message` keeps only what the analysis and a person need: the PAN is masked and the track, PIN and
IC-card fields are dropped as soon as a message is decoded (log_reader), so no finding can carry card data.
A :class:`Finding` names what is wrong (``kind``, a stable code), how bad it is, the taxonomy category
(shared/design/failure-taxonomy.md), zh/en titles and what the merchant and acquirer ops should do, with the
messages that show it (evidence) and when it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

# 60.3 network management codes (网络管理信息码)
SIGN_ON: Final = "001"
SIGN_OFF: Final = "002"
BATCH_UPLOAD_END: Final = frozenset({"202", "207"})
ECHO: Final = "301"
PARAMETER_DOWNLOAD: Final = "360"

SEVERITY: Final[dict[str, tuple[str, str]]] = {"high": ("严重", "high"), "medium": ("一般", "medium"),
                                               "low": ("提示", "low")}


@dataclass(slots=True)
class Message:
    """One logged message, decoded. ``fields`` maps field numbers to decoded text, card data already removed.

    Read-only by convention, not frozen: a log of a million messages builds a million of them, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) costs several times a plain one."""

    line: int
    at: datetime
    direction: str  # "TX" terminal to host, "RX" host to terminal
    terminal: str
    mti: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def trace(self) -> str:
        return self.get("11")

    @property
    def response_code(self) -> str:
        return self.get("39")

    @property
    def batch(self) -> str:
        """60.2, the batch number (批次号)."""
        return self.get("60")[2:8]

    @property
    def network_code(self) -> str:
        """60.3, the network management code (网络管理信息码)."""
        return self.get("60")[8:11]

    @property
    def amount_fen(self) -> int | None:
        text = self.get("4")
        return int(text) if text.isdigit() else None

    def evidence(self) -> dict[str, Any]:
        """What a person or a program sees of this message: no raw fields, no card data but the masked PAN."""
        out: dict[str, Any] = {"line": self.line, "at": self.at.isoformat(), "direction": self.direction,
                               "mti": self.mti}
        for name, key in (("trace", "11"), ("rrn", "37"), ("auth_code", "38"), ("response_code", "39"),
                          ("pan", "2"), ("processing_code", "3"), ("terminal_id", "41")):
            if self.get(key):
                out[name] = self.get(key)
        if self.amount_fen is not None:
            out["amount_fen"] = self.amount_fen
        if self.get("60"):
            out["batch"] = self.batch
            out["network_code"] = self.network_code
        return out


@dataclass(frozen=True, slots=True)
class BadLine:
    """A log line that could not be read or decoded: its number, the terminal if known, and why (zh/en)."""

    line: int
    zh: str
    en: str
    terminal: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """A batch's totals (field 48 of a 0500, or what the host approved): debit (消费 sales) and credit (撤销 /
    退货 voids and refunds), amounts in fen. Domestic and foreign cards are added up."""

    debit_fen: int = 0
    debit_count: int = 0
    credit_fen: int = 0
    credit_count: int = 0

    @property
    def net_fen(self) -> int:
        return self.debit_fen - self.credit_fen

    def as_dict(self) -> dict[str, int]:
        return {"debit_fen": self.debit_fen, "debit_count": self.debit_count, "credit_fen": self.credit_fen,
                "credit_count": self.credit_count}


@dataclass(frozen=True, slots=True)
class Difference:
    """One transaction on which terminal and host disagree (对账差异), by trace number (流水号) and RRN (参考号).

    ``kind``: ``missing`` the terminal counts it, the host has no approved one; ``extra`` the host approved it,
    the terminal does not count it; ``different`` both have it with other data (``fields``: amount, rrn,
    auth_code, trace, pan, terminal_id, merchant_id, processing_code). ``probable``: inferred from the totals
    alone (no batch upload to compare with), by an amount that matches the gap."""

    kind: str
    trace: str
    rrn: str = ""
    terminal_amount_fen: int | None = None
    host_amount_fen: int | None = None
    fields: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()
    probable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "trace": self.trace, "rrn": self.rrn,
                "terminal_amount_fen": self.terminal_amount_fen, "host_amount_fen": self.host_amount_fen,
                "fields": list(self.fields), "lines": list(self.lines), "probable": self.probable}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    severity: str  # high | medium | low
    category: str  # failure taxonomy
    terminal: str
    at: datetime | None
    title_zh: str
    title_en: str
    merchant_zh: str
    merchant_en: str
    ops_zh: str
    ops_en: str
    detail_zh: str = ""
    detail_en: str = ""
    evidence: tuple[Message, ...] = ()
    lines: tuple[int, ...] = ()  # evidence by line only (an undecodable line)
    differences: tuple[Difference, ...] = ()  # what disagrees, transaction by transaction
    batch: str = ""  # 60.2 of a settlement finding
    terminal_totals: Totals | None = None  # field 48 of the terminal's 0500
    host_totals: Totals | None = None  # the approved, not reversed transactions of that batch in the log
    owner: str = ""  # who acts first: merchant, field_engineer, acquirer_ops
    steps: tuple[str, ...] = ()  # the seed's steps (re_sign_in, restart, another_network, …; terminals.checks)

    def as_dict(self) -> dict[str, Any]:
        out = self._base_dict()
        if self.differences:
            out["differences"] = [d.as_dict() for d in self.differences]
        if self.terminal_totals is not None or self.host_totals is not None:
            out["totals"] = {"batch": self.batch,
                             "terminal": self.terminal_totals.as_dict() if self.terminal_totals else None,
                             "host": self.host_totals.as_dict() if self.host_totals else None}
        return out

    def _base_dict(self) -> dict[str, Any]:
        return {"terminal": self.terminal, "code": self.kind, "kind": self.kind, "category": self.category,
                "severity": self.severity, "at": self.at.isoformat() if self.at else None,
                "title_zh": self.title_zh, "title_en": self.title_en, "detail_zh": self.detail_zh,
                "detail_en": self.detail_en, "merchant_zh": self.merchant_zh, "merchant_en": self.merchant_en,
                "ops_zh": self.ops_zh, "ops_en": self.ops_en, "owner": self.owner, "steps": list(self.steps),
                "evidence": [m.evidence() for m in self.evidence] or [{"line": n} for n in self.lines]}


_DIFFERENCE_WORDS: Final = {"missing": ("主机缺失", "missing at the host"),
                            "extra": ("终端未计入", "not counted by the terminal"),
                            "different": ("数据不同", "different")}


def describe_difference(d: Difference) -> str:
    """One line, zh then en: what differs, the trace number and RRN, both amounts (yuan), the log lines."""
    from settleguard.money import format_yuan

    zh, en = _DIFFERENCE_WORDS.get(d.kind, (d.kind, d.kind))
    if d.probable:
        zh, en = f"可能{zh}", f"probably {en}"
    parts = [f"{zh} {en}", f"流水号 trace {d.trace}"]
    if d.rrn:
        parts.append(f"参考号 RRN {d.rrn}")
    if d.terminal_amount_fen is not None:
        parts.append(f"终端金额 terminal {format_yuan(d.terminal_amount_fen)}")
    if d.host_amount_fen is not None:
        parts.append(f"主机金额 host {format_yuan(d.host_amount_fen)}")
    if d.fields:
        parts.append(f"字段 fields {', '.join(d.fields)}")
    if d.lines:
        parts.append(f"行 lines {', '.join(str(n) for n in d.lines)}")
    return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ImportedTxn:
    """A POS transaction of the acquirer's import (table transactions, columns of migration 0016) as the log
    comparison needs it: trace number (stan), RRN, authorisation code, amount in fen, credit (void / refund) or
    not, and the import's own reference."""

    ref: str
    amount_fen: int
    stan: str | None = None
    rrn: str | None = None
    auth_code: str | None = None
    credit: bool = False
