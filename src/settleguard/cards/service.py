"""Binding settlement cards and watching their status.

Binding (绑卡 / 换绑): the card is checked first (cards.checks.check_card with the merchant's
registered facts: format, Luhn, BIN, debit card, holder name, ID number); a card with errors
is refused with the reasons and never reaches the bank. Then the merchant's verification
quota for the local calendar day is checked (default 5), the attempt is recorded as
``pending`` and committed, the bank verifies the four elements, and in a second transaction
the answer is stored and, on a match, the new account is created (encrypted, masked), the
previous one is kept as ``replaced``, and a ``card_bound`` or ``card_rebound`` event and a
merchant notification are written. Every attempt, refused or not, leaves a row in
``card_verifications``.

Status monitoring: every active card whose last status inquiry is older than the configured
number of days (or that was never inquired about) is inquired; an answer other than normal
marks the account ``unusable`` and writes a ``status_changed`` and a ``marked_unusable``
event and a notification (Chinese first) in the same transaction. A card marked unusable for a
state it can come back from (frozen, restricted, dormant) is asked about again daily; when the bank
says normal it is made active again with a ``status_changed`` event (which releases the payouts held
meanwhile, payouts.release) and a ``card_restored`` notice. Payouts to a merchant
without an active account are held ("no usable card"), so the merchant hears about the card
before a payout fails. Bank calls are made outside database transactions.

Nothing here prints or logs a card number; exceptions and reprs carry only the mask.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from settleguard.cards import repository as repo
from settleguard.cards.bins import BinInfo, BinTable, layered_bins  # noqa: F401 (layered_bins: public here too)
from settleguard.cards.checks import check_card
from settleguard.cards.model import CardNumberError, MerchantFacts, Problem, mask_pan, normalize_pan
from settleguard.cards.vault import Vault, VaultError
from settleguard.cards.verifier import CardStatus, CardStatusResult, CardVerifier, VerificationOutcome
from settleguard.config import DEFAULT_TIMEZONE, Settings
from settleguard.merchants import repository as merchant_repo
from settleguard.merchants.model import AccountStatus
from settleguard.notify import repository as notify_repo
from settleguard.reference import bins_repository as bins_repo

Progress = Callable[[int], None]
FOUR_ELEMENTS = "four_elements"
STATUS = "status"
# Results of four-element attempts that reached (or were about to reach) the bank: these count
# against the daily quota. "refused" (failed our own checks) and "rate_limited" do not.
BANK_RESULTS = ("pending", "match", "mismatch", "card_problem", "error")
BATCH = 200


@dataclass(frozen=True)
class CardSettings:
    """Binding and monitoring settings (config.Settings ``card_*``)."""

    attempts_per_day: int = 5
    status_check_days: int = 90
    timezone: str = DEFAULT_TIMEZONE  # from_settings: config.Settings.timezone
    recheck_unusable_days: int = 1

    @classmethod
    def from_settings(cls, s: Settings) -> CardSettings:
        return cls(s.card_attempts_per_day, s.card_status_check_days, s.timezone, s.card_recheck_unusable_days)

    def stale_before(self, now: datetime) -> datetime:
        return now - timedelta(days=self.status_check_days)

    def recheck_before(self, now: datetime) -> datetime:
        return now - timedelta(days=self.recheck_unusable_days)

    def day_start(self, now: datetime) -> datetime:
        tz = ZoneInfo(self.timezone)
        return datetime.combine(now.astimezone(tz).date(), time(0), tz)


class Notifier(Protocol):
    """Tells a merchant something. Here only the outbox write (same transaction as the event);
    delivery channels come later and read the ``notifications`` table."""

    def notify(self, conn: Connection, *, merchant_id: int, kind: str, dedupe_key: str, zh: str, en: str,
               facts: dict[str, Any], now: datetime) -> bool: ...


class OutboxNotifier:
    """:class:`Notifier` that writes to the ``notifications`` outbox, once per dedupe key."""

    def notify(self, conn: Connection, *, merchant_id: int, kind: str, dedupe_key: str, zh: str, en: str,
               facts: dict[str, Any], now: datetime) -> bool:
        return notify_repo.add_notification(conn, merchant_id=merchant_id, kind=kind, dedupe_key=dedupe_key,
                                            payload={"zh": zh, "en": en, **facts}, now=now)


OUTBOX = OutboxNotifier()


class BindRefused(Exception):
    """Binding was refused; says why in Chinese and English. Never holds the card number."""

    def __init__(self, code: str, zh: str, en: str, *, problems: Sequence[Problem] = (),
                 bank_code: str | None = None, bank_message: str | None = None) -> None:
        self.code = code
        self.zh = zh
        self.en = en
        self.problems = tuple(problems)
        self.bank_code = bank_code
        self.bank_message = bank_message
        super().__init__(f"{code}: {zh} / {en}")

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "zh": self.zh, "en": self.en, "bank_code": self.bank_code,
                "bank_message": self.bank_message, "problems": [p.as_dict() for p in self.problems]}


@dataclass(frozen=True)
class BindRequest:
    """A request to bind a card; the repr shows only masked values."""

    merchant_no: str
    pan: str = field(repr=False)
    name: str
    id_number: str = field(repr=False)
    phone: str = field(repr=False)
    actor: str = "operator"

    def __repr__(self) -> str:
        digits = "".join(c for c in self.pan if c.isdigit())
        return (f"BindRequest(merchant_no={self.merchant_no!r}, pan={mask_pan(digits)!r}, name={self.name!r}, "
                f"id_number={mask_pan(self.id_number)!r}, phone={mask_pan(self.phone)!r}, actor={self.actor!r})")


@dataclass(frozen=True)
class BindResult:
    account_id: int
    merchant_id: int
    masked: str
    bank_code: str
    bank_name: str
    card_type: str
    rebound: bool
    replaced_account_ids: tuple[int, ...]
    bank_answer_code: str
    bank_answer_message: str
    card_status: str | None
    warnings: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "merchant_id": self.merchant_id, "masked": self.masked,
                "bank_code": self.bank_code, "bank_name": self.bank_name, "card_type": self.card_type,
                "rebound": self.rebound, "replaced_account_ids": list(self.replaced_account_ids),
                "bank_answer_code": self.bank_answer_code, "bank_answer_message": self.bank_answer_message,
                "card_status": self.card_status, "warnings": [w.as_dict() for w in self.warnings]}


# --- binding ---------------------------------------------------------------------------------

def _refuse(conn: Connection, merchant_id: int, masked: str, result: str, why: BindRefused, actor: str,
            now: datetime) -> BindRefused:
    detail = why.code if not why.problems else f"{why.code}: {','.join(p.code for p in why.problems)}"
    repo.add_verification(conn, merchant_id=merchant_id, kind=FOUR_ELEMENTS, pan_masked=masked, result=result,
                          bank_message=detail, at=now, actor=actor)
    return why


def _prepare(conn: Connection, req: BindRequest, vault: Vault, settings: CardSettings,
             now: datetime) -> tuple[merchant_repo.MerchantRow, str, Any, int] | BindRefused:
    """Checks before the bank is asked; records the attempt. Returns (merchant, pan, check, attempt id)."""
    merchant = merchant_repo.merchant_by_no(conn, req.merchant_no, lock=True)
    if merchant is None:
        raise BindRefused("merchant_unknown", f"商户 {req.merchant_no} 不存在",
                          f"no merchant {req.merchant_no}")
    try:
        pan = normalize_pan(req.pan)
    except CardNumberError as exc:
        return _refuse(conn, merchant.id, "", "refused", BindRefused(
            "pan_format", f"卡号格式错误：{exc}", "the card number is malformed"), req.actor, now)
    masked = mask_pan(pan)
    if merchant.status != "active":
        return _refuse(conn, merchant.id, masked, "refused", BindRefused(
            "merchant_not_active", f"商户状态为 {merchant.status}，不能绑卡",
            f"the merchant is {merchant.status}; cards cannot be bound"), req.actor, now)
    active = repo.active_account(conn, merchant.id)
    if active is not None and _opens_to(vault, active, pan):
        return _refuse(conn, merchant.id, masked, "refused", BindRefused(
            "already_bound", f"该卡 {masked} 已是当前结算卡，无需重复绑定",
            f"card {masked} is already the merchant's settlement card"), req.actor, now)
    facts = MerchantFacts(kind="corporate" if merchant.kind == "corporate" else "personal",
                          registered_name=merchant.registered_name, legal_person_name=merchant.legal_person)
    check = check_card(pan, bins=bins_repo.binding_bins(conn), holder_name=req.name, id_number=req.id_number,
                       merchant=facts, today=now.astimezone(ZoneInfo(settings.timezone)).date())
    if check.errors:
        first = check.errors[0]
        return _refuse(conn, merchant.id, masked, "refused", BindRefused(
            "check_failed", f"卡片检查未通过，未提交银行验证：{first.zh}",
            f"the card failed the checks and was not sent to the bank: {first.en}", problems=check.errors),
            req.actor, now)
    used = repo.count_attempts(conn, merchant.id, FOUR_ELEMENTS, settings.day_start(now), BANK_RESULTS)
    if used >= settings.attempts_per_day:
        return _refuse(conn, merchant.id, masked, "rate_limited", BindRefused(
            "rate_limited", f"今日验证次数已达上限（{settings.attempts_per_day} 次），请明天再试",
            f"the daily limit of {settings.attempts_per_day} verifications is reached; try again tomorrow"),
            req.actor, now)
    attempt = repo.add_verification(conn, merchant_id=merchant.id, kind=FOUR_ELEMENTS, pan_masked=masked,
                                    result="pending", at=now, actor=req.actor)
    return merchant, pan, check, attempt


def _opens_to(vault: Vault, account: repo.AccountRow, pan: str) -> bool:
    try:
        return vault.open(account.pan_cipher, account.pan_nonce, account.key_version) == pan
    except VaultError:
        return False


def bind_card(engine: Engine, verifier: CardVerifier, vault: Vault, req: BindRequest, *, now: datetime,
              settings: CardSettings = CardSettings(), notifier: Notifier = OUTBOX) -> BindResult:
    """Bind (or re-bind) a settlement card for a merchant; raises :class:`BindRefused` with the reason."""
    with engine.begin() as conn:
        prepared = _prepare(conn, req, vault, settings, now)
    if isinstance(prepared, BindRefused):
        raise prepared
    merchant, pan, check, attempt_id = prepared
    masked = mask_pan(pan)
    try:
        answer = verifier.verify_four_elements(pan, req.name.strip(), req.id_number.strip(), req.phone.strip())
        status: CardStatusResult | None = verifier.inquire_status(pan) if answer.ok else None
    except Exception as exc:
        with engine.begin() as conn:
            repo.finish_verification(conn, attempt_id, result="error", bank_code=None,
                                     bank_message=f"{type(exc).__name__}"[:256])
        raise BindRefused("verifier_unavailable", "银行验证服务暂不可用，请稍后再试",
                          "the bank verification service is unavailable; try again later") from None
    refusal: BindRefused | None = None
    with engine.begin() as conn:
        repo.finish_verification(conn, attempt_id, result=str(answer.outcome), bank_code=answer.code,
                                 bank_message=answer.message)
        if not answer.ok:
            refusal = _verification_refusal(answer.outcome, answer.code, answer.message, answer.card_status)
        else:
            assert status is not None
            repo.add_verification(conn, merchant_id=merchant.id, kind=STATUS, pan_masked=masked,
                                  result=str(status.status) if status.status else "error", bank_code=status.code,
                                  bank_message=status.message, at=now, actor=req.actor)
            if status.status is not None and not status.status.usable:
                refusal = _verification_refusal(VerificationOutcome.CARD_PROBLEM, status.code, status.message,
                                                status.status)
            else:
                result = _store_binding(conn, merchant, pan, req, check, vault, answer.code, answer.message,
                                        status.status, attempt_id, now, notifier)
    if refusal is not None:
        raise refusal  # after the commit: the attempt and the bank's answer stay recorded
    return result


def _verification_refusal(outcome: VerificationOutcome, code: str, message: str,
                          card_status: CardStatus | None) -> BindRefused:
    if outcome is VerificationOutcome.ERROR:
        return BindRefused("verifier_unavailable", f"银行暂时无法验证（{code} {message}），请稍后再试",
                           f"the bank could not verify now ({code}); try again later",
                           bank_code=code, bank_message=message)
    if card_status is not None:
        return BindRefused("card_status_abnormal",
                           f"银行返回卡状态异常：{card_status.zh}（{code} {message}）。{card_status.advice_zh}",
                           f"the bank reports the card as {card_status.en} ({code}): {card_status.advice_en}",
                           bank_code=code, bank_message=message)
    if outcome is VerificationOutcome.CARD_PROBLEM:
        return BindRefused("card_not_found", f"银行验证未通过：{message}（{code}），请核对卡号",
                           f"the bank does not know this card ({code}); check the card number",
                           bank_code=code, bank_message=message)
    return BindRefused("verification_failed",
                       f"四要素验证不一致：{message}（{code}）。请核对户名、身份证号和银行预留手机号",
                       f"four-element verification failed ({code}): check the holder name, ID number and "
                       "the phone number registered at the bank", bank_code=code, bank_message=message)


def _store_binding(conn: Connection, merchant: merchant_repo.MerchantRow, pan: str, req: BindRequest, check: Any,
                   vault: Vault, code: str, message: str, card_status: CardStatus | None, attempt_id: int,
                   now: datetime, notifier: Notifier) -> BindResult:
    # Lock the merchant again: two bindings racing for one merchant replace in turn.
    merchant_repo.merchant_by_no(conn, merchant.merchant_no, lock=True)
    previous = repo.current_accounts(conn, merchant.id)
    ever_bound = previous or repo.accounts_of(conn, merchant.id)
    repo.replace_accounts(conn, [a.id for a in previous], now)
    sealed = vault.seal(pan)
    masked = mask_pan(pan)
    bank_name = check.bank_name_zh or ""
    account_id = repo.insert_account(conn, {
        "merchant_id": merchant.id, "account_kind": merchant.kind, "holder_name": req.name.strip()[:128],
        "bank_code": (check.bank_code or "")[:16], "bank_name": bank_name[:64],
        "card_type": (check.card_type or "")[:4], "pan_masked": masked, "pan_cipher": sealed.cipher,
        "pan_nonce": sealed.nonce, "key_version": sealed.key_version, "status": str(AccountStatus.ACTIVE),
        "bound_at": now, "replaced_at": None, "verified_at": now,
        "card_status": None if card_status is None else str(card_status),
        "last_status_check_at": None if card_status is None else now,
    })
    repo.link_verifications(conn, [attempt_id], account_id)
    rebound = bool(ever_bound)
    kind = "card_rebound" if rebound else "card_bound"
    payload = {"account_id": account_id, "masked": masked, "bank_code": check.bank_code,
               "card_type": check.card_type, "replaced_account_ids": [a.id for a in previous],
               "replaced_masked": [a.pan_masked for a in previous], "verification_code": code}
    repo.add_event(conn, merchant_id=merchant.id, account_id=account_id, kind=kind, payload=payload,
                   actor=req.actor, now=now)
    if rebound:
        zh = f"您的结算卡已更换为 {bank_name} {masked}，此前挂账的结算款将转到新卡。"
        en = f"Your settlement card is now {check.bank_code or ''} {masked}; held payouts will go to the new card."
    else:
        zh = f"您的结算卡 {bank_name} {masked} 已绑定并通过银行验证。"
        en = f"Settlement card {check.bank_code or ''} {masked} is bound and verified by the bank."
    notifier.notify(conn, merchant_id=merchant.id, kind=kind, dedupe_key=f"{kind}:{account_id}", zh=zh, en=en,
                    facts={"account_id": account_id, "masked": masked}, now=now)
    return BindResult(account_id, merchant.id, masked, check.bank_code or "", bank_name, check.card_type or "",
                      rebound, tuple(a.id for a in previous), code, message,
                      None if card_status is None else str(card_status), tuple(check.warnings))


# --- status monitoring -------------------------------------------------------------------

# States a card can come back from (the bank lifts a freeze, a restriction, dormancy): an account
# marked unusable for one of them is asked about again every ``recheck_unusable_days`` and made
# active again when the bank says normal; its held payouts are then released (payouts.release).
RECOVERABLE: frozenset[CardStatus] = frozenset({CardStatus.FROZEN, CardStatus.RESTRICTED, CardStatus.DORMANT})


@dataclass
class StatusCheckSummary:
    checked: int = 0
    normal: int = 0
    unusable: int = 0
    unanswered: int = 0
    skipped: int = 0
    notified: int = 0
    restored: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


def _facts(account: repo.AccountRow, status: CardStatus, answer: CardStatusResult) -> dict[str, Any]:
    """What a status event and notice record about an inquiry's answer (masked card only)."""
    return {"account_id": account.id, "masked": account.pan_masked, "bank_code": account.bank_code,
            "status": str(status), "answer_code": answer.code, "answer_message": answer.message}


