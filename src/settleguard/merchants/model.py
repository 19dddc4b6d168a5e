"""Merchant domain records. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from settleguard.settlement.model import Cycle


class Refused(ValueError):
    """A merchant action refused, with why in Chinese and English (status changes, contracts, terminals)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


class MerchantKind(enum.StrEnum):
    PERSONAL = "personal"  # 个体 / 小微
    CORPORATE = "corporate"  # 企业


class MerchantStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class NewMerchant:
    """A merchant to register, with its first bound card and its terminals.

    Attributes:
        merchant_no: the acquirer's merchant number (15 digits for UnionPay).
        kind: personal or corporate.
        registered_name: name on the business licence (营业执照).
        legal_person: the legal representative (法人) or owner.
        business: what it sells, in Chinese.
        mcc: merchant category code.
        city: where it trades.
        cycle: T1 or D0.
        fee_schedule: fee schedule code.
        holder_name: the settlement account holder's name.
        account_kind: personal (对私) or corporate (对公).
        pan: the card/account number in clear; encrypted before it is stored.
        bank_code, bank_name, card_type: from the BIN table.
        terminal_nos: the merchant's POS terminal numbers.
    """

    merchant_no: str
    kind: MerchantKind
    registered_name: str
    legal_person: str
    business: str
    mcc: str
    city: str
    cycle: Cycle
    fee_schedule: str
    holder_name: str
    account_kind: str
    pan: str
    bank_code: str
    bank_name: str
    card_type: str
    terminal_nos: tuple[str, ...]

    def __repr__(self) -> str:
        return f"NewMerchant(merchant_no={self.merchant_no!r}, name={self.registered_name!r})"


# --- onboarding (商户入网; merchants/onboarding.py, docs/merchants.md) ------------------------------------


class EntityKind(enum.StrEnum):
    """The legal form in the merchant file: decides the identity documents and whose account may be used."""

    INDIVIDUAL = "individual"  # 个体工商户: business licence (USCC), the operator is personally liable
    ENTERPRISE = "enterprise"  # 企业: business licence (USCC), a corporate account in its name
    MICRO = "micro"  # 小微商户 (personal, no licence): the operator's own debit card

    @property
    def merchant_kind(self) -> MerchantKind:
        return MerchantKind.CORPORATE if self is EntityKind.ENTERPRISE else MerchantKind.PERSONAL

    @property
    def has_licence(self) -> bool:
        return self is not EntityKind.MICRO

    @property
    def zh(self) -> str:
        return ENTITY_NAMES[self][0]

    @property
    def en(self) -> str:
        return ENTITY_NAMES[self][1]


ENTITY_NAMES: dict[EntityKind, tuple[str, str]] = {
    EntityKind.INDIVIDUAL: ("个体工商户", "individual business"),
    EntityKind.ENTERPRISE: ("企业", "enterprise"),
    EntityKind.MICRO: ("小微商户", "small/micro (personal)"),
}

ENTITY_ALIASES: dict[str, EntityKind] = {
    "个体工商户": EntityKind.INDIVIDUAL, "个体户": EntityKind.INDIVIDUAL, "个体": EntityKind.INDIVIDUAL,
    "individual": EntityKind.INDIVIDUAL, "individual business": EntityKind.INDIVIDUAL,
    "企业": EntityKind.ENTERPRISE, "公司": EntityKind.ENTERPRISE, "enterprise": EntityKind.ENTERPRISE,
    "company": EntityKind.ENTERPRISE, "corporate": EntityKind.ENTERPRISE,
    "小微": EntityKind.MICRO, "小微商户": EntityKind.MICRO, "个人": EntityKind.MICRO, "micro": EntityKind.MICRO,
    "personal": EntityKind.MICRO, "small/micro": EntityKind.MICRO,
}

CYCLE_ALIASES: dict[str, Cycle] = {
    "t+1": Cycle.T1, "t1": Cycle.T1, "d+0": Cycle.D0, "d0": Cycle.D0,
}

STATUS_NAMES: dict[MerchantStatus, tuple[str, str]] = {
    MerchantStatus.ACTIVE: ("正常", "active"),
    MerchantStatus.FROZEN: ("冻结", "frozen"),
    MerchantStatus.CLOSED: ("已注销", "closed"),
}


class StatusAction(enum.StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    CLOSE = "close"


# action -> (statuses it may start from, the status it leads to); ``closed`` is final.
STATUS_TRANSITIONS: dict[StatusAction, tuple[frozenset[MerchantStatus], MerchantStatus]] = {
    StatusAction.FREEZE: (frozenset({MerchantStatus.ACTIVE}), MerchantStatus.FROZEN),
    StatusAction.UNFREEZE: (frozenset({MerchantStatus.FROZEN}), MerchantStatus.ACTIVE),
    StatusAction.CLOSE: (frozenset({MerchantStatus.ACTIVE, MerchantStatus.FROZEN}), MerchantStatus.CLOSED),
}


def mask_id_number(number: str) -> str:
    """A resident ID number as kept for people: the region (first 6) and the last 4, 8 stars between."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@dataclass(frozen=True)
class TerminalSpec:
    """One POS terminal of a merchant file: serial number (SN, 机身号), terminal number (终端号), model."""

    serial_no: str
    terminal_no: str
    model: str


@dataclass(frozen=True)
class FeeContract:
    """The fee contract read from the file: rates in ppm by card type, the debit cap, the effective date.

    Settlement uses the rates through a fee schedule with the same rates (one per distinct contract);
    the effective date is kept on the merchant (contracts with history build on it).
    """

    debit_ppm: int
    debit_cap_fen: int | None
    credit_ppm: int
    qr_ppm: int
    effective_from: date

    def rates_key(self) -> tuple[int, int | None, int, int]:
        return (self.debit_ppm, self.debit_cap_fen, self.credit_ppm, self.qr_ppm)

    def rates(self) -> dict[str, int | None]:
        """The rates as a contract row keeps them (fee_contracts.rates; the fee audit prices with them)."""
        return {"debit_ppm": self.debit_ppm, "debit_cap_fen": self.debit_cap_fen, "credit_ppm": self.credit_ppm,
                "qr_ppm": self.qr_ppm}


@dataclass(frozen=True)
class MerchantDraft:
    """A merchant that passed every check of the file, ready to register (clear card and ID inside).

    ``account_kind``: corporate (对公, in the registered name) or personal (对私, the legal person's or
    operator's own card). ``legal_person_id`` is the clear number, only hashed and masked when stored.
    """

    line: int
    merchant_no: str
    entity: EntityKind
    registered_name: str
    legal_person: str
    legal_person_id: str
    uscc: str | None
    business: str
    mcc: str
    city: str
    contact_mobile: str
    cycle: Cycle
    fee: FeeContract
    holder_name: str
    account_kind: str
    pan: str
    bank_code: str
    bank_name: str
    card_type: str
    terminals: tuple[TerminalSpec, ...]

    def __repr__(self) -> str:  # never the card or ID number
        return f"MerchantDraft(line={self.line}, merchant_no={self.merchant_no!r}, name={self.registered_name!r})"
