"""Checks of a merchant file, row by row and across rows, before anything is registered (pure).

Every problem names its line and field, Chinese first. The checks reuse the card and identity checks:
:func:`settleguard.cards.checks.check_card` (number, BIN, Luhn, debit card, holder name and ID against
the merchant), :mod:`settleguard.cards.identity` (resident ID, USCC, mobile) and
:mod:`settleguard.cards.names`. The direct-settlement (一清) rule decides whose account may be used:

- 企业 enterprise: an account in its registered name (对公); the legal person's own personal card only
  when ``Rules.enterprise_legal_person_account`` (setting ``SETTLEGUARD_ENTERPRISE_LEGAL_PERSON_ACCOUNT``);
- 个体工商户 individual business: an account in its registered name, or the operator's (legal person's)
  own debit card;
- 小微 micro (personal): the operator's own debit card — holder name = legal person, holder ID = the
  legal person's ID.

Anything else is refused with the rule named. Card numbers never appear in a problem's text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import InvalidOperation

from settleguard.cards.checks import check_card
from settleguard.cards.identity import check_mobile, check_resident_id, check_uscc
from settleguard.cards.model import (
    CORPORATE_ACCOUNT_REQUIRED,
    ID_MISMATCH,
    NAME_MISMATCH,
    THIRD_PARTY_ACCOUNT,
    USCC_INVALID,
    BinLookup,
    CardNumberError,
    MerchantFacts,
    SettlementPolicy,
    normalize_pan,
)
from settleguard.cards.names import compare_names, name_problem, normalize_name
from settleguard.masking import bounded
from settleguard.merchants.file_layout import FIELDS, MERCHANT_COLUMNS, label
from settleguard.merchants.mcc import Mcc
from settleguard.merchants.model import (
    CYCLE_ALIASES,
    ENTITY_ALIASES,
    EntityKind,
    FeeContract,
    MerchantDraft,
    TerminalSpec,
)
from settleguard.money import MoneyError, rate_to_ppm, yuan_to_fen

MAX_RATE_PPM = 50_000  # 5 %: a higher merchant discount rate is a typo (or the "free POS" trap)
_MERCHANT_NO_RE = re.compile(r"[0-9A-Za-z]{8,20}")
_TERMINAL_NO_RE = re.compile(r"[0-9A-Za-z]{8}")
_SERIAL_RE = re.compile(r"[0-9A-Za-z\-_]{4,32}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")

# The rules a row can break, named in problems (codes are stable; docs/merchants.md lists them).
RULE_ENTERPRISE_OWN_ACCOUNT = "yiqing_enterprise_own_account"
RULE_OWN_NAME = "yiqing_own_name"
RULE_OWN_CARD = "yiqing_own_card"
_RULE_TEXT = {
    RULE_ENTERPRISE_OWN_ACCOUNT: ("一清规则：企业商户结算到本公司名下的对公账户（户名 = 商户名称）",
                                  "direct-settlement (一清) rule: an enterprise settles to its own corporate account "
                                  "(holder = registered name)"),
    RULE_OWN_NAME: ("一清规则：结算账户须为商户本人或本企业名下（户名 = 商户名称或法人/经营者）",
                    "direct-settlement (一清) rule: the settlement account is in the merchant's own name (holder = "
                    "registered name or the legal person/operator)"),
    RULE_OWN_CARD: ("一清规则：对私结算到法人/经营者本人的借记卡（户名、身份证号须与法人一致）",
                    "direct-settlement (一清) rule: a personal settlement goes to the legal person's/operator's own "
                    "debit card (holder name and ID equal the legal person's)"),
}

_LUHN_ZH = ("卡号未通过 Luhn 校验（最后一位校验位不符）：很可能有一位数字输错或相邻两位颠倒，请对照银行卡核对。"
            "入网文件不接受此类卡号；确为不符合 Luhn 的早期卡，请先用其他卡入网，再用 settleguard card bind 经银行验证换绑")
_LUHN_EN = ("the card number fails the Luhn check (the last, check digit does not match): most likely a digit is wrong "
            "or two neighbours are swapped; check it against the card. A merchant file does not take such numbers; "
            "for one of the few old cards without a Luhn digit, register with another card and re-bind with "
            "settleguard card bind, which the bank verifies")
_CARD_FIELD = {"name_invalid": "holder_name", "name_mismatch": "holder_name", "third_party_account": "holder_name",
               "id_invalid": "holder_id", "id_mismatch": "holder_id", "id_underage": "holder_id",
               "id_name_required": "holder_id", "uscc_invalid": "uscc", "id_region_unknown": "holder_id"}


@dataclass(frozen=True)
class RowProblem:
    """One problem of a file: its line (the header is line 1), the field, a stable code, zh and en texts."""

    line: int
    field: str
    code: str
    zh: str
    en: str
    severity: str = "error"

    def text(self) -> str:
        zh_f, en_f = FIELDS.get(self.field, (self.field, self.field))
        kind_zh, kind_en = ("错误", "error") if self.severity == "error" else ("提示", "warning")
        return f"{kind_zh} 第 {self.line} 行 {zh_f}：{self.zh} / {kind_en} line {self.line}, {en_f}: {self.en}"

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "code": self.code, "zh": self.zh, "en": self.en,
                "severity": self.severity}


class Banks:
    """Bank codes and names (from the BIN table): resolves what a file writes in its bank column."""

    def __init__(self, rows: Sequence[tuple[str, str, str]]) -> None:
        self.names: dict[str, tuple[str, str]] = {}
        self._by_text: dict[str, str] = {}
        for code, zh, en in rows:
            if code in self.names:
                continue
            self.names[code] = (zh, en)
            for text in (code, zh, en, zh.removeprefix("中国") if len(zh) > 4 else zh):
                self._by_text.setdefault(self._key(text), code)

    @staticmethod
    def _key(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split()).upper()

    @classmethod
    def from_bins(cls, bins: object) -> Banks:
        rows = [(r.bank_code, r.bank_name_zh, r.bank_name_en) for r in bins]  # type: ignore[attr-defined]
        return cls(rows)

    def resolve(self, text: str) -> str | None:
        return self._by_text.get(self._key(text))


@dataclass(frozen=True)
class Rules:
    """What the checks allow (docs/merchants.md)."""

    enterprise_legal_person_account: bool = False
    max_rate_ppm: int = MAX_RATE_PPM


@dataclass(frozen=True)
class Context:
    bins: BinLookup
    banks: Banks
    mccs: Mapping[str, Mcc]
    today: date
    rules: Rules = field(default_factory=Rules)


def _p(line: int, col: str, code: str, zh: str, en: str, severity: str = "error") -> RowProblem:
    return RowProblem(line, col, code, zh, en, severity)


def _text(line: int, row: Mapping[str, str], col: str, limit: int, out: list[RowProblem],
          required: bool = True) -> str:
    v = row.get(col, "").strip()
    if not v:
        if required:
            out.append(_p(line, col, "empty", "为空", "is empty"))
        return ""
    if len(v) > limit:
        out.append(_p(line, col, "too_long", f"超过 {limit} 个字符", f"is longer than {limit} characters"))
    elif _CONTROL_RE.search(v):
        out.append(_p(line, col, "control_chars", "含有控制字符", "contains control characters"))
    return v


def parse_date(text: str) -> date | None:
    t = text.strip()
    if "T" in t or " " in t:
        t = t.replace("T", " ").split(" ")[0]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(t, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


def _rate(line: int, row: Mapping[str, str], col: str, rules: Rules, out: list[RowProblem]) -> int:
    raw = row.get(col, "").strip()
    if not raw:
        out.append(_p(line, col, "empty", "为空（填百分比，如 0.6 表示 0.6%）", "is empty (a percentage: 0.6 means 0.6%)"))
        return 0
    try:
        ppm = rate_to_ppm(raw)
    except (MoneyError, InvalidOperation, ValueError):
        out.append(_p(line, col, "rate_format", f"不是百分比费率：{bounded(repr(raw), 40)}（如 0.6 表示 0.6%）",
                      f"not a percentage rate: {bounded(repr(raw), 40)} (0.6 means 0.6%)"))
        return 0
    if ppm > rules.max_rate_ppm:
        out.append(_p(line, col, "rate_too_high", f"费率 {raw}% 高于上限 {rules.max_rate_ppm / 10_000:g}%，请核对合同",
                      f"rate {raw}% is above the limit of {rules.max_rate_ppm / 10_000:g}%; check the contract"))
    return ppm


def _fee(line: int, row: Mapping[str, str], ctx: Context, out: list[RowProblem]) -> FeeContract | None:
    n = len(out)
    debit = _rate(line, row, "debit_rate", ctx.rules, out)
    credit = _rate(line, row, "credit_rate", ctx.rules, out)
    qr = _rate(line, row, "qr_rate", ctx.rules, out)
    cap: int | None = None
    raw_cap = row.get("debit_cap", "").strip()
    if raw_cap:
        try:
            cap = yuan_to_fen(raw_cap)
            if cap < 0:
                raise MoneyError(raw_cap)
        except MoneyError:
            out.append(_p(line, "debit_cap", "cap_format", f"封顶金额应为元（最多两位小数）：{bounded(repr(raw_cap), 40)}",
                          f"the cap is yuan with at most 2 decimals: {bounded(repr(raw_cap), 40)}"))
    raw_day = row.get("fee_effective_from", "").strip()
    day = parse_date(raw_day) if raw_day else None
    if day is None:
        out.append(_p(line, "fee_effective_from", "date_format", "应为日期 YYYY-MM-DD" + ("" if raw_day else "（为空）"),
                      "must be a date YYYY-MM-DD" + ("" if raw_day else " (empty)")))
    if len(out) > n or day is None:
        return None
    return FeeContract(debit, cap, credit, qr, day)


def _card_problems(line: int, problems: Sequence[object], rule: str | None) -> list[RowProblem]:
    out: list[RowProblem] = []
    for p in problems:
        code: str = p.code  # type: ignore[attr-defined]
        zh: str = p.zh  # type: ignore[attr-defined]
        en: str = p.en  # type: ignore[attr-defined]
        sev: str = p.severity  # type: ignore[attr-defined]
        col = _CARD_FIELD.get(code, "card_no")
        if rule and code in (THIRD_PARTY_ACCOUNT, NAME_MISMATCH, ID_MISMATCH, CORPORATE_ACCOUNT_REQUIRED):
            rzh, ren = _RULE_TEXT[rule]
            zh, en = f"{rzh}。{zh}", f"{ren}. {en}"
        out.append(_p(line, col, code, zh, en, sev))
    return out


def _account(line: int, row: Mapping[str, str], entity: EntityKind, name: str, legal: str, legal_id: str,
             uscc: str | None, ctx: Context, out: list[RowProblem]) -> tuple[str, str, str, str, str] | None:
    """(account kind, clear number, bank code, bank name, card type) or None when refused."""
    holder = _text(line, row, "holder_name", 128, out)
    raw_pan = row.get("card_no", "").strip()
    bank_text = _text(line, row, "bank", 64, out)
    if not raw_pan:
        out.append(_p(line, "card_no", "empty", "为空", "is empty"))
    if not holder or not raw_pan or not name or not legal:
        return None
    holder_id = row.get("holder_id", "").strip()
    as_company = entity.has_licence and compare_names(holder, name).ok
    as_person = compare_names(holder, legal).ok
    n = len(out)
    if as_company:
        kind = "corporate"
        check = check_card(raw_pan, bins=ctx.bins, holder_name=holder, id_number=uscc,
                           merchant=MerchantFacts("corporate", name, legal), today=ctx.today)
        out.extend(_card_problems(line, check.problems, RULE_OWN_NAME))
    elif entity is EntityKind.ENTERPRISE and as_person and not ctx.rules.enterprise_legal_person_account:
        rzh, ren = _RULE_TEXT[RULE_ENTERPRISE_OWN_ACCOUNT]
        out.append(_p(line, "holder_name", RULE_ENTERPRISE_OWN_ACCOUNT,
                      f"{rzh}；结算户名“{holder}”是法定代表人个人，本机构设置不允许企业结算到法人个人账户"
                      "（SETTLEGUARD_ENTERPRISE_LEGAL_PERSON_ACCOUNT）",
                      f"{ren}; the holder '{holder}' is the legal person, and this institution's setting does not "
                      "allow an enterprise to settle to the legal person's personal account "
                      "(SETTLEGUARD_ENTERPRISE_LEGAL_PERSON_ACCOUNT)"))
        return None
    elif as_person or entity is EntityKind.MICRO:
        kind = "personal"
        if not holder_id:
            out.append(_p(line, "holder_id", "empty", "对私结算须填写结算人（持卡人）身份证号",
                          "a personal settlement account needs the holder's resident ID number"))
            return None
        check = check_card(raw_pan, bins=ctx.bins, holder_name=holder, id_number=holder_id,
                           merchant=MerchantFacts("personal", None, legal, legal_id or None),
                           policy=SettlementPolicy(personal_name_sources=("legal_person",)), today=ctx.today)
        out.extend(_card_problems(line, check.problems, RULE_OWN_CARD))
    else:
        rzh, ren = _RULE_TEXT[RULE_OWN_NAME]
        out.append(_p(line, "holder_name", RULE_OWN_NAME,
                      f"{rzh}；户名“{holder}”既不是商户名称“{name}”也不是法人/经营者“{legal}”：疑似第三方账户，拒绝",
                      f"{ren}; the holder '{holder}' is neither the registered name '{name}' nor the legal person "
                      f"'{legal}': a third party's account, refused"))
        return None
    if check.verdict.code == "check":  # a known bank's card failing Luhn: a file cannot ask "are you sure?"
        out[:] = [p if not (p.line == line and p.code == "luhn_failed") else
                  RowProblem(p.line, p.field, p.code, _LUHN_ZH, _LUHN_EN, "error") for p in out]
    if any(p.severity == "error" for p in out[n:]):
        return None
    digits = normalize_pan(raw_pan)
    code = ctx.banks.resolve(bank_text) if bank_text else None
    if check.bank_code is not None:
        if code is not None and code != check.bank_code:
            given = ctx.banks.names[code][0]
            out.append(_p(line, "bank", "bank_mismatch",
                          f"开户银行“{given}”与卡号所属银行“{check.bank_name_zh}”不一致：卡号或银行填错了",
                          f"the bank '{ctx.banks.names[code][1]}' is not the card's issuer '{check.bank_name_en}': "
                          "the number or the bank is wrong"))
            return None
        return kind, digits, check.bank_code, check.bank_name_zh or "", check.card_type or ""
    if code is None:
        out.append(_p(line, "bank", "bank_unknown",
                      f"开户银行“{bounded(bank_text, 40)}”不在银行表中：请填银行代码（如 ICBC）或全称，或导入完整卡BIN表",
                      f"the bank '{bounded(bank_text, 40)}' is not in the bank table: give its code (e.g. ICBC) or "
                      "full name, or import the full BIN table"))
        return None
    return kind, digits, code, ctx.banks.names[code][0], ""


def check_merchant_row(line: int, row: Mapping[str, str], ctx: Context) -> tuple[MerchantDraft | None,
                                                                                  list[RowProblem]]:
    """Every check of one merchant's row (its merchant columns and its first terminal)."""
    out: list[RowProblem] = []
    merchant_no = _text(line, row, "merchant_no", 20, out)
    if merchant_no and not _MERCHANT_NO_RE.fullmatch(merchant_no):
        out.append(_p(line, "merchant_no", "merchant_no_format", "应为 8–20 位数字或字母（银联商户号 15 位）",
                      "must be 8-20 digits or letters (UnionPay merchant numbers have 15)"))
    name = _text(line, row, "registered_name", 128, out)
    raw_kind = row.get("kind", "").strip()
    entity = ENTITY_ALIASES.get(raw_kind) or ENTITY_ALIASES.get(raw_kind.lower())
    if entity is None:
        out.append(_p(line, "kind", "kind_unknown", f"“{bounded(raw_kind, 40)}”不是商户类型：个体工商户、企业或小微",
                      f"'{bounded(raw_kind, 40)}' is not a kind: 个体工商户 (individual), 企业 (enterprise) or 小微 "
                      "(micro)"))
    legal = _text(line, row, "legal_person", 64, out)
    if legal and (why := name_problem(legal)):
        out.append(_p(line, "legal_person", "name_invalid", why[0], why[1]))
    raw_id = row.get("legal_person_id", "").strip()
    legal_id = ""
    if not raw_id:
        out.append(_p(line, "legal_person_id", "empty", "为空", "is empty"))
    else:
        checked = check_resident_id(raw_id, today=ctx.today, min_age=18)
        for p in checked.problems:
            out.append(_p(line, "legal_person_id", p.code, p.zh, p.en, p.severity))
        if checked.ok and checked.value is not None:
            legal_id = checked.value.number
    uscc: str | None = None
    raw_uscc = row.get("uscc", "").strip()
    if entity is not None and entity.has_licence:
        if not raw_uscc:
            out.append(_p(line, "uscc", "empty", f"{entity.zh}须填写营业执照上的统一社会信用代码",
                          f"an {entity.en} needs the USCC of its business licence"))
        else:
            cu = check_uscc(raw_uscc)
            out.extend(_p(line, "uscc", p.code, p.zh, p.en, p.severity) for p in cu.problems)
            uscc = cu.value if cu.ok else None
    elif entity is EntityKind.MICRO and raw_uscc:
        out.append(_p(line, "uscc", USCC_INVALID, "小微商户没有营业执照；有营业执照的请填商户类型“个体工商户”或“企业”",
                      "a micro merchant has no business licence; one with a licence is 个体工商户 or 企业"))
    mcc = row.get("mcc", "").strip()
    info = ctx.mccs.get(mcc)
    if info is None:
        out.append(_p(line, "mcc", "mcc_unknown", f"MCC “{bounded(mcc, 10)}”不在 MCC 表中（merchants/mcc.csv）",
                      f"MCC '{bounded(mcc, 10)}' is not in the MCC table (merchants/mcc.csv)"))
    business = _text(line, row, "business", 64, out, required=False) or (info.name_zh[:64] if info else "")
    city = _text(line, row, "city", 32, out)
    raw_mobile = row.get("contact_mobile", "").strip()
    mobile = ""
    if not raw_mobile:
        out.append(_p(line, "contact_mobile", "empty", "为空", "is empty"))
    else:
        cm = check_mobile(raw_mobile)
        out.extend(_p(line, "contact_mobile", p.code, p.zh, p.en, p.severity) for p in cm.problems)
        mobile = cm.value or ""
    raw_cycle = "".join(row.get("cycle", "").split()).lower().replace("＋", "+")
    cycle = CYCLE_ALIASES.get(raw_cycle)
    if cycle is None:
        out.append(_p(line, "cycle", "cycle_unknown", "结算周期应为 T+1 或 D+0", "the cycle must be T+1 or D+0"))
    fee = _fee(line, row, ctx, out)
    account = None
    if entity is not None:
        account = _account(line, row, entity, name, legal, legal_id, uscc, ctx, out)
    terminal = check_terminal(line, row, out)
    if any(p.severity == "error" for p in out) or entity is None or cycle is None or fee is None \
            or account is None or terminal is None:
        return None, out
    kind, pan, bank_code, bank_name, card_type = account
    return MerchantDraft(
        line=line, merchant_no=merchant_no, entity=entity, registered_name=name, legal_person=legal,
        legal_person_id=legal_id, uscc=uscc, business=business, mcc=mcc, city=city, contact_mobile=mobile,
        cycle=cycle, fee=fee, holder_name=row.get("holder_name", "").strip(), account_kind=kind, pan=pan,
        bank_code=bank_code, bank_name=bank_name, card_type=card_type, terminals=(terminal,)), out