def _status_changed(conn: Connection, account: repo.AccountRow, facts: dict[str, Any], actor: str,
                    now: datetime) -> None:
    repo.add_event(conn, merchant_id=account.merchant_id, account_id=account.id, kind="status_changed",
                   payload={**facts, "from": account.card_status, "to": facts["status"]}, actor=actor, now=now)


def _apply_status(conn: Connection, account: repo.AccountRow, answer: CardStatusResult, *, now: datetime,
                  actor: str, summary: StatusCheckSummary, notifier: Notifier) -> None:
    status = answer.status
    repo.add_verification(conn, merchant_id=account.merchant_id, account_id=account.id, kind=STATUS,
                          pan_masked=account.pan_masked, result=str(status) if status else "error",
                          bank_code=answer.code, bank_message=answer.message, at=now, actor=actor)
    summary.checked += 1
    if status is None:
        summary.unanswered += 1  # last check unchanged: the card stays due
        return
    if account.status == str(AccountStatus.UNUSABLE):
        _apply_recheck(conn, account, answer, status, now=now, actor=actor, summary=summary, notifier=notifier)
        return
    if not repo.record_status(conn, account.id, card_status=str(status), now=now, unusable=not status.usable):
        summary.skipped += 1  # re-bound or marked meanwhile
        return
    summary.by_status[str(status)] += 1
    facts = _facts(account, status, answer)
    if account.card_status != str(status) and (account.card_status is not None or not status.usable):
        _status_changed(conn, account, facts, actor, now)
    if status.usable:
        summary.normal += 1
        return
    summary.unusable += 1
    repo.add_event(conn, merchant_id=account.merchant_id, account_id=account.id, kind="marked_unusable",
                   payload=facts, actor=actor, now=now)
    zh = (f"您的结算卡 {account.bank_name} {account.pan_masked} 经银行查询状态为“{status.zh}”"
          f"（{answer.code} {answer.message}），暂时无法收款，结算款将暂缓出款并挂账。"
          f"{status.advice_zh}；换绑新卡后挂账款项将自动转出。")
    en = (f"Your settlement card {account.bank_code} {account.pan_masked} is {status.en} according to the bank "
          f"({answer.code}); it cannot receive money, so payouts are held. To fix: {status.advice_en}. "
          "Held money is paid out once a new card is bound.")
    if notifier.notify(conn, merchant_id=account.merchant_id, kind="card_unusable",
                       dedupe_key=f"card_unusable:{account.id}:{status}", zh=zh, en=en, facts=facts, now=now):
        summary.notified += 1


