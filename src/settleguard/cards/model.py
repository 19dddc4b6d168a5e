"""Settlement-card domain model: card-number normalisation, masking, Luhn, problems, policy.

Pure: the standard library and python-stdnum only, no I/O and no clock. The pieces that need
other libraries live beside it and build on these types:

- :mod:`settleguard.cards.bins` — the BIN table (a :class:`BinLookup`) and the packaged ``bins.csv``;
- :mod:`settleguard.cards.names` — holder-name normalisation and comparison (OpenCC, rapidfuzz);
- :mod:`settleguard.cards.identity` — resident ID, USCC and mobile-number checks;
- :mod:`settleguard.cards.checks` — :func:`~settleguard.cards.checks.check_card`, which runs every
  check for one card and returns a :class:`CardCheck`. It is not in this module because name
  comparison needs OpenCC and rapidfuzz, which a ``model.py`` may not import.

Every :class:`Problem` carries a stable ``code`` (used by the CLI's JSON and by the binding
service), Chinese text first, English text, and a severity: an ``error`` blocks binding, a
``warning`` does not. A card number is never put into a problem's text, an exception or a repr
other than masked. The verdict (:func:`verdict_of`: the headline, ``valid``, the JSON's
``verdict``) is computed from the problems alone, so it cannot disagree with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from stdnum import luhn

Severity = Literal["error", "warning"]
MerchantKind = Literal["personal", "corporate"]

PAN_MIN_LENGTH = 13
PAN_MAX_LENGTH = 19

# Problem codes: stable strings, part of the CLI JSON and of the binding service's contract.
PAN_FORMAT = "pan_format"
PAN_LENGTH = "pan_length"
LUHN_FAILED = "luhn_failed"
BIN_UNKNOWN = "bin_unknown"
FOREIGN_CARD = "foreign_card"
LENGTH_MISMATCH = "length_mismatch"
NOT_DEBIT_CARD = "not_debit_card"
NAME_INVALID = "name_invalid"
NAME_MISMATCH = "name_mismatch"
THIRD_PARTY_ACCOUNT = "third_party_account"
CORPORATE_ACCOUNT_REQUIRED = "corporate_account_required"
ID_INVALID = "id_invalid"
ID_MISMATCH = "id_mismatch"
ID_UNDERAGE = "id_underage"
ID_NAME_REQUIRED = "id_name_required"
USCC_INVALID = "uscc_invalid"
MOBILE_INVALID = "mobile_invalid"

# Separators people type inside card numbers: ASCII and Unicode dashes/hyphens (the full-width
# and small forms included). Whitespace of every kind (incl. the ideographic space U+3000) too.
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_FULLWIDTH_ZERO = 0xFF10


class CardNumberError(ValueError):
    """A card number containing a character that is neither a digit nor a separator.

    The message names the character and its position, never the number itself.
    """

    def __init__(self, char: str, position: int) -> None:
        self.char = char
        self.position = position
        shown = char if char.isprintable() else ""
        super().__init__(
            f"卡号第 {position} 个字符 {shown!r} (U+{ord(char):04X}) 不是数字；"
            f"character {position} {shown!r} (U+{ord(char):04X}) of the card number is not a digit")


def normalize_pan(raw: str) -> str:
    """The card number's digits: drops whitespace and dashes, turns full-width digits into ASCII.

    ``'６２２２ ０２００-0000'`` -> ``'62220200' + '0000'``. Anything else (letters, dots, other
    scripts' digits) raises :class:`CardNumberError` naming the character. Idempotent.
    """
    out: list[str] = []
    for position, ch in enumerate(raw, start=1):
        if "0" <= ch <= "9":
            out.append(ch)
        elif "\uff10" <= ch <= "\uff19":
            out.append(chr(ord(ch) - _FULLWIDTH_ZERO + ord("0")))
        elif ch.isspace() or ch in _DASHES:
            continue
        else:
            raise CardNumberError(ch, position)
    return "".join(out)


def mask_pan(pan: str) -> str:
    """The number with every digit but the first 6 and the last 4 replaced by ``*``.

    Numbers shorter than 13 digits (account numbers, typos) show only their last 4 digits, and
    numbers shorter than 8 none, so a mask never reveals more than 6 + 4 digits nor most of a
    short number.
    """
    n = len(pan)
    if n >= PAN_MIN_LENGTH:
        return pan[:6] + "*" * (n - 10) + pan[-4:]
    if n >= 8:
        return "*" * (n - 4) + pan[-4:]
    return "*" * n


def luhn_ok(pan: str) -> bool:
    """Whether the digits pass the Luhn (mod 10) check; False for anything that is not digits."""
    return pan.isdigit() and bool(luhn.is_valid(pan))


def luhn_complete(prefix_without_check_digit: str) -> str:
    """The prefix with its Luhn check digit appended."""
    if not prefix_without_check_digit.isdigit():
        raise ValueError("a card number prefix must be digits only")
    return prefix_without_check_digit + str(luhn.calc_check_digit(prefix_without_check_digit))


def international_scheme(pan: str) -> str | None:
    """The international card scheme a number's prefix belongs to, or None (UnionPay 62, 9…).

    Chinese banks also issue Visa/Mastercard/JCB/Amex co-branded cards, so a scheme here does
    not by itself mean a card was issued abroad; the BIN table decides that.
    """
    if not pan.isdigit() or len(pan) < 4:
        return None
    two, four = int(pan[:2]), int(pan[:4])
    if pan[0] == "4":
        return "Visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "Mastercard"
    if two in (34, 37):
        return "American Express"
    if 3528 <= four <= 3589:
        return "JCB"
    if two in (36, 38, 39) or 3000 <= four <= 3059:
        return "Diners Club"
    if four == 6011 or two == 65 or 644 <= int(pan[:3]) <= 649:
        return "Discover"
    return None


@dataclass(frozen=True)
class Problem:
    """One failed check: a stable code, what is wrong and what to do (zh first), a severity."""

    code: str
    zh: str
    en: str
    severity: Severity = "error"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en, "severity": self.severity}


class BinRow(Protocol):
    """What a BIN table row tells about a card (see :class:`settleguard.cards.bins.BinInfo`)."""

    @property
    def bin(self) -> str: ...
    @property
    def bank_code(self) -> str: ...
    @property
    def bank_name_zh(self) -> str: ...
    @property
    def bank_name_en(self) -> str: ...
    @property
    def card_type(self) -> str: ...
    @property
    def length(self) -> int: ...


class BinLookup(Protocol):
    """A BIN table: the row for a card number (longest prefix), or None for an unknown issuer."""

    def lookup(self, pan: str) -> BinRow | None: ...


CARD_TYPE_NAMES: dict[str, tuple[str, str]] = {
    "DC": ("借记卡", "debit card"),
    "CC": ("信用卡", "credit card"),
    "SCC": ("准贷记卡", "semi-credit card"),
    "PC": ("预付卡", "prepaid card"),
}


@dataclass(frozen=True)
class MerchantFacts:
    """What the merchant registered: whose account the settlement may go to.

    ``registered_name`` is the business's registered name (营业执照名称; for a company the
    account name of its corporate account), ``legal_person_name``/``legal_person_id`` the legal
    person's or individual operator's name and resident ID number. Unknown facts are None.
    """

    kind: MerchantKind
    registered_name: str | None = None
    legal_person_name: str | None = None
    legal_person_id: str | None = None


@dataclass(frozen=True)
class SettlementPolicy:
    """Which accounts a merchant may be settled to (direct settlement 一清: never a third party's).

    Attributes:
        personal_card_types: card types a personal merchant may bind (debit cards by default).
        personal_name_sources: which registered names a personal merchant's card holder may carry:
            the legal person's/operator's name, and optionally the registered business name.
        corporate_requires_company_account: a corporate merchant is settled to an account in the
            company's name, not to a personal bank card.
        corporate_account_lengths: digit counts accepted for a corporate account number.
        allow_unknown_bin: whether a card of an issuer missing from the BIN table may be bound
            (a warning) or not (an error).
        allow_foreign_cards: whether an international-scheme card of an unknown (foreign) issuer
            may be bound.
        min_holder_age: below this age a resident ID is flagged (warning).
    """

    personal_card_types: frozenset[str] = frozenset({"DC"})
    personal_name_sources: tuple[Literal["legal_person", "registered"], ...] = ("legal_person", "registered")
    corporate_requires_company_account: bool = True
    corporate_account_lengths: tuple[int, int] = (8, 32)
    allow_unknown_bin: bool = True
    allow_foreign_cards: bool = False
    min_holder_age: int = 18


DEFAULT_POLICY = SettlementPolicy()


VerdictCode = Literal["valid", "warnings", "check", "invalid"]

# Warnings that say the number itself is probably mistyped (a known-BIN card failing Luhn): the headline
# asks to check the number, and the card is not called valid, though binding is not refused (the bank's
# verification decides for the few old cards that do not follow Luhn).
MISTYPED_WARNINGS = frozenset({LUHN_FAILED})


@dataclass(frozen=True)
class Verdict:
    """The headline of a card check, from its most serious problem.

    ``code``: ``invalid`` (an error: cannot be bound), ``check`` (probably mistyped: check the number),
    ``warnings`` (usable, with warnings to read), ``valid`` (no problem). ``cause`` is the code of the
    problem the headline reflects (None for ``valid``).
    """

    code: VerdictCode
    zh: str
    en: str
    cause: str | None = None

    @property
    def text(self) -> str:
        return f"{self.zh} {self.en}"


def verdict_of(problems: Iterable[Problem]) -> Verdict:
    """The verdict the problems give: the one place the headline and ``valid`` come from."""
    found = list(problems)
    errors = [p for p in found if p.severity == "error"]
    if errors:
        n = len(errors)
        return Verdict("invalid", "不能作为结算卡" + (f"（{n} 项未通过）" if n > 1 else ""),
                       "not a valid settlement card" + (f" ({n} checks failed)" if n > 1 else ""), errors[0].code)
    mistyped = [p for p in found if p.code in MISTYPED_WARNINGS]
    if mistyped:
        return Verdict("check", "卡号可能输错了，请核对", "the card number is probably mistyped, check it",
                       mistyped[0].code)
    if found:
        n = len(found)
        return Verdict("warnings", f"可以作为结算卡，但请先看 {n} 条警告",
                       f"valid settlement card, but read the {n} warning{'s' if n > 1 else ''} first", found[0].code)
    return Verdict("valid", "可以作为结算卡", "valid settlement card")


@dataclass(frozen=True)
class CardCheck:
    """The outcome of checking one settlement card. Holds only the masked number.

    ``verdict``, ``valid`` and ``bindable`` are computed from ``problems`` (:func:`verdict_of`), never
    stored beside them. ``valid``: no error and nothing that says the number is probably mistyped
    (warnings alone do not make a card invalid). ``bindable``: no error — binding is refused only on an
    error; a known-BIN card failing Luhn is bindable but not valid (check the number; the bank decides).
    """

    luhn_ok: bool
    masked: str
    length: int
    bank_code: str | None = None
    bank_name_zh: str | None = None
    bank_name_en: str | None = None
    card_type: str | None = None
    expected_length: int | None = None
    bin: str | None = None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        return verdict_of(self.problems)

    @property
    def valid(self) -> bool:
        return self.verdict.code in ("valid", "warnings")

    @property
    def bindable(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def as_dict(self) -> dict[str, object]:
        """The JSON shape of ``settleguard card check --json`` (and of ``POST /api/v1/cards/check``)."""
        verdict = self.verdict
        return {
            "valid": self.valid, "bindable": self.bindable, "verdict": verdict.code,
            "verdict_zh": verdict.zh, "verdict_en": verdict.en, "verdict_cause": verdict.cause,
            "luhn_ok": self.luhn_ok, "masked": self.masked, "length": self.length,
            "bank_code": self.bank_code, "bank_name": self.bank_name_zh, "bank_name_zh": self.bank_name_zh,
            "bank_name_en": self.bank_name_en, "card_type": self.card_type,
            "expected_length": self.expected_length, "bin": self.bin,
            "problems": [p.as_dict() for p in self.problems],
        }
