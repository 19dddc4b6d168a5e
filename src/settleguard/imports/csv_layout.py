"""The transaction CSV layout: column names (English or Chinese) and what each must hold.

Documented for users in docs/import.md. Kept pure so that tests and docs share it.
"""

from __future__ import annotations

from collections.abc import Mapping

REQUIRED = ("external_ref", "merchant_no", "terminal_no", "occurred_at", "kind", "card_type")
AMOUNT_COLUMNS = ("amount_fen", "amount")  # exactly one of these

# Column name aliases as found in Chinese acquirers' files (交易明细/清算文件).
ALIASES: Mapping[str, str] = {
    "external_ref": "external_ref", "ref": "external_ref", "参考号": "external_ref",
    "交易参考号": "external_ref", "检索参考号": "external_ref", "流水号": "external_ref",  # see RRN_ALIAS
    "merchant_no": "merchant_no", "商户编号": "merchant_no", "商户号": "merchant_no",
    "terminal_no": "terminal_no", "终端编号": "terminal_no", "终端号": "terminal_no",
    "occurred_at": "occurred_at", "交易时间": "occurred_at",
    "kind": "kind", "交易类型": "kind",
    "card_type": "card_type", "卡类型": "card_type", "卡种": "card_type",
    "amount_fen": "amount_fen", "金额分": "amount_fen", "交易金额分": "amount_fen",
    "amount": "amount", "交易金额": "amount", "金额": "amount",
    # Optional (clearing reconciliation, docs/import.md): absent or empty -> NULL. 检索参考号 is the rrn when the
    # file has another reference column; alone it stays the external_ref, as before (RRN_ALIAS below).
    "stan": "stan", "系统跟踪号": "stan",
    "rrn": "rrn",
    "auth_code": "auth_code", "授权码": "auth_code", "授权号": "auth_code",
    "card_no": "card_no", "卡号": "card_no", "交易卡号": "card_no",
}

OPTIONAL = ("stan", "rrn", "auth_code", "card_no")  # never required; an old file has none of them
RRN_ALIAS = "检索参考号"  # the rrn, or the external_ref when the file has no other reference column

REF_PATTERN = r"^[A-Za-z0-9_\-]{1,32}$"
STAN_PATTERN = r"^([0-9]{6})?$"  # empty = not given
RRN_PATTERN = r"^([A-Za-z0-9]{12})?$"
AUTH_PATTERN = r"^([A-Za-z0-9]{6})?$"
# A card number, full (12-19 digits) or masked (first 6, 2-9 of * or x, last 4); spaces are removed first.
CARD_PATTERN = r"^([0-9]{12,19}|[0-9]{6}[*xX]{2,9}[0-9]{4})?$"
FEN_PATTERN = r"^[0-9]{1,13}$"
YUAN_PATTERN = r"^[0-9]{1,11}(\.[0-9]{1,2})?$"
# A date and time, with or without a UTC offset; without one it is read in the configured zone (Settings.timezone).
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?$"
)
OFFSET_PATTERN = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
# The parts checked for a real date and time (month 1-12, a day the month has, 00:00:00-23:59:59).
TIME_PARTS = r"^(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[T ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"

# How a column is named to a person when the file's own header is not known (zh / en).
LABELS: Mapping[str, str] = {
    "external_ref": "参考号 external_ref", "merchant_no": "商户编号 merchant_no", "terminal_no": "终端编号 terminal_no",
    "occurred_at": "交易时间 occurred_at", "kind": "交易类型 kind", "card_type": "卡类型 card_type",
    "amount_fen": "金额分 amount_fen", "amount": "交易金额 amount",
    "stan": "系统跟踪号 stan", "rrn": "检索参考号 rrn", "auth_code": "授权码 auth_code", "card_no": "卡号 card_no",
}

# Leading bytes of files that are not CSV text: Excel .xlsx (a zip) and .xls (OLE2 compound file).
EXCEL_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