def _apply_recheck(conn: Connection, account: repo.AccountRow, answer: CardStatusResult, status: CardStatus, *,
                   now: datetime, actor: str, summary: StatusCheckSummary, notifier: Notifier) -> None:
    """A card marked unusable, asked about again: normal makes it active again (a ``status_changed``
    event to normal, which releases its held payouts, and a notice); anything else is recorded."""
    if not repo.record_recheck(conn, account.id, card_status=str(status), now=now, restore=status.usable):
        summary.skipped += 1  # re-bound meanwhile
        return
    summary.by_status[str(status)] += 1
    facts = _facts(account, status, answer)
    if account.card_status != str(status):
        _status_changed(conn, account, facts, actor, now)
    if not status.usable:
        summary.unusable += 1
        return
    summary.normal += 1
    summary.restored += 1
    was = CardStatus(account.card_status) if account.card_status in set(CardStatus) else None
    zh = (f"银行查询显示您的结算卡 {account.bank_name} {account.pan_masked} 已恢复正常"
          f"（此前：{was.zh if was else account.card_status}），可以继续收款。此前挂账的结算款将自动重新付到这张卡。")
    en = (f"The bank reports your settlement card {account.bank_code} {account.pan_masked} normal again (it was "
          f"{was.en if was else account.card_status}); it can receive money. Payouts held meanwhile are paid to it "
          "automatically.")
    if notifier.notify(conn, merchant_id=account.merchant_id, kind="card_restored",
                       dedupe_key=f"card_restored:{account.id}:{now.isoformat()}", zh=zh, en=en, facts=facts, now=now):
        summary.notified += 1


