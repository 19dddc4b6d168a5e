"""``check_card``: every check for one settlement card, before anything is bound or paid.

Order: the number (characters, 13–19 digits), the issuer (BIN table, longest prefix), the
expected length, Luhn (a known-BIN card that fails is a warning — some old domestic cards do, so
binding is not refused, but the verdict is "probably mistyped, check it", never valid — an unknown-BIN
card that fails is an error), the card type against the settlement policy
(personal merchants: debit cards; corporate merchants: an account in the company's name),
then the holder: the name's form, the resident ID (or USCC), and — with the merchant's
registered facts — whether the account is the merchant's own or a third party's.

Pure: the result holds only the masked number; texts never contain the card number.
"""

from __future__ import annotations

import re
from datetime import date

from settleguard.cards.identity import check_resident_id, check_uscc
from settleguard.cards.model import (
    BIN_UNKNOWN,
    CARD_TYPE_NAMES,
    CORPORATE_ACCOUNT_REQUIRED,
    DEFAULT_POLICY,
    FOREIGN_CARD,
    ID_MISMATCH,
    ID_NAME_REQUIRED,
    LENGTH_MISMATCH,
    LUHN_FAILED,
    NAME_INVALID,
    NAME_MISMATCH,
    NOT_DEBIT_CARD,
    PAN_FORMAT,
    PAN_LENGTH,
    PAN_MAX_LENGTH,
    PAN_MIN_LENGTH,
    THIRD_PARTY_ACCOUNT,
    BinLookup,
    BinRow,
    CardCheck,
    CardNumberError,
    MerchantFacts,
    Problem,
    SettlementPolicy,
    international_scheme,
    luhn_ok,
    mask_pan,
    normalize_pan,
)
from settleguard.cards.names import NameMatch, compare_names, name_problem

_USCC_LETTERS_RE = re.compile(r"[A-WYZ]")  # a letter other than the resident ID's final X


def _type_names(card_type: str) -> tuple[str, str]:
    return CARD_TYPE_NAMES.get(card_type, (card_type, card_type))


def _pan_problems(digits: str, info: BinRow | None, lu: bool, merchant: MerchantFacts | None,
                  policy: SettlementPolicy) -> list[Problem]:
    n = len(digits)
    if not digits:
        return [Problem(PAN_FORMAT, "卡号为空。请输入银行卡号。", "the card number is empty. Enter the card number.")]
    corporate = merchant is not None and merchant.kind == "corporate"
    if corporate and policy.corporate_requires_company_account:
        if info is not None:
            zh_t, en_t = _type_names(info.card_type)
            return [Problem(CORPORATE_ACCOUNT_REQUIRED,
                            f"这是{info.bank_name_zh}的个人{zh_t}。企业商户须结算到以公司名称开立的对公账户，"
                            "不能结算到个人银行卡。请提供公司的对公账号。",
                            f"this is a personal {en_t} of {info.bank_name_en}. A corporate merchant is settled to "
                            "an account opened in the company's name, not to a personal card. Give the company's "
                            "corporate account number.")]
        lo, hi = policy.corporate_account_lengths
        if not lo <= n <= hi:
            return [Problem(PAN_LENGTH, f"对公账号应为 {lo}–{hi} 位数字，实际 {n} 位。请按开户许可证或银行回单核对账号。",
                            f"a corporate account number has {lo}-{hi} digits, not {n}. Check it against the "
                            "account opening documents.")]
        return []  # account numbers carry no Luhn digit and have no card BIN
    if not PAN_MIN_LENGTH <= n <= PAN_MAX_LENGTH:
        hint_zh = f"（{info.bank_name_zh}此类卡号为 {info.length} 位）" if info else ""
        hint_en = f" ({info.bank_name_en} issues {info.length}-digit numbers under this prefix)" if info else ""
        return [Problem(PAN_LENGTH, f"银行卡号应为 {PAN_MIN_LENGTH}–{PAN_MAX_LENGTH} 位数字，实际 {n} 位{hint_zh}。"
                                    "请对照银行卡核对，可能多输或漏输了数字。",
                        f"a card number has {PAN_MIN_LENGTH}-{PAN_MAX_LENGTH} digits, not {n}{hint_en}. Check it "
                        "against the card: a digit may be missing or extra.")]
    problems: list[Problem] = []
    if info is None:
        scheme = international_scheme(digits)
        if scheme and not policy.allow_foreign_cards:
            problems.append(Problem(
                FOREIGN_CARD,
                f"卡号属于 {scheme} 国际卡组织，且不是卡表中已知的境内银行发行的卡：结算卡须为境内银行发行的卡。"
                "请更换为境内银行的借记卡；若确为境内银行卡，请导入完整的卡BIN表（settleguard bins import）后重试。",
                f"the number belongs to {scheme} and is not a card of a known domestic bank: a settlement card must be "
                "issued by a bank in mainland China. Use a domestic debit card; if it is one, import the full BIN "
                "table (settleguard bins import) and check again."))
        else:
            problems.append(Problem(
                BIN_UNKNOWN,
                "卡BIN（卡号前 6 位）不在卡表中，无法确认发卡行和卡种（是否借记卡）。请核对卡号前几位，"
                "或导入完整的卡BIN表（settleguard bins import）。",
                "the card's BIN (first 6 digits) is not in the BIN table: the issuing bank and card type (debit "
                "or not) are unknown. Check the first digits, or import the full BIN table (settleguard bins "
                "import).", "warning" if policy.allow_unknown_bin else "error"))
        if not lu:
            problems.append(Problem(
                LUHN_FAILED,
                "卡号校验位（最后一位）不正确，且发卡行未知：卡号几乎肯定输错了。请对照银行卡逐位核对后重新输入。",
                "the card number's check digit (the last one) is wrong and the issuer is unknown: the number is "
                "almost certainly mistyped. Compare it digit by digit with the card and enter it again."))
        return problems
    zh_t, en_t = _type_names(info.card_type)
    if info.length != n:
        problems.append(Problem(
            LENGTH_MISMATCH,
            f"{info.bank_name_zh}以 {info.bin} 开头的{zh_t}卡号为 {info.length} 位，输入了 {n} 位：多输或漏输了数字。"
            "请对照银行卡核对卡号。",
            f"{info.bank_name_en} {en_t} numbers starting {info.bin} have {info.length} digits, this one has {n}: "
            "a digit is missing or extra. Check the number against the card."))
    if not lu:
        problems.append(Problem(
            LUHN_FAILED,
            "卡号未通过 Luhn 校验（最后一位校验位不符）：很可能有一位数字输错或相邻两位颠倒。少数早期发行的卡不符合 "
            "Luhn，请对照银行卡逐位核对；确认无误可继续，银行验证会最终确认。",
            "the card number fails the Luhn check (the last, check digit does not match): most likely one digit "
            "is wrong or two neighbours are swapped. A few old cards do not follow Luhn: compare the number "
            "digit by digit with the card; if it is right, go on — the bank's verification decides.",
            "warning"))
    if info.card_type not in policy.personal_card_types:
        wanted_zh = "、".join(_type_names(t)[0] for t in sorted(policy.personal_card_types))
        wanted_en = ", ".join(_type_names(t)[1] for t in sorted(policy.personal_card_types))
        problems.append(Problem(
            NOT_DEBIT_CARD,
            f"这是{info.bank_name_zh}的{zh_t}，不能作为结算卡：结算款只能转入{wanted_zh}（储蓄卡）。"
            "请提供商户本人名下的借记卡。",
            f"this is a {en_t} of {info.bank_name_en} and cannot be a settlement card: settlement is paid only "
            f"to a {wanted_en}. Give a debit card in the merchant's own name."))
    return problems


