"""The merchant file layout (商户入网表): columns, Chinese and English header aliases, field labels.

One row per terminal: a merchant with three terminals has three rows whose merchant columns repeat
(they must be identical); a merchant is the set of rows with its merchant number. Documented for
users in docs/merchants.md. Pure: tests and docs share it.
"""

from __future__ import annotations

from collections.abc import Mapping

# canonical column -> (Chinese label, English label): how a field is named in messages
FIELDS: Mapping[str, tuple[str, str]] = {
    "merchant_no": ("商户编号", "merchant number"),
    "registered_name": ("商户名称", "registered name"),
    "kind": ("商户类型", "kind"),
    "legal_person": ("法人/经营者姓名", "legal person"),
    "legal_person_id": ("法人/经营者身份证号", "legal person's ID number"),
    "uscc": ("统一社会信用代码", "USCC"),
    "business": ("经营类目", "business"),
    "mcc": ("MCC", "MCC"),
    "city": ("城市", "city"),
    "contact_mobile": ("联系手机", "contact mobile"),
    "cycle": ("结算周期", "settlement cycle"),
    "debit_rate": ("借记卡费率", "debit rate"),
    "debit_cap": ("借记卡封顶", "debit cap"),
    "credit_rate": ("信用卡费率", "credit rate"),
    "qr_rate": ("扫码费率", "QR rate"),
    "fee_effective_from": ("费率生效日期", "fee effective date"),
    "holder_name": ("结算户名", "account holder"),
    "holder_id": ("结算人身份证号", "holder's ID number"),
    "card_no": ("结算卡号/账号", "settlement card/account number"),
    "bank": ("开户银行", "bank"),
    "terminal_sn": ("终端序列号", "terminal serial number"),
    "terminal_no": ("终端号", "terminal number"),
    "terminal_model": ("终端型号", "terminal model"),
}

# Columns every file must have. ``uscc`` (businesses), ``holder_id`` (personal accounts), ``business``
# and ``debit_cap`` may be missing as columns; their rules apply per row (checks.py).
REQUIRED = ("merchant_no", "registered_name", "kind", "legal_person", "legal_person_id", "mcc", "city",
            "contact_mobile", "cycle", "debit_rate", "credit_rate", "qr_rate", "fee_effective_from",
            "holder_name", "card_no", "bank", "terminal_sn", "terminal_no", "terminal_model")
OPTIONAL = ("uscc", "holder_id", "business", "debit_cap")

# The columns that describe the merchant (repeated on each of its terminal rows, identical).
MERCHANT_COLUMNS = tuple(c for c in FIELDS if not c.startswith("terminal_"))
TERMINAL_COLUMNS = ("terminal_sn", "terminal_no", "terminal_model")

_ALIASES: dict[str, tuple[str, ...]] = {
    "merchant_no": ("商户编号", "商户号", "商户代码"),
    "registered_name": ("商户名称", "注册名称", "营业执照名称", "name"),
    "kind": ("商户类型", "主体类型", "商户性质", "entity_kind"),
    "legal_person": ("法人姓名", "法定代表人", "经营者姓名", "法人", "法人/经营者姓名"),
    "legal_person_id": ("法人身份证号", "法人证件号", "经营者身份证号", "法人/经营者身份证号", "legal_person_id_no"),
    "uscc": ("统一社会信用代码", "社会信用代码", "信用代码", "营业执照号"),
    "business": ("经营类目", "经营范围", "行业"),
    "mcc": ("商户类别码", "mcc码", "MCC"),
    "city": ("城市", "所在城市", "所在地"),
    "contact_mobile": ("联系手机", "联系人手机", "联系电话", "手机号", "mobile"),
    "cycle": ("结算周期", "结算方式", "settlement_cycle"),
    "debit_rate": ("借记卡费率", "借记卡费率%", "debit_rate_percent"),
    "debit_cap": ("借记卡封顶", "借记卡封顶金额", "封顶金额", "debit_cap_yuan"),
    "credit_rate": ("信用卡费率", "贷记卡费率", "信用卡费率%", "credit_rate_percent"),
    "qr_rate": ("扫码费率", "扫码费率%", "qr_rate_percent"),
    "fee_effective_from": ("费率生效日期", "生效日期", "合同生效日期", "effective_from", "effective_date"),
    "holder_name": ("结算户名", "账户名称", "开户名", "持卡人", "持卡人姓名", "account_name"),
    "holder_id": ("结算人身份证号", "持卡人身份证号", "结算人证件号", "holder_id_number"),
    "card_no": ("结算卡号", "结算账号", "银行卡号", "银行账号", "卡号", "account_no", "card_number"),
    "bank": ("开户银行", "开户行", "结算银行", "bank_name", "bank_code"),
    "terminal_sn": ("终端序列号", "机身号", "序列号", "SN", "serial_no"),
    "terminal_no": ("终端号", "终端编号"),
    "terminal_model": ("终端型号", "机具型号", "型号", "model"),
}

ALIASES: Mapping[str, str] = {
    **{c: c for c in FIELDS},
    **{a: c for c, names in _ALIASES.items() for a in names},
}


def canonical(header: str) -> str | None:
    """The canonical column of a header cell (Chinese or English, any case, spaces ignored), or None."""
    h = "".join(header.split()).lstrip("\ufeff")
    return ALIASES.get(h) or ALIASES.get(h.lower()) or ALIASES.get(h.upper())


def label(column: str) -> str:
    """'商户编号 merchant number': how a column is named in a message."""
    zh, en = FIELDS.get(column, (column, column))
    return zh if zh == en else f"{zh} {en}"