def _inquire(verifier: CardVerifier, vault: Vault, account: repo.AccountRow) -> CardStatusResult:
    try:
        pan = vault.open(account.pan_cipher, account.pan_nonce, account.key_version)
    except VaultError:
        return CardStatusResult(None, "KEY", "卡号无法解密 card number does not decrypt with the current keys")
    try:
        return verifier.inquire_status(pan)
    except Exception as exc:
        return CardStatusResult(None, "ERROR", f"查询失败 inquiry failed: {type(exc).__name__}")


def status_check(engine: Engine, verifier: CardVerifier, vault: Vault, *, now: datetime,
                 settings: CardSettings = CardSettings(), due_only: bool = True,
                 account_ids: Sequence[int] | None = None, actor: str = "status-check",
                 progress: Progress | None = None, notifier: Notifier = OUTBOX) -> StatusCheckSummary:
    """Inquire the status of active cards (only those due when ``due_only``) and act on the answers.

    Each batch is read, inquired outside any transaction, then applied in one transaction."""
    summary = StatusCheckSummary()
    stale_before = settings.stale_before(now) if due_only else None
    recheck_before = settings.recheck_before(now) if due_only else None
    recoverable = sorted(str(s) for s in RECOVERABLE)
    after_id, rechecking = 0, False
    while True:
        with engine.connect() as conn:
            if rechecking:  # then the unusable cards that may have come back (RECOVERABLE)
                accounts = repo.accounts_to_recheck(conn, statuses=recoverable, checked_before=recheck_before,
                                                    after_id=after_id, limit=BATCH, account_ids=account_ids)
            else:  # first the active cards
                accounts = repo.accounts_to_check(conn, stale_before=stale_before, after_id=after_id, limit=BATCH,
                                                  account_ids=account_ids)
        if not accounts:
            if rechecking:
                return summary
            after_id, rechecking = 0, True
            continue
        after_id = accounts[-1].id
        answers = [(a, _inquire(verifier, vault, a)) for a in accounts]
        with engine.begin() as conn:
            for account, answer in answers:
                _apply_status(conn, account, answer, now=now, actor=actor, summary=summary, notifier=notifier)
        if progress:
            progress(len(accounts))


