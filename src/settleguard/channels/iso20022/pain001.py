"""Write a pain.001.001.09 CustomerCreditTransferInitiation payout batch (代付批量文件), streamed.

中文：把一批出款指令写成 pain.001.001.09 文件。按（付款账户，要求执行日）分组，每组一个 PmtInf；
EndToEndId 就是该次出款的幂等键；金额由整数分精确转换为两位小数（不经浮点）。文件边写边落盘
（lxml ``etree.xmlfile``），一百万笔也不需要把整棵树放进内存；先写临时文件，成功后原子改名，
失败时不留下半个文件。卡号只写入文件本身，从不记录日志。

English: the batch is grouped into one ``PmtInf`` per (debtor account, requested execution date);
``GrpHdr`` and every ``PmtInf`` carry ``NbOfTxs`` and ``CtrlSum``, so a first pass over the
instructions computes the totals and a second pass streams the transactions. Chinese accounts have no
IBAN: the creditor account goes in ``CdtrAcct/Id/Othr/Id`` and the bank in
``CdtrAgt/FinInstnId/ClrSysMmbId`` (CNAPS 行号) or ``CdtrAgt/FinInstnId/Othr/Id`` (bank code).
Element by element: docs/formats.md.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

from lxml import etree  # type: ignore[import-untyped]

from settleguard.channels.base import PayoutInstruction
from settleguard.money import fen_to_yuan

VERSION = "pain.001.001.09"
NS = f"urn:iso:std:iso:20022:tech:xsd:{VERSION}"
CNAPS = "CNAPS"  # ExternalClearingSystemIdentification1Code: China National Advanced Payment System
MAX35 = 35
MAX_AMOUNT_FEN = 10**18 - 1  # totalDigits 18 in ActiveOrHistoricCurrencyAndAmount_SimpleType
_CNAPS_RE = re.compile(r"^\d{12}$")  # 12-digit CNAPS participant code (大额/小额支付系统行号)


class Pain001Error(ValueError):
    """An instruction that cannot go into a pain.001 file; nothing was written."""


@dataclass(frozen=True)
class Agent:
    """A bank: a 12-digit CNAPS code (ClrSysMmbId/MmbId) and/or a bank code (Othr/Id), optional name."""

    cnaps: str | None = None
    bank_code: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.cnaps is None and self.bank_code is None:
            raise Pain001Error("a bank needs a CNAPS code or a bank code 银行需要行号或银行代码")
        if self.cnaps is not None and not _CNAPS_RE.match(self.cnaps):
            raise Pain001Error(f"CNAPS code must have 12 digits 行号须为 12 位数字: {self.cnaps!r}")


@dataclass(frozen=True)
class DebtorAccount:
    """The platform's paying account (付款账户): holder name, account number, its bank."""

    name: str
    account_number: str
    agent: Agent

    def __repr__(self) -> str:
        return f"DebtorAccount(name={self.name!r}, account=****{self.account_number[-4:]}, agent={self.agent!r})"


@dataclass(frozen=True)
class BatchConfig:
    """Who sends the batch and how creditor banks are identified.

    Attributes:
        initiating_party: the acquirer's name in GrpHdr/InitgPty/Nm.
        debtor: the default paying account; ``debtor_for`` may pick another per instruction.
        creditor_agents: settleguard bank code -> the receiving bank (CNAPS code and/or name);
            a bank code missing here is sent as CdtrAgt/FinInstnId/Othr/Id.
        remittance: the unstructured remittance text (RmtInf/Ustrd, at most 140 characters).
        debtor_for: optional choice of paying account per instruction (e.g. 对公/对私 accounts).
    """

    initiating_party: str
    debtor: DebtorAccount
    creditor_agents: Mapping[str, Agent] = field(default_factory=dict)
    remittance: Callable[[PayoutInstruction], str] = lambda ins: f"商户结算款 settlement {ins.value_date:%Y%m%d}"
    debtor_for: Callable[[PayoutInstruction], DebtorAccount] | None = None