def check_terminal(line: int, row: Mapping[str, str], out: list[RowProblem]) -> TerminalSpec | None:
    n = len(out)
    sn = row.get("terminal_sn", "").strip()
    tn = row.get("terminal_no", "").strip()
    model = _text(line, row, "terminal_model", 32, out)
    if not _SERIAL_RE.fullmatch(sn):
        out.append(_p(line, "terminal_sn", "serial_format", "应为 4–32 位字母、数字或 -" + ("（为空）" if not sn else ""),
                      "must be 4-32 letters, digits or -" + (" (empty)" if not sn else "")))
    if not _TERMINAL_NO_RE.fullmatch(tn):
        out.append(_p(line, "terminal_no", "terminal_no_format", "终端号应为 8 位数字或字母",
                      "a terminal number has 8 digits or letters"))
    return None if len(out) > n else TerminalSpec(sn, tn, model)


def merchant_part(row: Mapping[str, str]) -> tuple[str, ...]:
    """The merchant columns of a row as written (trimmed): equal on every row of one merchant."""
    return tuple(row.get(c, "").strip() for c in MERCHANT_COLUMNS)


def differing_columns(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    return [c for c in MERCHANT_COLUMNS if a.get(c, "").strip() != b.get(c, "").strip()]


def duplicate_problem(line: int, col: str, other: str, where_zh: str, where_en: str) -> RowProblem:
    """A value already used by another merchant (in the file or registered): flagged and refused."""
    zh_f, en_f = FIELDS[col]
    return RowProblem(line, col, "duplicate",
                      f"{zh_f}与{where_zh}商户 {other} 重复：疑似重复入网或借用他人资料，需人工核实，本文件未导入",
                      f"the {en_f} is already used by merchant {other} {where_en}: a possible duplicate or borrowed "
                      "identity, to be reviewed; the file was not imported")


def same_name(a: str, b: str) -> bool:
    return normalize_name(a) == normalize_name(b)


def card_digits(raw: str) -> str | None:
    try:
        return normalize_pan(raw)
    except CardNumberError:
        return None


__all__ = ["Banks", "Context", "RowProblem", "Rules", "check_merchant_row", "check_terminal", "differing_columns",
           "duplicate_problem", "label", "merchant_part", "parse_date"]