def count_due(engine: Engine, *, now: datetime, settings: CardSettings = CardSettings(),
              due_only: bool = True) -> int:
    with engine.connect() as conn:
        return (repo.count_to_check(conn, stale_before=settings.stale_before(now) if due_only else None)
                + repo.count_to_recheck(conn, statuses=sorted(str(s) for s in RECOVERABLE),
                                        checked_before=settings.recheck_before(now) if due_only else None))


def ensure_fresh_status(conn: Connection, merchant_id: int, *, verifier: CardVerifier, vault: Vault,
                        now: datetime, settings: CardSettings = CardSettings(), actor: str = "payout",
                        notifier: Notifier = OUTBOX) -> repo.AccountRow | None:
    """The merchant's usable card, inquired first when its last status check is stale.

    Runs in the caller's transaction (the bank is asked inside it). Returns None when the
    merchant has no active card or the inquiry just marked it unusable; the caller then holds
    the payout as it does for "no card"."""
    account = repo.active_account(conn, merchant_id)
    if account is None:
        return None
    last = account.last_status_check_at
    if last is not None and last >= settings.stale_before(now):
        return account
    answer = _inquire(verifier, vault, account)
    _apply_status(conn, account, answer, now=now, actor=actor, summary=StatusCheckSummary(), notifier=notifier)
    return repo.active_account(conn, merchant_id)