@dataclass(frozen=True)
class PaymentGroup:
    """One PmtInf as written: id, paying account, execution date, count and sum."""

    payment_information_id: str
    debtor: DebtorAccount
    execution_date: date
    count: int
    total_fen: int
    end_to_end_ids: tuple[str, ...]


@dataclass(frozen=True)
class BatchSummary:
    """What :func:`write_pain001` wrote: message id, totals, and each PmtInf."""

    path: Path
    message_id: str
    count: int
    total_fen: int
    groups: tuple[PaymentGroup, ...]


def _text(value: str, what: str, key: str, max_len: int) -> str:
    value = value.strip()
    if not value:
        raise Pain001Error(f"{key}: empty {what} {what}为空")
    if len(value) > max_len:
        raise Pain001Error(f"{key}: {what} longer than {max_len} characters {what}超长")
    if any(ord(c) < 0x20 for c in value):
        raise Pain001Error(f"{key}: control character in {what} {what}含控制字符")
    return value


def _check(ins: PayoutInstruction) -> None:
    key = ins.idempotency_key
    if not key or len(key) > MAX35 or any(ord(c) < 0x21 or ord(c) > 0x7E for c in key):
        raise Pain001Error(f"EndToEndId must be 1-35 printable ASCII characters 幂等键格式错误: {key!r}")
    if ins.currency != "CNY":
        raise Pain001Error(f"{key}: currency must be CNY 币种须为人民币, got {ins.currency!r}")
    if not 0 < ins.amount_fen <= MAX_AMOUNT_FEN:
        raise Pain001Error(f"{key}: amount must be > 0 fen 金额须大于零, got {ins.amount_fen}")
    _text(ins.creditor_name, "creditor name 户名", key, 140)
    _text(ins.account_number, "account number 账号", key, 34)  # never echoed: only its presence is checked
    _text(ins.bank_code, "bank code 银行代码", key, MAX35)


def write_pain001(path: Path, instructions: Sequence[PayoutInstruction], config: BatchConfig, *,
                  message_id: str, created_at: datetime, earliest_execution: date | None = None) -> BatchSummary:
    """Write ``instructions`` as one pain.001.001.09 file at ``path`` (atomically) and summarise it.

    The requested execution date (ReqdExctnDt) of an instruction is its value date, but never before
    ``earliest_execution`` (default: the date of ``created_at``): a bank refuses or misbooks a past
    date, so a payout whose value date has passed is requested for the earliest day instead.

    Raises :class:`Pain001Error` before writing anything when an instruction is invalid or two
    instructions share an EndToEndId (幂等键重复).
    """
    _text(message_id, "MsgId", "GrpHdr", MAX35)
    if created_at.tzinfo is None:
        raise Pain001Error("created_at must be timezone-aware 创建时间须带时区")
    earliest = max(earliest_execution or created_at.date(), created_at.date())
    # Pass 1: check and group (indexes only), so pass 2 can stream in group order.
    groups: dict[tuple[DebtorAccount, date], list[int]] = {}
    sums: dict[tuple[DebtorAccount, date], int] = {}
    seen: set[str] = set()
    for i, ins in enumerate(instructions):
        _check(ins)
        if ins.idempotency_key in seen:
            raise Pain001Error(f"duplicate EndToEndId in batch 批内幂等键重复: {ins.idempotency_key}")
        seen.add(ins.idempotency_key)
        debtor = config.debtor_for(ins) if config.debtor_for else config.debtor
        k = (debtor, max(ins.value_date, earliest))
        groups.setdefault(k, []).append(i)
        sums[k] = sums.get(k, 0) + ins.amount_fen
    if not groups:
        raise Pain001Error("an empty batch cannot be written 空批次不能生成文件")
    written: list[PaymentGroup] = []
    for n, ((debtor, day), idx) in enumerate(groups.items(), 1):
        pmt_id = f"{message_id[:MAX35 - 6]}-{n:05d}"
        written.append(PaymentGroup(pmt_id, debtor, day, len(idx), sums[(debtor, day)],
                                    tuple(instructions[i].idempotency_key for i in idx)))
    total = sum(sums.values())
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as out:
            _stream(out, instructions, config, groups, written, message_id, created_at, len(seen), total)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return BatchSummary(path, message_id, len(seen), total, tuple(written))


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