def _name_problem(m: NameMatch, holder: str, registered: str, label_zh: str, label_en: str) -> Problem:
    if m.kind == "different":
        return Problem(
            THIRD_PARTY_ACCOUNT,
            f"账户户名“{holder}”与商户登记的{label_zh}“{registered}”不是同一户名（{m.reason_zh}）："
            "疑似第三方账户。一清模式下结算款只能进入商户本人或本公司名下的账户。请更换为商户自己的账户。",
            f"the account name '{holder}' is not the merchant's registered {label_en} '{registered}' "
            f"({m.reason_en}): this looks like a third party's account. Direct settlement pays only into the "
            "merchant's own account. Bind an account in the merchant's own name.")
    return Problem(
        NAME_MISMATCH,
        f"账户户名“{holder}”与商户登记的{label_zh}“{registered}”不一致：{m.reason_zh}。"
        "请按身份证或营业执照核对户名，户名须与开户名完全一致。",
        f"the account name '{holder}' does not match the merchant's registered {label_en} '{registered}': "
        f"{m.reason_en}. Check it against the ID card or business licence; it must equal the account name.")


def _holder_problems(holder_name: str | None, id_number: str | None, merchant: MerchantFacts | None,
                     policy: SettlementPolicy, today: date | None) -> list[Problem]:
    problems: list[Problem] = []
    corporate = merchant is not None and merchant.kind == "corporate"
    if holder_name is not None:
        why = name_problem(holder_name)
        if why:
            problems.append(Problem(NAME_INVALID, f"户名不能使用：{why[0]}。请按开户时的户名填写。",
                                    f"the account name cannot be used: {why[1]}. Give the name the account was "
                                    "opened in."))
            holder_name = None
    person_id: str | None = None
    if id_number is not None:
        compact = "".join(id_number.split()).upper()
        if corporate and (_USCC_LETTERS_RE.search(compact) or check_uscc(compact).ok):
            problems.extend(check_uscc(compact).problems)
        else:
            checked = check_resident_id(id_number, today=today, min_age=policy.min_holder_age)
            problems.extend(checked.problems)
            person_id = checked.value.number if checked.value else None
    if merchant is None:
        return problems
    binding = bool(merchant.registered_name or merchant.legal_person_name or merchant.legal_person_id)
    if merchant.kind == "personal":
        if holder_name is None or id_number is None:
            problems.append(Problem(
                ID_NAME_REQUIRED,
                "个人商户的结算卡须核对持卡人姓名和身份证号：请提供两者（--name、--id）。",
                "a personal merchant's settlement card is checked against the holder's name and resident ID "
                "number: give both (--name, --id).", "error" if binding else "warning"))
        labels = {"legal_person": ("经营者/法人姓名", "operator's / legal person's name",
                                   merchant.legal_person_name),
                  "registered": ("商户名称", "business name", merchant.registered_name)}
        candidates = [labels[s] for s in policy.personal_name_sources if labels[s][2]]
        if holder_name is not None and candidates:
            matches = [(compare_names(holder_name, c[2] or ""), c) for c in candidates]
            if not any(m.ok for m, _ in matches):
                m, (lzh, len_, reg) = max(matches, key=lambda x: x[0].score)
                problems.append(_name_problem(m, holder_name, reg or "", lzh, len_))
        if person_id and merchant.legal_person_id:
            if "".join(merchant.legal_person_id.split()).upper() != person_id:
                problems.append(Problem(
                    ID_MISMATCH,
                    "持卡人身份证号与商户登记的经营者/法人身份证号不一致：结算卡须为商户本人的卡，不能是第三方的卡。"
                    "请核对身份证号或更换为本人的借记卡。",
                    "the holder's resident ID number differs from the merchant's registered operator / legal person: "
                    "the settlement card must be the merchant's own, not a third party's. Check the number or "
                    "bind the merchant's own debit card."))
        return problems
    # corporate
    if holder_name is None:
        problems.append(Problem(
            ID_NAME_REQUIRED, "企业商户的结算账户须核对户名：请提供账户户名（公司名称，--name）。",
            "a corporate merchant's settlement account is checked against its account name: give it (the company "
            "name, --name).", "error" if binding else "warning"))
    elif merchant.registered_name:
        m = compare_names(holder_name, merchant.registered_name)
        if not m.ok:
            if merchant.legal_person_name and compare_names(holder_name, merchant.legal_person_name).ok:
                problems.append(Problem(
                    CORPORATE_ACCOUNT_REQUIRED,
                    f"账户户名“{holder_name}”是法定代表人个人的姓名：企业商户须结算到以公司名称"
                    f"“{merchant.registered_name}”开立的对公账户，不能结算到法人个人账户。",
                    f"the account name '{holder_name}' is the legal person's own name: a corporate merchant is "
                    f"settled to an account in the company's name '{merchant.registered_name}', not to the legal "
                    "person's personal account."))
            else:
                problems.append(_name_problem(m, holder_name, merchant.registered_name, "公司名称", "company name"))
    return problems