def refresh_before_payouts(engine: Engine, verifier: CardVerifier, vault: Vault, *, as_of: date, now: datetime,
                           settings: CardSettings = CardSettings()) -> StatusCheckSummary:
    """Inquire the stale cards of merchants with a payout due by ``as_of`` before anything is sent, and
    the frozen (restricted, dormant) cards of merchants with held payouts that are due to be asked again
    (a card found normal again is made active; the next release pays the held payouts to it)."""
    with engine.connect() as conn:
        ids = repo.stale_accounts_with_due_payouts(conn, as_of=as_of, stale_before=settings.stale_before(now))
        ids += repo.recheckable_with_held_payouts(conn, statuses=sorted(str(s) for s in RECOVERABLE),
                                                  checked_before=settings.recheck_before(now))
    if not ids:
        return StatusCheckSummary()
    summary = StatusCheckSummary()
    for start in range(0, len(ids), BATCH):
        part = status_check(engine, verifier, vault, now=now, settings=settings, due_only=True,
                            account_ids=ids[start:start + BATCH], actor="payout")
        for name in ("checked", "normal", "unusable", "unanswered", "skipped", "notified", "restored"):
            setattr(summary, name, getattr(summary, name) + getattr(part, name))
        summary.by_status.update(part.by_status)
    return summary


