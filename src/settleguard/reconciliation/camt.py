"""Read camt.053 bank statements and camt.054 debit/credit notifications into :class:`Statement` objects.

中文：读取 camt.053（日终对账单，任意版本 .001.NN，至少 .001.08）与 camt.054（借贷记通知）。
加固与 ``returns import`` 相同：有 DOCTYPE / ENTITY 的文件一律拒绝（DTD、外部实体、“十亿笑声”），
不访问网络、不解析实体、不开 huge_tree，文件大小有上限；逐条（Ntry）流式解析并随即清理。
余额 OPBD/CLBD/PRCD、汇总 TxsSummry 与明细逐项核对，不符即整份拒绝并指明元素和行号；
金额用 Decimal 换算成整数分，超过两位小数或非人民币拒绝。原始元素保存前屏蔽卡号并截断。

English: every problem raises :class:`StatementRejected` naming the element path and line; nothing is
returned unless the whole file is valid (the caller stores all of it in one transaction).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree  # type: ignore[import-untyped]

from settleguard.config import DEFAULT_TIMEZONE
from settleguard.masking import bounded, mask_card_numbers
from settleguard.money import format_yuan
from settleguard.reconciliation.model import (
    CURRENCY,
    RAW_LIMIT,
    Balance,
    BankLine,
    Direction,
    EntryStatus,
    Source,
    Statement,
    StatementRejected,
    Summary,
    decimal_to_fen,
)
from settleguard.reconciliation.refs import safe_ref

MAX_BYTES = 512 * 1024 * 1024  # a statement file larger than this is refused before parsing
_NS_RE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:(camt\.053|camt\.054)\.001\.(\d{2})$")
_MESSAGES = {"camt.053": ("BkToCstmrStmt", "Stmt", Source.CAMT053),
             "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn", Source.CAMT054)}
_KEPT_BALANCES = ("OPBD", "CLBD", "PRCD")
_PROLOG_BYTES = 1 << 16
_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False,
    "remove_comments": True, "remove_pis": True, "dtd_validation": False,
}
_XMLNS_RE = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_SPACE_RE = re.compile(r">\s+<")


def looks_like_xml(head: bytes) -> bool:
    """True when a file's first bytes start an XML document (after an optional UTF-8 BOM and blanks)."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"<")


def read_camt(path: Path, *, tz: str = DEFAULT_TIMEZONE, max_bytes: int = MAX_BYTES) -> list[Statement]:
    """All statements (camt.053 Stmt) or notifications (camt.054 Ntfctn) of a file, checked.

    ``tz``: the business time zone; a DtTm with an offset is dated in it."""
    return _Reader(path, max_bytes, ZoneInfo(tz)).run()


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else "#comment"


def _date(text: str, zone: ZoneInfo) -> date:
    """Dt (YYYY-MM-DD) or DtTm (ISO date-time; with an offset, the date in the business zone)."""
    text = text.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(zone).date() if moment.tzinfo else moment.date()


