"""The columns of an evidence bundle's CSV files, as people read them in Excel. Pure (no I/O).

Every header is "中文 english_name" (``金额(元) amount_yuan``); amounts are 元 with two decimals, never fen;
times are local (the configured business zone, config.Settings.timezone: Beijing time by default; passed in as
``Cells.tz``) with their offset, to the
second (``2026-11-18 10:15:03+08:00``); a merchant or a terminal is its number (商户编号, 终端编号), not the
database's internal id. Ids stay only where they point at a row of another file of the same bundle (a
payout's ``payout_id`` in attempts.csv and payouts.csv, ``settlement_id``, ``account_id`` → the cards file,
``entry_id`` → ledger_entries.csv, ``run_id``, ``notification_id`` / ``delivery_id`` → notices.json). The
JSON files keep the raw rows (fen, UTC, ids) for machines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any, Literal

from settleguard.money import fen_to_yuan

Kind = Literal["text", "yuan", "time", "merchant", "terminal", "txn_kind", "card_kind"]

# transactions.kind / card_type are small integers (settlement.model.TxnKind, CardType)
TXN_KIND = {1: "消费 sale", 2: "撤销 void", 3: "退货 refund", 4: "冲正 reversal"}
CARD_KIND = {1: "借记卡 debit", 2: "信用卡 credit", 3: "扫码 qr"}


@dataclass(frozen=True)
class Col:
    """One CSV column: the row's ``key``, its Chinese label, its English name (default: the key, with
    ``_fen`` turned into ``_yuan`` for amounts) and how a value is shown."""

    key: str
    zh: str
    kind: Kind = "text"
    name: str = ""

    @property
    def header(self) -> str:
        if self.name:
            name = self.name
        elif self.kind == "yuan":
            name = self.key.removesuffix("_fen") + "_yuan"
        elif self.kind in ("merchant", "terminal"):
            name = f"{self.kind}_no"
        else:
            name = self.key
        zh = f"{self.zh}(元)" if self.kind == "yuan" else self.zh
        return f"{zh} {name}"


@dataclass(frozen=True)
class Cells:
    """What turns a stored value into what a person reads: the zone and the numbers of ids."""

    tz: tzinfo
    merchants: Mapping[int, str] = field(default_factory=dict)  # merchant id -> merchant_no
    terminals: Mapping[int, str] = field(default_factory=dict)  # terminal id -> terminal_no

    def show(self, col: Col, v: Any) -> str:
        if v is None:
            return ""
        if col.kind == "yuan":
            return fen_to_yuan(int(v))
        if col.kind == "time":
            return local_time(v, self.tz)
        if col.kind == "merchant":
            return self.merchants.get(int(v), "")
        if col.kind == "terminal":
            return self.terminals.get(int(v), "")
        if col.kind == "txn_kind":
            return TXN_KIND.get(int(v), str(v))
        if col.kind == "card_kind":
            return CARD_KIND.get(int(v), str(v))
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
        return str(v)


def local_time(v: datetime | str, tz: tzinfo) -> str:
    """An instant in ``tz`` with its offset, to the second: ``2026-11-18 10:15:03+08:00``."""
    at = datetime.fromisoformat(v) if isinstance(v, str) else v
    if at.tzinfo is None:
        raise ValueError("a naive time cannot be shown in local time")
    return at.astimezone(tz).isoformat(sep=" ", timespec="seconds")


def headers(cols: Sequence[Col]) -> list[str]:
    return [c.header for c in cols]


MERCHANT = Col("merchant_id", "商户编号", "merchant")
PAYOUT_ID = Col("payout_id", "出款ID")
ACCOUNT_ID = Col("account_id", "结算卡ID")

TRANSACTIONS = (
    Col("cycle_date", "业务日"), MERCHANT, Col("terminal_id", "终端编号", "terminal"),
    Col("external_ref", "参考号"), Col("occurred_at", "交易时间", "time"), Col("kind", "交易类型", "txn_kind"),
    Col("card_type", "卡类型", "card_kind"), Col("amount_fen", "金额", "yuan"), Col("fee_fen", "手续费", "yuan"),
)
SETTLEMENTS = (
    Col("id", "结算ID", name="settlement_id"), Col("run_id", "结算批次"), MERCHANT, Col("cycle_date", "业务日"),
    Col("cycle", "结算周期"), Col("value_date", "出款日"), Col("txn_count", "笔数"), Col("sale_fen", "消费", "yuan"),
    Col("void_fen", "撤销", "yuan"), Col("refund_fen", "退货", "yuan"), Col("reversal_fen", "冲正", "yuan"),
    Col("fee_fen", "手续费", "yuan"), Col("net_fen", "净额", "yuan"), Col("created_at", "结算时间", "time"),
)
PAYOUTS = (
    Col("id", "出款ID", name="payout_id"), MERCHANT, Col("settlement_id", "结算ID"), Col("cycle_date", "业务日"),
    Col("value_date", "出款日"), Col("amount_fen", "金额", "yuan"), Col("currency", "币种"), Col("status", "状态"),
    Col("idempotency_key", "出款编号"), ACCOUNT_ID, Col("parent_id", "拆分自出款ID"),
    Col("instruction_no", "指令序号"), Col("attempt_count", "发送次数"), Col("next_attempt_at", "下次发送", "time"),
    Col("last_code", "最近应答码"), Col("last_message", "最近应答"), Col("category", "诊断分类"),
    Col("created_at", "创建时间", "time"), Col("updated_at", "更新时间", "time"),
)
PAYOUT_EVENTS = (
    Col("created_at", "时间", "time"), PAYOUT_ID, Col("from_status", "原状态"), Col("to_status", "新状态"),
    Col("reason", "原因"),
)
ATTEMPTS = (
    PAYOUT_ID, Col("attempt_no", "第几次"), Col("kind", "类型"), Col("idempotency_key", "出款编号"),
    Col("channel", "渠道"), ACCOUNT_ID, Col("amount_fen", "金额", "yuan"), Col("requested_at", "请求时间", "time"),
    Col("responded_at", "应答时间", "time"), Col("outcome", "结果"), Col("code", "应答码"), Col("message", "应答信息"),
    Col("raw_response", "原始应答"), Col("category", "分类"), Col("rule_id", "规则"), Col("decision", "决定"),
    Col("batch_ref", "批次"),
)
ATTEMPT_DIAGNOSES = (
    Col("diagnosis_category", "诊断分类"), Col("diagnosis_zh", "诊断"), Col("diagnosis_en", "诊断(英文)"),
)
LEDGER_ENTRIES = (
    Col("id", "分录ID", name="entry_id"), Col("kind", "类型"), MERCHANT, PAYOUT_ID, Col("run_id", "结算批次"),
    Col("memo", "摘要"), Col("created_at", "记账时间", "time"),
)
LEDGER_POSTINGS = (
    Col("entry_id", "分录ID"), Col("account", "科目"), MERCHANT,
    Col("amount_fen", "借(+)贷(-)金额", "yuan", name="amount_yuan"),
)
CARDS = (
    Col("id", "结算卡ID", name="account_id"), MERCHANT, Col("pan_masked", "卡号(掩码)"), Col("bank_name", "银行"),
    Col("bank_code", "银行代码"), Col("card_type", "卡种"), Col("account_kind", "账户类型"), Col("holder_name", "户名"),
    Col("status", "状态"), Col("card_status", "卡状态"), Col("key_version", "密钥版本"), Col("bound_at", "绑定时间", "time"),
    Col("replaced_at", "替换时间", "time"), Col("verified_at", "验证通过时间", "time"),
    Col("last_status_check_at", "最近状态查询", "time"),
)
CARD_EVENTS = (
    Col("created_at", "时间", "time"), MERCHANT, ACCOUNT_ID, Col("kind", "事件"), Col("payload", "内容"),
    Col("actor", "操作人"),
)
CARD_VERIFICATIONS = (
    Col("at", "时间", "time"), MERCHANT, ACCOUNT_ID, Col("kind", "类型"), Col("pan_masked", "卡号(掩码)"),
    Col("result", "结果"), Col("bank_code", "银行应答码"), Col("bank_message", "银行应答"), Col("actor", "操作人"),
)
CONTACTS = (
    Col("at", "联系时间", "time"), Col("party", "联系对象"), Col("method", "方式"), Col("contact_name", "联系人"),
    Col("summary", "内容"), Col("recorded_by", "记录人"), Col("recorded_at", "记录时间", "time"),
)
NOTES = (Col("created_at", "时间", "time"), Col("author", "作者"), Col("body", "内容"))
NOTICE_LOG = (
    Col("notification_id", "通知ID"), Col("kind", "类型"), Col("delivery_id", "投递ID"), Col("channel", "渠道"),
    Col("target", "发送至"), Col("delivery_status", "投递状态"), Col("attempts", "已尝试次数"),
    Col("next_attempt_at", "下次尝试", "time"), Col("delivered_at", "送达时间", "time"), Col("attempt_no", "第几次"),
    Col("started_at", "开始时间", "time"), Col("finished_at", "结束时间", "time"), Col("ok", "成功"),
    Col("http_status", "应答码(HTTP)"), Col("detail", "详情"),
)
CARD_FILES: Mapping[str, Sequence[Col]] = {"settlement_accounts": CARDS, "card_events": CARD_EVENTS,
                                           "card_verifications": CARD_VERIFICATIONS}
