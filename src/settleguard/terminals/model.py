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


@dataclass(frozen=True, slots=True)
class Message:
    """One logged message, decoded. ``fields`` maps field numbers to decoded text, card data already removed."""

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
                          ("pan", "2")):
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

    def as_dict(self) -> dict[str, Any]:
        return {"terminal": self.terminal, "code": self.kind, "kind": self.kind, "category": self.category,
                "severity": self.severity, "at": self.at.isoformat() if self.at else None,
                "title_zh": self.title_zh, "title_en": self.title_en, "detail_zh": self.detail_zh,
                "detail_en": self.detail_en, "merchant_zh": self.merchant_zh, "merchant_en": self.merchant_en,
                "ops_zh": self.ops_zh, "ops_en": self.ops_en,
                "evidence": [m.evidence() for m in self.evidence] or [{"line": n} for n in self.lines]}
