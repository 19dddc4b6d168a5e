"""The three parts of a statement as rows of typed cells, written the same by statements/xlsx.py (sheets) and
statements/csv_writer.py (sections): 汇总 Summary, 交易明细 Transactions, 出款 Payouts.

A cell is text, a whole number (a count), :class:`Yuan` (fen: 元 with two decimals, a number in Excel), a
date, or an instant (shown in the business zone to the second). Headers are "中文 english" with 元 marked
(evidence/columns.py's ``Col``, as the evidence bundles write them); labels come from settleguard.labels
and evidence/columns.py (transaction and card kinds), never a bare code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from settleguard import labels
from settleguard.evidence.columns import CARD_KIND, TXN_KIND, Col, headers
from settleguard.money import format_yuan
from settleguard.statements.model import line_net

SUMMARY = "汇总 Summary"
TRANSACTIONS = "交易明细 Transactions"
PAYOUTS = "出款 Payouts"


@dataclass(frozen=True)
class Yuan:
    fen: int


Cell = str | int | Yuan | date | datetime | None
Kind = Literal["title", "header", "row", "total", "blank"]
Row = tuple[Kind, Sequence[Cell]]

TXN_COLS = (Col("cycle_date", "业务日"), Col("occurred_at", "交易时间"), Col("terminal_id", "终端编号", "terminal"),
            Col("external_ref", "参考号"), Col("kind", "交易类型"), Col("card_type", "卡类型"),
            Col("amount_fen", "金额", "yuan"), Col("fee_fen", "手续费", "yuan"), Col("net_fen", "净额", "yuan"))
DAY_COLS = (Col("cycle_date", "业务日"), Col("cycle", "结算周期"), Col("value_date", "出款日"), Col("txn_count", "笔数"),
            Col("sale_fen", "消费", "yuan"), Col("void_fen", "撤销", "yuan"), Col("refund_fen", "退货", "yuan"),
            Col("reversal_fen", "冲正", "yuan"), Col("fee_fen", "手续费", "yuan"), Col("net_fen", "净额", "yuan"),
            Col("carried_in_fen", "上期结转", "yuan"), Col("payout_fen", "本日出款", "yuan"),
            Col("carried_out_fen", "结转下期", "yuan"), Col("note", "说明"))
PAYOUT_COLS = (Col("idempotency_key", "出款编号"), Col("parent_key", "拆分自"), Col("cycle_date", "业务日"),
               Col("value_date", "出款日"), Col("amount_fen", "金额", "yuan"), Col("status", "状态"),
               Col("attempt_count", "发送次数"), Col("reason", "原因"), Col("updated_at", "最近更新"))
HELD_COLS = (Col("idempotency_key", "出款编号"), Col("cycle_date", "业务日"), Col("amount_fen", "金额", "yuan"),
             Col("status", "状态"), Col("reason", "原因"))
UNSETTLED_COLS = (Col("cycle_date", "业务日"), Col("txn_count", "交易笔数"), Col("settled_count", "已结算笔数"))


def _both(pair: tuple[str, str] | None) -> str:
    return "" if pair is None else f"{pair[0]} {pair[1]}".strip()


def summary(st: Any) -> Iterator[Row]:
    """The summary sheet: who and when, the totals, each settled day with its carry, unsettled days, held money."""
    m, t = st.merchant, st.totals
    yield "title", [f"商户对账单 Merchant statement · {m['registered_name']}"]
    yield "row", ["商户编号 merchant_no", m["merchant_no"]]
    yield "row", ["商户名称 merchant_name", m["registered_name"]]
    yield "row", ["结算周期 cycle", m["cycle"]]
    yield "row", ["期间(业务日) period (business days)", f"{st.start.isoformat()} 至 to {st.end.isoformat()}"]
    yield "row", ["生成时间 generated_at", st.generated_at]
    yield "row", ["时区 time_zone", str(st.zone)]
    yield "blank", []
    yield "header", ["项目 item", "笔数 count", "金额(元) amount_yuan"]
    for kind, label in TXN_KIND.items():
        amount = {1: t.sale_fen, 2: t.void_fen, 3: t.refund_fen, 4: t.reversal_fen}[kind]
        yield "row", [label, t.counts[kind], Yuan(amount)]
    yield "row", ["手续费 fees", None, Yuan(t.fee_fen)]
    yield "total", ["净额 net (消费−撤销−退货−冲正−手续费 sales−voids−refunds−reversals−fees)", t.count, Yuan(t.net_fen)]
    yield "row", ["期初结转 carried_in (负数为待抵扣 negative: to be netted)", None, Yuan(st.carried_in_fen)]
    yield "row", ["本期结算出款 payouts created by settlement", None, Yuan(st.payout_fen)]
    yield "row", ["期末结转 carried_out", None, Yuan(st.carried_out_fen)]
    for status, n, fen in st.payouts_by_status():
        yield "row", [f"出款 payouts: {labels.zh_en(labels.PAYOUT_STATUS, status)}", n, Yuan(fen)]
    yield "row", ["当前挂账余额 money held now", None, Yuan(st.held_now_fen)]
    if st.carried_out_fen < 0:
        yield "row", [f"期末负余额 {format_yuan(st.carried_out_fen)} 将在下一结算日从净额中抵扣 "
                      f"the negative balance {format_yuan(st.carried_out_fen)} is netted at the next settlement"]
    yield "blank", []
    yield "title", ["每日结算 Settled days"]
    yield "header", headers(DAY_COLS)
    for d in st.days:
        yield "row", [d["cycle_date"], d["cycle"], d["value_date"], int(d["txn_count"]), Yuan(d["sale_fen"]),
                      Yuan(d["void_fen"]), Yuan(d["refund_fen"]), Yuan(d["reversal_fen"]), Yuan(d["fee_fen"]),
                      Yuan(d["net_fen"]), Yuan(d["carried_in_fen"]), Yuan(d["payout_fen"]), Yuan(d["carried_out_fen"]),
                      _both(d["note"])]
    s = st.settled
    yield "total", ["合计 total", None, None, s.count, Yuan(s.sale_fen), Yuan(s.void_fen), Yuan(s.refund_fen),
                    Yuan(s.reversal_fen), Yuan(s.fee_fen), Yuan(s.net_fen), Yuan(st.carried_in_fen),
                    Yuan(st.payout_fen), Yuan(st.carried_out_fen), ""]
    if st.unsettled:
        yield "blank", []
        yield "title", ["尚未结算的交易 Transactions not settled yet"]
        yield "header", headers(UNSETTLED_COLS)
        for u in st.unsettled:
            yield "row", [u["cycle_date"], int(u["txn_count"]), int(u["settled_count"])]
    yield "blank", []
    yield "title", ["挂账资金及原因 Money held and why"]
    yield "header", headers(HELD_COLS)
    for p in st.held():
        yield "row", [p["idempotency_key"], p["cycle_date"], Yuan(p["amount_fen"]),
                      labels.zh_en(labels.PAYOUT_STATUS, p["status"]), _both(p["reason"])]
    if not st.held():
        yield "row", ["本期无挂账出款 no payout of the period is held"]


def transactions(st: Any, lines: Iterable[Any], terminals: Mapping[int, str]) -> Iterator[Row]:
    """The header, every line (streamed; each added to ``st.line_totals``), and the total line."""
    yield "header", headers(TXN_COLS)
    acc = st.line_totals
    for cycle_date, occurred_at, terminal_id, ref, kind, card, amount, fee in lines:
        acc.add(int(kind), int(amount), int(fee))
        yield "row", [cycle_date, occurred_at, terminals.get(int(terminal_id), "") if terminal_id is not None else "",
                      ref, TXN_KIND.get(int(kind), str(kind)), CARD_KIND.get(int(card), str(card)), Yuan(int(amount)),
                      Yuan(int(fee)), Yuan(line_net(int(kind), int(amount), int(fee)))]
    st.lines_written = acc.count
    yield "total", ["合计 total", None, None, f"{acc.count} 笔 lines", None, None, None, Yuan(acc.fee_fen),
                    Yuan(acc.net_fen)]


def payouts(st: Any) -> Iterator[Row]:
    yield "header", headers(PAYOUT_COLS)
    for p in st.payouts:
        yield "row", [p["idempotency_key"], p["parent_key"] or "", p["cycle_date"], p["value_date"],
                      Yuan(p["amount_fen"]), labels.zh_en(labels.PAYOUT_STATUS, p["status"]), int(p["attempt_count"]),
                      _both(p["reason"]), p["updated_at"]]
    top = [p for p in st.payouts if p["parent_id"] is None]
    yield "total", ["合计 total (不含拆分子笔 split parts not counted twice)", None, None, None,
                    Yuan(sum(int(p["amount_fen"]) for p in top)), f"{len(top)} 笔 payouts", None, "", None]