# --- cards that failed at the bank ----------------------------------------------------------------

# Diagnosis categories of a bank's answer to a payout that say the card, as bound, cannot receive money
# (docs/payouts.md "permanent card failures"): the card is marked unusable.
CARD_FAILURES = frozenset({"card_info_error", "card_status_abnormal"})
# What the bank's words say about the card (diagnosis meaning and the bank's message), first match wins.
_STATUS_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (str(CardStatus.CLOSED), ("销户", "关户", "注销", "closed")),
    (str(CardStatus.STOLEN), ("被窃", "被盗", "stolen")),
    (str(CardStatus.LOST), ("挂失", "lost")),
    (str(CardStatus.FROZEN), ("冻结", "frozen", "blocked")),
    (str(CardStatus.RESTRICTED), ("止付", "受限", "不收不付", "restricted")),
    (str(CardStatus.DORMANT), ("睡眠", "久悬", "不动户", "dormant")),
    (str(CardStatus.EXPIRED), ("过期", "有效期", "expired")),
)
NAME_MISMATCH = "name_mismatch"  # card_status of an account the bank says is not in the holder's name
INVALID_ACCOUNT = "invalid_account"  # no such account, wrong number, bank or account type
ABNORMAL = "abnormal"  # any other state in which it cannot receive (deceased holder, ...)
FAILURE_TEXT: dict[str, tuple[str, str]] = {
    NAME_MISMATCH: ("户名不符", "name does not match the account"),
    INVALID_ACCOUNT: ("账号无效", "invalid account"),
    ABNORMAL: ("状态异常", "cannot receive money"),
}


