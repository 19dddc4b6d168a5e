"""The self-service troubleshooter (自助排障): symptoms, the checks each symptom runs, and how a check judges
what it read. Pure: the service reads live data through the repositories and hands plain facts in here.

A merchant picks a symptom (:class:`Symptom`, labels.TROUBLESHOOT_SYMPTOM: 钱没到账, 结算失败, 签到失败, 连不上网,
凭证校验码不一致, 余额不足/被扣款); :data:`PLAN` names the checks that apply (:class:`Check`: payout status and its
diagnosis, settlement card, terminal findings, recent failures, reconciliation breaks). Each check gives an
:class:`Outcome` (ok, warn, fail), what it found and what to do, zh then en. What to do comes in two kinds:

- ``steps``: what the merchant reads — a diagnosis's ``for_merchant`` guidance, a terminal finding's merchant
  text, or neutral words about what the platform does by itself; never an operations instruction;
- ``ops``: what support or operations staff do (a diagnosis's full guidance beyond the merchant's steps, a
  terminal finding's ops text, the break to work). Shown only in the console and with ``--staff``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from settleguard.diagnosis.model import NOTHING_TO_DO, Diagnosis

RECENT_DAYS: Final = 30  # how far back payouts, failures are read
MAX_PAYOUTS: Final = 10  # recent payouts judged (every payout in trouble is judged, up to MAX_TROUBLE)
MAX_TROUBLE: Final = 50


class Symptom(enum.StrEnum):
    MONEY_NOT_ARRIVED = "money_not_arrived"  # 钱没到账
    SETTLEMENT_FAILED = "settlement_failed"  # 结算失败
    SIGN_IN_FAILED = "sign_in_failed"  # 签到失败
    CANNOT_CONNECT = "cannot_connect"  # 连不上网
    CHECK_CODE_MISMATCH = "check_code_mismatch"  # 凭证校验码不一致
    BALANCE_DEBITED = "balance_debited"  # 余额不足 / 被扣款


class Check(enum.StrEnum):
    PAYOUTS = "payouts"
    CARD = "card"
    TERMINALS = "terminals"
    FAILURES = "failures"
    RECON = "recon"


class Outcome(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return {"ok": 0, "warn": 1, "fail": 2}[self.value]


C = Check
PLAN: Final[Mapping[Symptom, tuple[Check, ...]]] = {
    Symptom.MONEY_NOT_ARRIVED: (C.PAYOUTS, C.CARD, C.FAILURES, C.RECON),
    Symptom.SETTLEMENT_FAILED: (C.PAYOUTS, C.FAILURES, C.CARD),
    Symptom.SIGN_IN_FAILED: (C.TERMINALS,),
    Symptom.CANNOT_CONNECT: (C.TERMINALS,),
    Symptom.CHECK_CODE_MISMATCH: (C.TERMINALS, C.RECON),
    Symptom.BALANCE_DEBITED: (C.PAYOUTS, C.RECON, C.FAILURES),
}
ALL_CHECKS: Final = tuple(Check)


class Text(NamedTuple):
    zh: str
    en: str

    def of(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


# What the merchant can do about the symptom itself whatever the checks found (the seed's steps), last in the list.
ADVICE: Final[Mapping[Symptom, tuple[Text, ...]]] = {
    Symptom.MONEY_NOT_ARRIVED: (Text("银行入账可能有延迟，请以结算卡所在银行的入账记录为准；超过 2 个工作日仍未到账，请点击“开工单”",
                                     "a bank may credit late: check the card's account; if nothing arrives within 2 "
                                     "business days, open a case"),),
    Symptom.SETTLEMENT_FAILED: (Text("按上面的提示处理后，款项会自动重新出款，不需要重复申请",
                                     "once the above is done the money is paid again by itself; no need to ask again"),),
    Symptom.SIGN_IN_FAILED: (Text("先重启终端，确认网络正常后重新签到；连续签到失败请联系客服，不要反复尝试",
                                  "restart the terminal, check the network, then sign in again; if it keeps failing, "
                                  "contact service instead of retrying"),),
    Symptom.CANNOT_CONNECT: (Text("重启终端；检查网线、Wi-Fi 或 SIM 卡信号，必要时换一个网络再试",
                                  "restart the terminal; check the cable, Wi-Fi or SIM signal, try another network"),),
    Symptom.CHECK_CODE_MISMATCH: (Text("保留交易小票，不要重复刷卡收款；请开工单，我们会核对终端与主机的交易记录",
                                       "keep the receipt and do not charge the card again; open a case so that the "
                                       "terminal's and the host's records are compared"),),
    Symptom.BALANCE_DEBITED: (Text("退货或差错调整会从后续结算款中扣回，明细见对账单；如有不认可的扣款，请开工单",
                                   "refunds and adjustments are netted from later payouts (see the statement); open a "
                                   "case for any deduction you do not recognise"),),
}
CONFIRMING: Final = Text("银行正在确认这笔出款的结果，请耐心等待，不需要您处理",
                         "The bank is confirming this payout; nothing to do for now")
WAITING: Final = Text(*NOTHING_TO_DO)

FAIL_STATUSES: Final = frozenset({"held", "failed", "returned"})
WARN_STATUSES: Final = frozenset({"needs_review", "retry_scheduled", "result_unknown", "inquiry"})
UNCLEAR: Final = frozenset({"result_unknown", "inquiry"})
IN_TRANSIT: Final = frozenset({"created", "submitted"})
TROUBLE: Final = FAIL_STATUSES | WARN_STATUSES


@dataclass(frozen=True)
class Result:
    """What one check found (``found``), what the merchant does (``steps``), what staff do (``ops``), and the
    evidence: payouts (linked to a case), reconciliation breaks and terminal findings by id."""

    check: Check
    outcome: Outcome
    found: tuple[Text, ...]
    steps: tuple[Text, ...] = ()
    ops: tuple[Text, ...] = ()
    payout_ids: tuple[int, ...] = ()
    break_ids: tuple[int, ...] = ()
    finding_ids: tuple[int, ...] = ()

    def to_dict(self, lang: str, staff: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check.value, "outcome": self.outcome.value,
            "found": [t.of(lang) for t in self.found], "steps": [t.of(lang) for t in self.steps],
            "payout_ids": list(self.payout_ids), "break_ids": list(self.break_ids),
            "finding_ids": list(self.finding_ids)}
        if staff:
            out["ops"] = [t.of(lang) for t in self.ops]
        return out


def unique(items: Iterable[Text]) -> tuple[Text, ...]:
    seen: dict[Text, None] = {}
    for t in items:
        seen.setdefault(t, None)
    return tuple(seen)


def plan(symptom: Symptom | None) -> tuple[Check, ...]:
    return ALL_CHECKS if symptom is None else PLAN[symptom]


def when(at: datetime | date | None, zone: ZoneInfo) -> str:
    """Local time to the second (a date as itself)."""
    if at is None:
        return "-"
    if isinstance(at, datetime):
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    return at.isoformat()


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _texts(zh: Sequence[str], en: Sequence[str]) -> tuple[Text, ...]:
    if len(en) != len(zh):
        en = list(en) + [""] * (len(zh) - len(en))
    return tuple(Text(z, e) for z, e in zip(zh, en, strict=False))


def merchant_steps(d: Diagnosis) -> tuple[Text, ...]:
    return _texts(d.for_merchant("zh"), d.for_merchant("en"))


def ops_steps(d: Diagnosis) -> tuple[Text, ...]:
    """The diagnosis's guidance beyond what the merchant reads (staff only)."""
    told = set(d.for_merchant("zh"))
    return tuple(t for t in _texts(d.guidance("zh"), d.guidance("en")) if t.zh not in told)