# Subtrees are built without a namespace and written inside <Document xmlns=NS>, where they inherit
# the default namespace: the file reads cleanly (no repeated xmlns) and validates against the XSD.


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _agent(parent: etree._Element, tag: str, agent: Agent) -> None:
    fin = _sub(_sub(parent, tag), "FinInstnId")
    if agent.cnaps is not None:
        mmb = _sub(fin, "ClrSysMmbId")
        _sub(_sub(mmb, "ClrSysId"), "Cd", CNAPS)
        _sub(mmb, "MmbId", agent.cnaps)
    if agent.name:
        _sub(fin, "Nm", agent.name[:140])
    if agent.bank_code is not None and agent.cnaps is None:
        _sub(_sub(fin, "Othr"), "Id", agent.bank_code)


def _account(parent: etree._Element, tag: str, number: str) -> None:
    _sub(_sub(_sub(_sub(parent, tag), "Id"), "Othr"), "Id", number)


def _write(xf: etree.xmlfile, el: etree._Element) -> None:
    xf.write(el, pretty_print=True)


def _stream(out: IO[bytes], instructions: Sequence[PayoutInstruction], config: BatchConfig,
            groups: Mapping[tuple[DebtorAccount, date], list[int]], written: Sequence[PaymentGroup],
            message_id: str, created_at: datetime, count: int, total_fen: int) -> None:
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_q("Document"), nsmap={None: NS}), xf.element(_q("CstmrCdtTrfInitn")):
            hdr = etree.Element("GrpHdr")
            _sub(hdr, "MsgId", message_id)
            _sub(hdr, "CreDtTm", created_at.isoformat(timespec="seconds"))
            _sub(hdr, "NbOfTxs", str(count))
            _sub(hdr, "CtrlSum", fen_to_yuan(total_fen))
            _sub(_sub(hdr, "InitgPty"), "Nm", config.initiating_party[:140])
            _write(xf, hdr)
            for idx, group in zip(groups.values(), written, strict=True):
                debtor, day = group.debtor, group.execution_date
                with xf.element(_q("PmtInf")):
                    head = etree.Element("PmtInfHead")  # a holder: its children are written one by one
                    _sub(head, "PmtInfId", group.payment_information_id)
                    _sub(head, "PmtMtd", "TRF")
                    _sub(head, "NbOfTxs", str(group.count))
                    _sub(head, "CtrlSum", fen_to_yuan(group.total_fen))
                    _sub(_sub(head, "ReqdExctnDt"), "Dt", day.isoformat())
                    _sub(_sub(head, "Dbtr"), "Nm", debtor.name[:140])
                    _account(head, "DbtrAcct", debtor.account_number)
                    _agent(head, "DbtrAgt", debtor.agent)
                    for child in head:
                        _write(xf, child)
                    for i in idx:
                        _write(xf, _transaction(instructions[i], config))


def _transaction(ins: PayoutInstruction, config: BatchConfig) -> etree._Element:
    tx = etree.Element("CdtTrfTxInf")
    _sub(_sub(tx, "PmtId"), "EndToEndId", ins.idempotency_key)
    _sub(_sub(tx, "Amt"), "InstdAmt", fen_to_yuan(ins.amount_fen), Ccy=ins.currency)
    agent = config.creditor_agents.get(ins.bank_code) or Agent(bank_code=ins.bank_code)
    _agent(tx, "CdtrAgt", agent)
    _sub(_sub(tx, "Cdtr"), "Nm", ins.creditor_name.strip())
    _account(tx, "CdtrAcct", ins.account_number.strip())
    remittance = config.remittance(ins).strip()
    if remittance:
        _sub(_sub(tx, "RmtInf"), "Ustrd", remittance[:140])
    return tx