def card_failure_status(category: str, *texts: str) -> str:
    """The card state a permanent card answer says (``category`` one of :data:`CARD_FAILURES`): a
    CardStatus value (closed, lost, stolen, frozen, ...), name_mismatch, invalid_account or abnormal."""
    words = " ".join(texts).lower()
    if category == "card_info_error":
        return NAME_MISMATCH if any(w in words for w in ("户名", "name")) else INVALID_ACCOUNT
    for status, keys in _STATUS_WORDS:
        if any(k in words for k in keys):
            return status
    return ABNORMAL


def status_text(card_status: str | None) -> tuple[str, str]:
    """(zh, en) of an account's card_status, for people."""
    if card_status in set(CardStatus):
        s = CardStatus(card_status)
        return s.zh, s.en
    return FAILURE_TEXT.get(card_status or "", (card_status or "不可用", card_status or "unusable"))


@dataclass(frozen=True)
class CardFailure:
    """A bank's permanent answer about a card, from a payout (pain.002, camt.054 return, API answer)."""

    account_id: int
    payout_id: int
    category: str
    scheme: str | None
    code: str
    message: str
    rule: str | None
    meaning_zh: str = ""
    meaning_en: str = ""


def mark_failed_card(conn: Connection, failure: CardFailure, *, now: datetime, actor: str = "payout") -> bool:
    """Mark the card a payout failed on unusable, in the caller's transaction, when it is still the
    merchant's active card: ``status_changed`` and ``marked_unusable`` card events (the payload names the
    payout, the bank's code, message and scheme, and the diagnosis). False when the card was not active
    (re-bound, or marked already). The merchant is told by the payout's hold notice, not again here."""
    account = repo.account_by_id(conn, failure.account_id)
    if account is None or account.status != str(AccountStatus.ACTIVE):
        return False
    status = card_failure_status(failure.category, failure.meaning_zh, failure.meaning_en, failure.message)
    if not repo.mark_unusable(conn, account.id, card_status=status):
        return False
    facts = {"account_id": account.id, "masked": account.pan_masked, "bank_code": account.bank_code,
             "status": status, "answer_code": failure.code[:32], "answer_message": failure.message[:256],
             "category": failure.category, "scheme": failure.scheme, "rule": failure.rule,
             "payout_id": failure.payout_id, "source": "payout"}
    _status_changed(conn, account, facts, actor, now)
    repo.add_event(conn, merchant_id=account.merchant_id, account_id=account.id, kind="marked_unusable",
                   payload=facts, actor=actor, now=now)
    return True


def unusable_reasons(conn: Connection, merchant_ids: Sequence[int]) -> dict[int, tuple[repo.AccountRow,
                                                                                    dict[str, Any] | None]]:
    """Per merchant without an active card whose newest card is unusable: (that card, the payload of its
    latest ``marked_unusable`` event, or None when it has none)."""
    out: dict[int, tuple[repo.AccountRow, dict[str, Any] | None]] = {}
    for mid, account in repo.unusable_cards(conn, merchant_ids).items():
        event = repo.latest_event(conn, account.id, "marked_unusable")
        payload = event["payload"] if event is not None and isinstance(event["payload"], dict) else None
        out[mid] = (account, payload)
    return out


def reactivate_for_override(conn: Connection, account_id: int, *, payout_id: int, reason: str, actor: str,
                            now: datetime) -> bool:
    """An operator overrides a card failure to pay that card again: the unusable card is made active again,
    in the caller's transaction, with a ``reactivated`` card event naming the payout, the operator and the
    written reason (not a releasing event: only the overridden payout is released). False when the card is
    not the merchant's newest unusable one (re-bound meanwhile)."""
    account = repo.account_by_id(conn, account_id)
    if account is None or not repo.reactivate(conn, account_id):
        return False
    repo.add_event(conn, merchant_id=account.merchant_id, account_id=account_id, kind="reactivated",
                   payload={"account_id": account_id, "masked": account.pan_masked, "status": account.card_status,
                            "payout_id": payout_id, "reason": reason[:500], "override": True}, actor=actor, now=now)
    return True