class _Reader:
    def __init__(self, path: Path, max_bytes: int, zone: ZoneInfo) -> None:
        self.path, self.max_bytes, self.zone = path, max_bytes, zone
        self.kind = self.ns = self.q = ""
        self.created_at: str | None = None

    # -- errors

    def reject(self, where: str, line: int | None, zh: str, en: str) -> StatementRejected:
        place = f"<{bounded(where, 80)}>" + (f" 第 {line} 行 line {line}" if line else "")
        return StatementRejected(str(self.path), place, bounded(zh, 300), bounded(en, 300))

    def _path(self, el: Any) -> str:
        parts = []
        while el is not None and _local(el.tag) not in ("Document",):
            parts.append(_local(el.tag))
            el = el.getparent()
        return "/".join(reversed(parts))

    # -- prolog

    def _prolog(self) -> None:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as f:
                head = f.read(_PROLOG_BYTES)
        except OSError as exc:
            raise self.reject("-", None, f"无法读取文件：{exc.strerror}", f"cannot read the file: {exc.strerror}") from None
        if size > self.max_bytes:
            raise self.reject("Document", None, f"文件过大（{size} 字节，上限 {self.max_bytes}）",
                              f"file too large ({size} bytes, limit {self.max_bytes})")
        if not looks_like_xml(head):
            raise self.reject("Document", 1, "不是 XML 文件", "not an XML file")
        for marker in (b"<!DOCTYPE", b"<!ENTITY"):
            at = head.find(marker)
            if at >= 0:
                raise self.reject(marker[2:].decode(), head.count(b"\n", 0, at) + 1,
                                  "不允许 DTD 或实体声明", "DTDs and entities are not allowed")
        try:
            with self.path.open("rb") as f:
                for _event, el in etree.iterparse(f, events=("start",), **_PARSER_OPTIONS):
                    docinfo = el.getroottree().docinfo
                    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url:
                        raise self.reject("DOCTYPE", el.sourceline, "不允许 DTD 或实体声明",
                                          "DTDs and entities are not allowed")
                    tag = el.tag if isinstance(el.tag, str) else ""
                    ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
                    m = _NS_RE.match(ns)
                    if _local(tag) != "Document" or m is None:
                        raise self.reject(_local(tag), el.sourceline,
                                          f"不是 camt.053 或 camt.054 报文（命名空间 {ns or '无'}）",
                                          f"not a camt.053 or camt.054 document (namespace {ns or 'none'})")
                    self.kind, self.ns, self.q = m.group(1), ns, f"{{{ns}}}"
                    return
        except etree.XMLSyntaxError as exc:
            raise self._syntax(exc) from None
        raise self.reject("Document", None, "缺少根元素", "no root element")

    def _syntax(self, exc: Any) -> StatementRejected:
        msg = str(getattr(exc, "msg", exc)).strip()
        tag = re.search(r"\btag (\w+)", msg) or re.search(r"tag mismatch: (\w+)", msg)
        return self.reject(tag.group(1) if tag else "XML", getattr(exc, "lineno", None) or None,
                           f"XML 格式损坏：{bounded(msg, 160)}", f"malformed XML: {bounded(msg, 160)}")

    # -- helpers on elements

    def _find(self, el: Any, path: str) -> Any:
        return el.find("/".join(self.q + p for p in path.split("/")))

    def _text(self, el: Any, path: str, required: bool = False) -> str | None:
        node = self._find(el, path)
        text = node.text.strip() if node is not None and node.text is not None else None
        if required and not text:
            raise self.reject(f"{self._path(el)}/{path}", el.sourceline, "缺少必需元素", "missing required element")
        return text or None

    def _ref(self, el: Any, path: str) -> str | None:
        return safe_ref(self._text(el, path))

    def _amount(self, el: Any, path: str, required: bool = True) -> int | None:
        node = self._find(el, path)
        if node is None:
            if required:
                raise self.reject(f"{self._path(el)}/{path}", el.sourceline, "缺少必需元素",
                                  "missing required element")
            return None
        ccy = node.get("Ccy")
        if ccy != CURRENCY:
            raise self.reject(self._path(node), node.sourceline, f"币种须为人民币 CNY（Ccy={bounded(str(ccy), 8)}）",
                              f"currency must be CNY (Ccy={bounded(str(ccy), 8)})")
        try:
            return decimal_to_fen(node.text or "")
        except ValueError as exc:
            raise self.reject(self._path(node), node.sourceline, str(exc), "invalid amount") from None

    def _direction(self, el: Any, path: str = "CdtDbtInd") -> Direction:
        text = self._text(el, path, required=True)
        try:
            return Direction(text or "")
        except ValueError:
            raise self.reject(f"{self._path(el)}/{path}", el.sourceline, "借贷标志须为 CRDT 或 DBIT",
                              f"CdtDbtInd must be CRDT or DBIT, got '{bounded(str(text), 8)}'") from None

    def _count(self, el: Any, path: str) -> int | None:
        text = self._text(el, path)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit() and len(text) <= 15):
            raise self.reject(f"{self._path(el)}/{path}", el.sourceline, "笔数须为非负整数",
                              f"not a count: '{bounded(text, 20)}'")
        return int(text)

    def _date_of(self, el: Any, tag: str) -> date | None:
        text = self._text(el, f"{tag}/Dt") or self._text(el, f"{tag}/DtTm")
        if text is None:
            return None
        try:
            return _date(text, self.zone)
        except ValueError:
            raise self.reject(f"{self._path(el)}/{tag}", el.sourceline, "日期格式错误",
                              f"not an ISO date: '{bounded(text, 30)}'") from None

    # -- main pass

    def run(self) -> list[Statement]:
        self._prolog()
        root_name, stmt_name, source = _MESSAGES[self.kind]
        tags = [self.q + t for t in ("GrpHdr", stmt_name, "Ntry")]
        out: list[Statement] = []
        current: _Open | None = None
        try:
            with self.path.open("rb") as f:
                for event, el in etree.iterparse(f, events=("start", "end"), tag=tags, **_PARSER_OPTIONS):
                    name = _local(el.tag)
                    if name == stmt_name and event == "start":
                        current = _Open()
                    elif name == "Ntry" and event == "end":
                        if current is None or _local(el.getparent().tag) != stmt_name:
                            raise self.reject(self._path(el), el.sourceline, "条目位置错误", "Ntry out of place")
                        self._entry(el, current, source)
                        el.clear(keep_tail=False)
                        parent = el.getparent()
                        while el.getprevious() is not None and _local(el.getprevious().tag) == "Ntry":
                            parent.remove(el.getprevious())  # entries already read: bounded memory
                    elif name == stmt_name and event == "end":
                        assert current is not None
                        out.append(self._statement(el, current, source))
                        current = None
                        el.clear(keep_tail=False)
                    elif name == "GrpHdr" and event == "end":
                        if _local(el.getparent().tag) != root_name:
                            raise self.reject(self._path(el), el.sourceline, f"应为 <{root_name}>",
                                              f"expected <{root_name}> under Document")
                        created = self._text(el, "CreDtTm")
                        self.created_at = None if created is None else bounded(created, 40)
        except etree.XMLSyntaxError as exc:
            raise self._syntax(exc) from None
        if not out:
            raise self.reject(stmt_name, None, "文件中没有对账单", f"no <{stmt_name}> in the file")
        return out

    def _entry(self, el: Any, st: _Open, source: Source) -> None:
        st.position += 1
        line = el.sourceline
        amount = self._amount(el, "Amt")
        assert amount is not None
        direction = self._direction(el)
        rvsl = (self._text(el, "RvslInd") or "false").lower()
        if rvsl not in ("true", "false", "1", "0"):
            raise self.reject(f"{self._path(el)}/RvslInd", line, "冲正标志须为 true 或 false",
                              "RvslInd must be true or false")
        sts_text = self._text(el, "Sts/Cd") or self._text(el, "Sts")
        try:
            status = EntryStatus(sts_text or "")
        except ValueError:
            raise self.reject(f"{self._path(el)}/Sts", line, "记账状态须为 BOOK、PDNG 或 INFO",
                              f"Sts must be BOOK, PDNG or INFO, got '{bounded(str(sts_text), 8)}'") from None
        booking, value = self._date_of(el, "BookgDt"), self._date_of(el, "ValDt")
        acct_ref = self._ref(el, "AcctSvcrRef")
        entry_ref = self._ref(el, "NtryRef") or acct_ref or f"#{st.position}"
        if entry_ref in st.refs:
            raise self.reject(f"{self._path(el)}/NtryRef", line, f"条目参考号重复：{entry_ref}",
                              f"duplicate entry reference {entry_ref}")
        st.refs.add(entry_ref)
        st.entries += 1
        st.entries_sum += amount
        if direction is Direction.CREDIT:
            st.credits, st.credits_sum = st.credits + 1, st.credits_sum + amount
        else:
            st.debits, st.debits_sum = st.debits + 1, st.debits_sum + amount
        raw = _SPACE_RE.sub("><", _XMLNS_RE.sub("", etree.tostring(el, encoding="unicode").strip()))
        raw = bounded(mask_card_numbers(raw), RAW_LIMIT)
        # batch and transaction details
        batch: tuple[str | None, int | None, int | None] = (None, None, None)
        details: list[Any] = []
        dtls_all = el.findall(self.q + "NtryDtls")
        for dtls in dtls_all:
            btch = self._find(dtls, "Btch")
            txs = dtls.findall(self.q + "TxDtls")
            if btch is not None:
                count, total = self._count(btch, "NbOfTxs"), self._amount(btch, "TtlAmt", required=False)
                if count is not None and txs and count != len(txs):
                    raise self.reject(f"{self._path(btch)}/NbOfTxs", btch.sourceline,
                                      f"批量笔数 {count} 与明细 {len(txs)} 条不符",
                                      f"batch count {count} differs from its {len(txs)} TxDtls")
                if total is not None and len(dtls_all) == 1 and total != amount:
                    raise self.reject(f"{self._path(btch)}/TtlAmt", btch.sourceline, "批量总金额与记账金额不符",
                                      f"batch total {total} fen differs from the entry amount {amount} fen")
                batch = (self._ref(btch, "PmtInfId"), count, total)
            details.extend(txs)
        common = {"source": source, "statement_id": "", "direction": direction, "status": status,
                  "booking_date": booking, "value_date": value, "reversal": rvsl in ("true", "1"), "raw": raw,
                  "pmt_inf_id": batch[0], "batch_count": batch[1], "batch_total_fen": batch[2]}
        if len(details) <= 1:
            tx = details[0] if details else None
            st.lines.append(self._line(common, entry_ref, amount, acct_ref, tx))
            return
        fens = [self._amount(tx, "Amt", required=False) or self._amount(tx, "AmtDtls/TxAmt/Amt") for tx in details]
        if sum(f or 0 for f in fens) != amount:
            raise self.reject(f"{self._path(el)}/NtryDtls", line, "明细金额合计与记账金额不符",
                              f"the TxDtls amounts do not add up to the entry amount {amount} fen")
        for k, (tx, fen) in enumerate(zip(details, fens, strict=True), 1):
            assert fen is not None
            st.lines.append(self._line(common, f"{entry_ref}/{k}", fen, acct_ref, tx))

    def _line(self, common: dict[str, Any], entry_ref: str, amount: int, acct_ref: str | None,
              tx: Any) -> BankLine:
        values = dict(common)
        if tx is not None:
            values["pmt_inf_id"] = self._ref(tx, "Refs/PmtInfId") or values["pmt_inf_id"]
            acct_ref = self._ref(tx, "Refs/AcctSvcrRef") or acct_ref
            values["end_to_end_id"] = self._ref(tx, "Refs/EndToEndId")
        return BankLine(entry_ref=entry_ref, amount_fen=amount, acct_svcr_ref=acct_ref, **values)

    def _statement(self, el: Any, st: _Open, source: Source) -> Statement:
        stmt_id = bounded(mask_card_numbers(self._text(el, "Id", required=True) or ""), 64)
        account = (self._text(el, "Acct/Id/IBAN") or self._text(el, "Acct/Id/Othr/Id")
                   or ("" if source is Source.CAMT054 else None))
        if account is None:
            raise self.reject(f"{self._path(el)}/Acct/Id", el.sourceline, "缺少账号", "missing account")
        balances: dict[str, Balance] = {}
        for bal in el.findall(self.q + "Bal"):
            code = self._text(bal, "Tp/CdOrPrtry/Cd") or self._text(bal, "Tp/CdOrPrtry/Prtry")
            if code not in _KEPT_BALANCES:
                continue
            if code in balances:
                raise self.reject(f"{self._path(bal)}/Tp", bal.sourceline, f"余额 {code} 重复",
                                  f"balance {code} given twice")
            fen = self._amount(bal, "Amt")
            assert fen is not None
            signed = fen if self._direction(bal) is Direction.CREDIT else -fen
            balances[code] = Balance(code, signed, self._date_of(bal, "Dt"))
        summary = self._summary(el, st)
        lines = [_with_statement(ln, stmt_id) for ln in st.lines]
        return Statement(source=source, statement_id=stmt_id, account=bounded(mask_card_numbers(account), 64),
                         lines=lines, balances=balances, summary=summary, created_at=self.created_at)

    def _summary(self, el: Any, st: _Open) -> Summary | None:
        node = self._find(el, "TxsSummry")
        if node is None:
            return None
        stated = Summary(
            entries=self._count(node, "TtlNtries/NbOfNtries"),
            entries_sum_fen=self._plain(node, "TtlNtries/Sum"),
            net_fen=self._net(node),
            credits=self._count(node, "TtlCdtNtries/NbOfNtries"),
            credits_sum_fen=self._plain(node, "TtlCdtNtries/Sum"),
            debits=self._count(node, "TtlDbtNtries/NbOfNtries"),
            debits_sum_fen=self._plain(node, "TtlDbtNtries/Sum"))
        actual = {"TtlNtries/NbOfNtries": (stated.entries, st.entries),
                  "TtlNtries/Sum": (stated.entries_sum_fen, st.entries_sum),
                  "TtlNtries/TtlNetNtry": (stated.net_fen, st.credits_sum - st.debits_sum),
                  "TtlCdtNtries/NbOfNtries": (stated.credits, st.credits),
                  "TtlCdtNtries/Sum": (stated.credits_sum_fen, st.credits_sum),
                  "TtlDbtNtries/NbOfNtries": (stated.debits, st.debits),
                  "TtlDbtNtries/Sum": (stated.debits_sum_fen, st.debits_sum)}
        for path, (said, found) in actual.items():
            if said is not None and said != found:
                amounts = not path.endswith("NbOfNtries")  # shown in yuan
                a, b = (format_yuan(said), format_yuan(found)) if amounts else (str(said), str(found))
                raise self.reject(f"{self._path(node)}/{path}", node.sourceline,
                                  f"汇总与明细不符：汇总 {a}，明细 {b}",
                                  f"TxsSummry disagrees with the entries: stated {a}, entries give {b}")
        return stated

    def _plain(self, el: Any, path: str) -> int | None:
        text = self._text(el, path)
        if text is None:
            return None
        try:
            return decimal_to_fen(text)
        except ValueError as exc:
            raise self.reject(f"{self._path(el)}/{path}", el.sourceline, str(exc), "invalid amount") from None

    def _net(self, el: Any) -> int | None:
        node = self._find(el, "TtlNtries/TtlNetNtry")
        if node is None:
            return None
        fen = self._plain(node, "Amt")
        if fen is None:
            return None
        return fen if self._direction(node) is Direction.CREDIT else -fen


class _Open:
    """What is counted while one statement's entries stream past."""

    def __init__(self) -> None:
        self.position = self.entries = self.entries_sum = 0
        self.credits = self.credits_sum = self.debits = self.debits_sum = 0
        self.refs: set[str] = set()
        self.lines: list[BankLine] = []


def _with_statement(line: BankLine, statement_id: str) -> BankLine:
    from dataclasses import replace

    return replace(line, statement_id=statement_id)
