"""The bank verification port: four-element verification (四要素鉴权) and card status inquiry.

A :class:`CardVerifier` answers two questions about a card number: do the card, the holder's
name, the resident ID number and the phone number reserved at the bank belong together, and
what state is the account in (normal, lost, stolen, frozen, closed, restricted, dormant,
expired)? Answers carry the bank's code and its Chinese message, as an acquirer would receive
them, so they can be stored for audit. Results never hold the card number: a bank may echo it in its
code or message, so both are masked (settleguard.masking) when a result is made, whatever the verifier.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from settleguard.masking import mask_card_numbers


class CardStatus(enum.StrEnum):
    """The account state a bank reports for a card."""

    NORMAL = "normal"  # 正常
    LOST = "lost"  # 挂失
    STOLEN = "stolen"  # 被窃
    FROZEN = "frozen"  # 冻结 (incl. judicial freeze)
    CLOSED = "closed"  # 销户 / 注销
    RESTRICTED = "restricted"  # 止付 / 非柜面受限 / 不收不付
    DORMANT = "dormant"  # 睡眠 / 久悬 / 长期不动户
    EXPIRED = "expired"  # 卡过期

    @property
    def usable(self) -> bool:
        """Whether money can be paid to a card in this state."""
        return self is CardStatus.NORMAL

    @property
    def zh(self) -> str:
        return _STATUS_TEXT[self][0]

    @property
    def en(self) -> str:
        return _STATUS_TEXT[self][1]

    @property
    def advice_zh(self) -> str:
        return _STATUS_TEXT[self][2]

    @property
    def advice_en(self) -> str:
        return _STATUS_TEXT[self][3]


_CONTACT_ZH = "请联系发卡银行处理，或绑定本人名下其他正常状态的借记卡"
_CONTACT_EN = "contact the issuing bank, or bind another debit card in your own name that is in normal state"
_STATUS_TEXT: dict[CardStatus, tuple[str, str, str, str]] = {
    CardStatus.NORMAL: ("正常", "normal", "无需处理", "nothing to do"),
    CardStatus.LOST: ("已挂失", "reported lost", "卡片已挂失，请补办新卡后重新绑定",
                      "the card is reported lost: get a replacement card and bind it"),
    CardStatus.STOLEN: ("被窃卡", "reported stolen", "卡片已报被窃，请补办新卡后重新绑定",
                        "the card is reported stolen: get a replacement card and bind it"),
    CardStatus.FROZEN: ("已冻结", "frozen", _CONTACT_ZH, _CONTACT_EN),
    CardStatus.CLOSED: ("已销户", "closed", "账户已销户，请绑定本人名下其他借记卡",
                        "the account is closed: bind another debit card in your own name"),
    CardStatus.RESTRICTED: ("已止付或受限", "restricted (stop-payment or non-counter limits)", _CONTACT_ZH,
                            _CONTACT_EN),
    CardStatus.DORMANT: ("睡眠户/长期不动户", "dormant", "请持身份证到发卡银行柜台激活账户",
                         "take your ID card to a branch of the issuing bank to reactivate the account"),
    CardStatus.EXPIRED: ("卡已过期", "expired", "请到发卡银行换领新卡后重新绑定",
                         "get a renewed card from the issuing bank and bind it"),
}


class VerificationOutcome(enum.StrEnum):
    """How a four-element verification ended."""

    MATCH = "match"  # all four elements belong together
    MISMATCH = "mismatch"  # name, ID or reserved phone does not match the bank's record
    CARD_PROBLEM = "card_problem"  # no such card, or the card cannot be used (lost, closed, ...)
    ERROR = "error"  # the bank could not answer now; try again later


class Element(enum.StrEnum):
    """One of the four elements, as named in a mismatch."""

    CARD = "card"
    NAME = "name"
    ID_NUMBER = "id_number"
    PHONE = "phone"


@dataclass(frozen=True)
class VerificationResult:
    """The bank's answer to a four-element verification.

    Attributes:
        outcome: match, mismatch, card_problem or error.
        code: the bank's answer code ("00" when everything matches).
        message: the bank's message, in Chinese as the bank sends it.
        mismatched: which elements the bank says do not match (empty on a match).
        card_status: the account state when the bank reported one (a card problem), else None.
    """

    outcome: VerificationOutcome
    code: str
    message: str
    mismatched: tuple[Element, ...] = ()
    card_status: CardStatus | None = None

    def __post_init__(self) -> None:  # the bank's words may echo the card number: masked where they enter
        object.__setattr__(self, "code", mask_card_numbers(self.code))
        object.__setattr__(self, "message", mask_card_numbers(self.message))

    @property
    def ok(self) -> bool:
        return self.outcome is VerificationOutcome.MATCH


@dataclass(frozen=True)
class CardStatusResult:
    """The bank's answer to a status inquiry; ``status`` is None when the bank could not answer."""

    status: CardStatus | None
    code: str
    message: str

    def __post_init__(self) -> None:  # as VerificationResult
        object.__setattr__(self, "code", mask_card_numbers(self.code))
        object.__setattr__(self, "message", mask_card_numbers(self.message))

    @property
    def answered(self) -> bool:
        return self.status is not None


class CardVerifier(Protocol):
    """A bank verification service. Implementations must never log or return the card number."""

    name: str

    def verify_four_elements(self, pan: str, name: str, id_number: str, phone: str) -> VerificationResult:
        """Do card number, holder name, resident ID number and reserved phone belong together?"""
        ...

    def inquire_status(self, pan: str) -> CardStatusResult:
        """The account state of a card."""
        ...