def check_card(pan: str, *, bins: BinLookup, holder_name: str | None = None, id_number: str | None = None,
               merchant: MerchantFacts | None = None, policy: SettlementPolicy = DEFAULT_POLICY,
               today: date | None = None) -> CardCheck:
    """Check one settlement card (and, when given, its holder against the merchant).

    Args:
        pan: the card or account number as typed (spaces, dashes, full-width digits allowed).
        bins: the BIN table (the packaged one, or the operator's imported table).
        holder_name: the account holder's name (户名).
        id_number: the holder's resident ID number (or, for a corporate merchant, the USCC).
        merchant: the merchant's registered facts; without them only the card and the holder's own
            data are checked, as for a personal merchant's debit card.
        policy: which accounts may be bound.
        today: enables the ID-age checks (a pure function does not read the clock).
    """
    holder = _holder_problems(holder_name, id_number, merchant, policy, today)
    try:
        digits = normalize_pan(pan)
    except CardNumberError as exc:
        shown = exc.char if exc.char.isprintable() and not exc.char.isspace() else f"U+{ord(exc.char):04X}"
        bad = Problem(PAN_FORMAT,
                      f"卡号格式错误：第 {exc.position} 个字符“{shown}”不是数字。卡号只能包含数字（可带空格或短横线），"
                      "请重新输入。",
                      f"malformed card number: character {exc.position} '{shown}' is not a digit. A card number "
                      "holds only digits (spaces and dashes are allowed); enter it again.")
        problems = (bad, *holder)
        return CardCheck(luhn_ok=False, masked="", length=0, problems=problems)
    info = bins.lookup(digits) if digits else None
    lu = luhn_ok(digits)
    problems = (*_pan_problems(digits, info, lu, merchant, policy), *holder)
    # the verdict (headline, ``valid``) is derived from these problems by CardCheck itself
    return CardCheck(
        luhn_ok=lu, masked=mask_pan(digits), length=len(digits),
        bank_code=info.bank_code if info else None, bank_name_zh=info.bank_name_zh if info else None,
        bank_name_en=info.bank_name_en if info else None, card_type=info.card_type if info else None,
        expected_length=info.length if info else None, bin=info.bin if info else None, problems=problems)