# --- the facts the checks judge (troubleshoot/checks.py) ---------------------------------------------------


@dataclass(frozen=True)
class PayoutFact:
    id: int
    status: str
    amount_fen: int
    cycle_date: date
    value_date: date
    paid_at: datetime | None  # when it entered succeeded (paid)
    card_masked: str | None  # the card it was paid to / held for
    reason: Diagnosis | None  # payouts.details.current_reason


@dataclass(frozen=True)
class CardFact:
    pan_masked: str
    bank_name: str
    status: str  # settlement_accounts.status: active | unusable | replaced
    card_status: str | None  # the bank's card state (cards.verifier.CardStatus), None when never asked
    card_status_zh: str = ""
    card_status_en: str = ""


@dataclass(frozen=True)
class TerminalFact:
    id: int
    terminal_no: str
    serial_no: str
    has_telemetry: bool


@dataclass(frozen=True)
class FindingFact:
    id: int
    terminal_no: str
    code: str
    severity: str  # high | medium | low
    owner: str  # merchant | field_engineer | acquirer_ops
    detail: Text
    merchant: Text  # what the merchant does (terminals.checks.Spec merchant_zh/en)
    ops: Text  # what ops do (Spec ops_zh/en)


# The stored finding codes (terminals/checks.py) that bear on a symptom; other open findings are still listed.
TERMINAL_CODES: Final[Mapping[Symptom, frozenset[str]]] = {
    Symptom.SIGN_IN_FAILED: frozenset({"wrong_host", "firmware_outdated", "firmware_known_bad", "app_outdated",
                                       "app_known_bad", "silent_no_heartbeat", "tamper", "high_latency", "packet_loss",
                                       # stored message-log findings (terminals analyze-log --store)
                                       "sign_in_failed", "key_error", "terminal_not_registered", "no_sign_in"}),
    Symptom.CANNOT_CONNECT: frozenset({"ip_config_invalid", "ip_out_of_range", "no_dns", "wrong_host", "weak_signal",
                                       "frequent_reconnects", "high_latency", "packet_loss", "silent_no_heartbeat"}),
    Symptom.CHECK_CODE_MISMATCH: frozenset({"firmware_known_bad", "app_known_bad", "app_outdated", "tamper",
                                            "data_mismatch", "import_mismatch"}),
}
# The message-log findings (sign-in answer codes A0/99/97, amounts and check codes that differ between terminal
# and host) are stored only when ops run `terminals analyze-log --store` on a terminal's log; staff are told so.
NOT_STORED: Final = Text("终端报文日志分析（签到应答码、凭证校验码/金额不一致）仅在运营执行 terminals analyze-log --store 后入库；"
                         "如无相关结果，请取得终端报文日志后执行",
                         "message-log findings (sign-in answer codes, check code / amount mismatches) are stored only "
                         "when ops run `terminals analyze-log --store` on the terminal's log; run it if none is shown")


@dataclass(frozen=True)
class FailureFact:
    payout_id: int
    at: datetime
    category: str
    reason: Diagnosis


@dataclass(frozen=True)
class BreakFact:
    id: int
    type: str
    amount_fen: int | None
    booking_date: date | None
    payout_id: int | None


DEBITS: Final = frozenset({"duplicate_debit", "reversal", "amount_mismatch"})
