"""An in-process bank that answers like Allinpay's AIPG payout API (通联代付), deterministically.

Demos and tests need a bank that fails the way real ones do — bad cards every day until the
merchant re-binds, limits, system-busy and cut-over blips, timeouts after which the money
may or may not have moved — and that never pays the same instruction twice. Every decision
is a pure function of the seed and the instruction, so runs are reproducible:

- card problems depend on (seed, account number) only: about 0.6% 3031 账号户名不符,
  0.3% 3039 账户已关户, 0.3% 3017 账户已冻结, 0.1% 3004 无效卡号;
- the single-payment limit depends on (seed, account number): 50,000 yuan for ~4% of
  personal cards, 500,000 yuan for the rest (corporate accounts 5,000,000 yuan) — 3013 超出提款限额;
- each attempt of a key (attempts counted per key by the simulator) may hit 3028
  系统忙，请稍后再提交 (~1%), 3024 日期切换正在处理 (~0.3%) or a timeout (~0.7%); after a
  timeout the bank has processed the instruction ~80% of the time and lost it otherwise.

The simulator records what really happened to each key, so :meth:`SimulatedBank.inquire`
answers truthfully. With ``state_path`` the record is appended to a JSON-lines file (masked
account numbers only) that is the bank's one book: every send and inquiry first takes an
exclusive lock on the file and reads what other instances appended since (several worker
processes share one simulated bank, as they would share a real one), so a key is never
executed twice whichever process sends it, and a later process can inquire.
Codes and messages are Allinpay's (scheme ``allinpay``); ``raw`` mimics an AIPG response.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from settleguard.cards.vault import mask_pan
from settleguard.channels.base import BankOutcome, OutcomeStatus, PayoutInstruction

SCHEME = "allinpay"

OK = "0000"
NOT_FOUND = "1002"
TIMEOUT = "TIMEOUT"
BUSY = "3028"
CUT_OVER = "3024"
DUPLICATE = "3051"
OVER_LIMIT = "3013"
NAME_MISMATCH = "3031"
CLOSED = "3039"
FROZEN = "3017"
INVALID_CARD = "3004"

MESSAGES: Mapping[str, str] = {
    OK: "交易成功",
    NOT_FOUND: "无法查询到该交易，可以重发",
    TIMEOUT: "交易通讯超时，请发起查询交易",
    BUSY: "系统忙，请稍后再提交",
    CUT_OVER: "日期切换正在处理",
    DUPLICATE: "重复业务",
    OVER_LIMIT: "超出提款限额",
    NAME_MISMATCH: "账号户名不符",
    CLOSED: "账户已关户",
    FROZEN: "账户已冻结",
    INVALID_CARD: "无效卡号",
    "3030": "账号错误",
    "3036": "货币错误",
    "3040": "金额错误",
    "3006": "已挂失卡",
    "3009": "无此账户",
    "3010": "过期卡",
    "3057": "账户状态错误",
    "3069": "长期不动户，请到柜台办理业务",
}
RETRYABLE = frozenset({BUSY, CUT_OVER, NOT_FOUND})

# Card problems: (code, probability), checked in this order against one uniform draw per card.
CARD_FAULT_RATES: tuple[tuple[str, float], ...] = (
    (NAME_MISMATCH, 0.006), (CLOSED, 0.003), (FROZEN, 0.003), (INVALID_CARD, 0.001),
)
# Per-attempt blips: (code, probability); TIMEOUT means the answer never came back.
ATTEMPT_FAULT_RATES: tuple[tuple[str, float], ...] = ((BUSY, 0.010), (CUT_OVER, 0.003), (TIMEOUT, 0.007))
TIMEOUT_EXECUTED_RATE = 0.8
LOW_LIMIT_RATE = 0.04
PERSONAL_LOW_LIMIT_FEN = 5_000_000  # 50,000 yuan
PERSONAL_LIMIT_FEN = 50_000_000  # 500,000 yuan
CORPORATE_LIMIT_FEN = 500_000_000  # 5,000,000 yuan

_HEADER_OK = {"RET_CODE": "0000", "ERR_MSG": "处理完成"}
_TRX_PAY = "100014"  # 单笔实时代付
_TRX_QUERY = "200004"  # 交易结果查询


@dataclass
class _KeyRecord:
    """What the simulated bank knows about one idempotency key."""

    attempts: int = 0
    paid_fen: int = 0
    executed: bool = False
    code: str = NOT_FOUND  # what an inquiry reports while nothing was executed
    account_masked: str = ""
    amount_fen: int = 0


class SimulatedBank:
    """A deterministic, in-process :class:`~settleguard.channels.base.BankChannel`.

    Args:
        seed: the same seed gives the same card problems, limits and blips.
        state_path: optional JSON-lines file recording every send (masked accounts only);
            an existing file is replayed, so a new instance knows what an earlier one did.
        card_faults: account number -> response code to force for that card (for demos
            and tests), on top of the seeded ones.
        outage_banks: bank codes answering 3028 系统忙 to every send (see :meth:`set_outage`).
        card_fault_rates, attempt_fault_rates, timeout_executed_rate: the fault model (defaults: the
            module's realistic rates); the HTTP bank server (settleguard.sim.bank_server) scales them.
    """

    name = "simulator"

    def __init__(self, seed: int = 0, state_path: Path | None = None, *,
                 card_faults: Mapping[str, str] | None = None, outage_banks: Iterable[str] = (),
                 card_fault_rates: Sequence[tuple[str, float]] = CARD_FAULT_RATES,
                 attempt_fault_rates: Sequence[tuple[str, float]] = ATTEMPT_FAULT_RATES,
                 timeout_executed_rate: float = TIMEOUT_EXECUTED_RATE) -> None:
        self.seed = seed
        for code, rate in (*card_fault_rates, *attempt_fault_rates):
            if code not in MESSAGES or not 0.0 <= rate <= 1.0:
                raise ValueError(f"bad fault rate {code!r}={rate!r}")
        if sum(r for _, r in card_fault_rates) > 1.0 or sum(r for _, r in attempt_fault_rates) > 1.0:
            raise ValueError("fault rates add up to more than 1")
        if not 0.0 <= timeout_executed_rate <= 1.0:
            raise ValueError(f"timeout_executed_rate must be in [0, 1], got {timeout_executed_rate!r}")
        self._card_fault_rates = tuple(card_fault_rates)
        self._attempt_fault_rates = tuple(attempt_fault_rates)
        self._timeout_executed_rate = timeout_executed_rate
        self._salt = f"settleguard-sim|{seed}|".encode()
        self._state_path = state_path
        self._forced = dict(card_faults or {})
        for code in self._forced.values():
            if code not in MESSAGES:
                raise ValueError(f"unknown response code {code!r}; known: {sorted(MESSAGES)}")
        self._outages = set(outage_banks)
        self._records: dict[str, _KeyRecord] = {}
        self._lock = threading.Lock()
        self._fd: int | None = None  # the state file, opened for appending and reading
        self._offset = 0  # bytes of the state file already applied
        self._line = 0
        if state_path is not None and state_path.exists():
            with self._shared():
                pass

    # ---------------------------------------------------------------- deterministic draws

    def _unit(self, *parts: str | int) -> float:
        """A uniform number in [0, 1) that depends only on the seed and ``parts``."""
        text = "|".join(map(str, parts)).encode()
        digest = hashlib.blake2b(self._salt + text, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 18446744073709551616.0

    def card_fault(self, account_number: str) -> str | None:
        """The code this card fails with on every payout (None for a healthy card)."""
        forced = self._forced.get(account_number)
        if forced is not None:
            return forced
        u = self._unit("card", account_number)
        for code, rate in self._card_fault_rates:
            if u < rate:
                return code
            u -= rate
        return None

    def single_limit_fen(self, account_number: str, account_kind: str = "personal") -> int:
        """The receiving account's single-payment limit in fen."""
        if account_kind == "corporate":
            return CORPORATE_LIMIT_FEN
        if self._unit("limit", account_number) < LOW_LIMIT_RATE:
            return PERSONAL_LOW_LIMIT_FEN
        return PERSONAL_LIMIT_FEN

    def payment_limit_fen(self, account_kind: str = "personal") -> int:
        """The single-payment limit the channel publishes: the lowest any such account has, so
        that a payout split into parts this size goes through."""
        return CORPORATE_LIMIT_FEN if account_kind == "corporate" else PERSONAL_LOW_LIMIT_FEN

    def attempt_fault(self, idempotency_key: str, attempt: int) -> str | None:
        """The blip (3028, 3024 or TIMEOUT) hitting the ``attempt``-th send of a key, if any."""
        u = self._unit("attempt", idempotency_key, attempt)
        for code, rate in self._attempt_fault_rates:
            if u < rate:
                return code
            u -= rate
        return None

    def _processing_code(self, ins: PayoutInstruction) -> str:
        """What the bank's books say about an instruction that reached them."""
        if ins.currency != "CNY":
            return "3036"
        if ins.amount_fen <= 0:
            return "3040"
        if not ins.account_number.isdigit():
            return "3030"
        fault = self.card_fault(ins.account_number)
        if fault is not None:
            return fault
        if ins.amount_fen > self.single_limit_fen(ins.account_number, ins.account_kind):
            return OVER_LIMIT
        return OK

    # ---------------------------------------------------------------- the channel

    def send(self, instruction: PayoutInstruction) -> BankOutcome:
        """Submit one payout; never raises for the bank's answer, never pays a key twice."""
        key = instruction.idempotency_key
        masked = mask_pan(instruction.account_number)
        with self._shared():
            rec = self._records.setdefault(key, _KeyRecord())
            attempt = rec.attempts + 1
            paid = 0
            if rec.executed:
                answer = DUPLICATE
                inquiry_code = rec.code
            else:
                blip = BUSY if instruction.bank_code in self._outages else self.attempt_fault(key, attempt)
                if blip in (BUSY, CUT_OVER):
                    answer = inquiry_code = blip
                elif blip == TIMEOUT:
                    answer = TIMEOUT
                    if self._unit("executed", key, attempt) < self._timeout_executed_rate:
                        inquiry_code = self._processing_code(instruction)
                    else:
                        inquiry_code = NOT_FOUND  # the request never reached the bank's books
                else:
                    answer = inquiry_code = self._processing_code(instruction)
                if inquiry_code == OK:
                    paid = instruction.amount_fen
            entry = {"key": key, "attempt": attempt, "code": inquiry_code, "paid_fen": paid,
                     "account": masked, "amount_fen": instruction.amount_fen}
            self._apply(entry)
            self._persist(entry)
        return self._send_outcome(key, answer, masked, instruction.amount_fen)

    def inquire(self, idempotency_key: str) -> BankOutcome:
        """What became of a key: 0000 if paid, else the failure, else 1002 (never received)."""
        with self._shared():
            rec = self._records.get(idempotency_key)
            if rec is None:
                code, masked, amount = NOT_FOUND, "", 0
            else:
                code = OK if rec.executed else rec.code
                masked, amount = rec.account_masked, (rec.paid_fen if rec.executed else rec.amount_fen)
        status = OutcomeStatus.SUCCEEDED if code == OK else OutcomeStatus.FAILED
        if rec is None:
            raw = self._raw(_TRX_QUERY, idempotency_key, {"RET_CODE": NOT_FOUND, "ERR_MSG": MESSAGES[NOT_FOUND]}, [])
        else:
            raw = self._raw(_TRX_QUERY, idempotency_key, _HEADER_OK, [self._detail(code, masked, amount)])
        return BankOutcome(status, code, MESSAGES[code], raw, retryable=code in RETRYABLE, scheme=SCHEME)

    # ---------------------------------------------------------------- test and demo helpers

    def set_outage(self, bank_code: str, down: bool = True) -> None:
        """Make every send to ``bank_code`` answer 3028 系统忙 (or stop doing so)."""
        with self._lock:
            if down:
                self._outages.add(bank_code)
            else:
                self._outages.discard(bank_code)

    def paid_total_fen(self, idempotency_key: str) -> int:
        """Total fen the bank has paid for a key (0 or the instruction's amount)."""
        with self._shared():
            rec = self._records.get(idempotency_key)
            return rec.paid_fen if rec else 0

    def executed_keys(self) -> frozenset[str]:
        """Keys the bank has paid."""
        with self._shared():
            return frozenset(k for k, r in self._records.items() if r.executed)

    def attempts(self, idempotency_key: str) -> int:
        """How many times a key has been sent (including by other instances sharing the state file)."""
        with self._shared():
            rec = self._records.get(idempotency_key)
            return rec.attempts if rec else 0

    def close(self) -> None:
        """Close the state file, if one is open."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> SimulatedBank:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SimulatedBank(seed={self.seed}, state_path={self._state_path!s}, keys={len(self._records)})"

    # ---------------------------------------------------------------- internals

    def _apply(self, entry: Mapping[str, Any]) -> None:
        rec = self._records.setdefault(str(entry["key"]), _KeyRecord())
        rec.attempts = max(rec.attempts, int(entry["attempt"]))
        if rec.executed:
            return
        rec.code = str(entry["code"])
        rec.account_masked = str(entry["account"])
        rec.amount_fen = int(entry["amount_fen"])
        if int(entry["paid_fen"]) > 0:
            rec.executed = True
            rec.paid_fen = int(entry["paid_fen"])

    @contextmanager
    def _shared(self) -> Iterator[None]:
        """Hold this instance's lock and, with a state file, the file's exclusive lock, having
        applied every record other instances appended since the last call."""
        with self._lock:
            if self._state_path is None:
                yield
                return
            if self._fd is None:
                self._fd = os.open(self._state_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                self._catch_up(self._fd)
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _catch_up(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size <= self._offset:
            return
        data = os.pread(fd, size - self._offset, self._offset)
        end = data.rfind(b"\n") + 1  # a last line without its newline: a write cut short by a crash
        lines = data[:end].decode("utf-8").split("\n")[:-1]
        for line in lines:
            self._line += 1
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if line.startswith('{"key":'):  # cut short by a crash, then closed by a later writer
                    continue
                raise ValueError(f"{self._state_path}:{self._line}: not a simulator state record") from None
            self._apply(entry)
        self._offset += end

    def _persist(self, entry: Mapping[str, Any]) -> None:
        """Append one record (called within :meth:`_shared`, so the file is locked)."""
        if self._fd is None:
            return
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        size = os.fstat(self._fd).st_size
        if size > self._offset:  # a torn last line: end it, so the next record stays readable
            line = "\n" + line
        data = line.encode("utf-8")
        os.write(self._fd, data)  # one write: a process killed now leaves the record whole or absent
        self._offset = size + len(data)

    def _send_outcome(self, key: str, code: str, masked: str, amount_fen: int) -> BankOutcome:
        message = MESSAGES[code]
        if code == TIMEOUT:
            # No response body arrived; record the channel's own note in the same envelope.
            raw = self._raw(_TRX_PAY, key, {"RET_CODE": TIMEOUT, "ERR_MSG": message}, [])
            return BankOutcome(OutcomeStatus.UNKNOWN, TIMEOUT, message, raw, retryable=False, scheme=SCHEME)
        raw = self._raw(_TRX_PAY, key, _HEADER_OK, [self._detail(code, masked, amount_fen)])
        status = OutcomeStatus.SUCCEEDED if code == OK else OutcomeStatus.FAILED
        return BankOutcome(status, code, message, raw, retryable=code in RETRYABLE, scheme=SCHEME)

    @staticmethod
    def _detail(code: str, masked: str, amount_fen: int) -> dict[str, str]:
        return {"SN": "0001", "ACCOUNT_NO": masked, "AMOUNT": str(amount_fen), "RET_CODE": code,
                "ERR_MSG": MESSAGES[code]}

    @staticmethod
    def _raw(trx_code: str, key: str, header: Mapping[str, str], details: list[dict[str, str]]) -> str:
        body = {"INFO": {"TRX_CODE": trx_code, "VERSION": "05", "REQ_SN": key, **header},
                "RET_DETAILS": details}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
