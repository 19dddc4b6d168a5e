"""Read pain.002 payment status reports and camt.054 notifications (incl. 退票 returns), hardened.

中文：读取银行回来的 pain.002（支付状态报告，任意版本 .03/.10/.12/.14…）和 camt.054（借贷记通知，
任意版本，含“成功后退票”）。流式解析（lxml iterparse，边读边清理），一百万条状态也只占有限内存。
加固：带 DOCTYPE / ENTITY（DTD、外部实体、“十亿笑声”）的文件一律拒绝；不访问网络；不解析实体；
不开 huge_tree；GBK 与 UTF-8 声明的编码都能读；根元素不对、命名空间未知、XML 损坏、缺少必需元素、
金额不合法（负数、超过两位小数、非人民币）时抛出 :class:`ReportRejected`，指明行号和元素，
并且不返回任何结果（全有或全无）。

English — two ways to read, both all-or-nothing:

- :func:`read_report` parses the whole file and only then returns a :class:`StatusReport` or
  :class:`NotificationReport` holding every item (for ordinary file sizes);
- two-phase, for files too large to hold: :func:`check_report` streams the file once, checks every
  element and returns a :class:`CheckedReport` (header, payment-information statuses, counts,
  SHA-256) without keeping items; :meth:`CheckedReport.items` then streams the items again and
  raises :class:`ReportRejected` if the file changed in between (apply them in one database
  transaction so a late raise rolls everything back).

Group and payment-information status (documented rule, see docs/formats.md): a transaction listed
without its own ``TxSts`` takes its ``PmtInfSts``, else the ``GrpSts`` (``status_source`` says which);
a listed transaction whose own status contradicts a rejected (RJCT) group or payment information
makes the file invalid. Transactions of the original message that the report does not list at all
take the status of their payment information, else of the group: :func:`implied_statuses` expands
them, given the EndToEndIds of the original pain.001 (which only the caller knows). ``PART``
(partially accepted) says nothing about an unlisted transaction.

Card numbers (documented in docs/formats.md): banks echo the payee's account in free text
(``账号6217…8009户名不符``) and in any element. Every text this reader hands on — reason codes and
AddtlInf, EndToEndId, MsgId, CreDtTm, notification ids, AcctSvcrRef, entry status — is masked here
(:func:`settleguard.masking.mask_card_numbers`), once, before anything stores, logs or shows it; the
other elements (OrgnlTxRef/CdtrAcct, Cdtr/Nm, RmtInf, AddtlNtryInf, AddtlTxInf, accounts …) are never
handed on. OrgnlMsgId and OrgnlPmtInfId are kept verbatim: they are matched against the identifiers of
the pain.001 we sent (``SGB`` + 20 digits), and must be echoed only through
:func:`settleguard.masking.bounded`. A :class:`ReportRejected` masks and bounds its whole text, and
every file content it quotes is cut to 60 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any

from lxml import etree  # type: ignore[import-untyped]

from settleguard.hashing import sha256_file
from settleguard.masking import bounded, mask_card_numbers

NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
_NS_RE = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:(pain\.002|camt\.054)\.001\.(\d{2})$")
ROOTS = {"pain.002": "CstmrPmtStsRpt", "camt.054": "BkToCstmrDbtCdtNtfctn"}
TX_STATUSES = frozenset({"ACCC", "ACCP", "ACFC", "ACSC", "ACSP", "ACTC", "ACWC", "ACWP", "BLCK", "CANC", "PATC",
                         "PDNG", "PRES", "RCVD", "RJCT"})
GROUP_STATUSES = TX_STATUSES | {"PART"}
REJECTED = "RJCT"
CURRENCY = "CNY"
_AMOUNT_RE = re.compile(r"^([0-9]{1,18})(?:\.([0-9]{1,17}))?$")  # ASCII digits only
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_PROLOG_BYTES = 1 << 16
ECHO_LIMIT = 60  # characters of file content quoted in a ReportRejected
REASON_LIMIT = 400
_MASK_CACHE = 4096  # distinct reason texts remembered per file (reasons repeat; keys do not)


class ReportRejected(ValueError):
    """A report file refused as a whole; nothing from it may be applied.

    Attributes: path, line (1-based, or None), element (local name, or None), reason.
    """

    def __init__(self, path: Path | str, line: int | None, element: str | None, reason: str) -> None:
        # The reason and the element may quote the file: masked (card numbers) and bounded, here, once.
        element = bounded(element, 64) if element else element
        reason = bounded(reason, REASON_LIMIT)
        self.path, self.line, self.element, self.reason = Path(path), line, element, reason
        where = f"{self.path}:{line}" if line else str(self.path)
        what = f" <{element}>" if element else ""
        super().__init__(f"{where}:{what} {reason}")


# ------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Reason:
    """One StsRsnInf / RtrInf: Rsn/Cd (ISO external code) or Rsn/Prtry, and AddtlInf joined by "; "."""

    code: str | None
    proprietary: str | None
    additional_info: str


@dataclass(frozen=True)
class GroupStatus:
    """OrgnlGrpInfAndSts: which of our messages the report is about and its group status (if given)."""

    original_message_id: str
    original_message_name: str
    status: str | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class PaymentInformationStatus:
    """OrgnlPmtInfAndSts header: OrgnlPmtInfId, PmtInfSts (if given), reasons, and its line."""

    original_payment_information_id: str
    status: str | None
    reasons: tuple[Reason, ...]
    line: int


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    """One transaction's status (TxInfAndSts, or implied by its payment information or group).

    ``reason_code``/``reason_proprietary`` come from the first StsRsnInf (of the transaction, else of
    the level its status came from); ``additional_info`` joins every AddtlInf of those reasons.
    """

    end_to_end_id: str
    status: str
    reason_code: str | None
    reason_proprietary: str | None
    additional_info: str
    payment_information_id: str | None
    status_source: str  # "transaction", "payment_information" or "group"
    amount_fen: int | None  # OrgnlTxRef/Amt/InstdAmt when the bank sends it
    line: int | None


@dataclass(frozen=True, slots=True)
class NotificationEntry:
    """One booked movement from a camt.054 entry (one per TxDtls, or the entry itself if it has none).

    A return after success (退票) is a credit carrying RtrInf and our original EndToEndId.
    """

    notification_id: str
    end_to_end_id: str | None
    amount_fen: int
    credit_debit: str  # CRDT or DBIT
    reversal: bool
    entry_status: str  # BOOK, PDNG, INFO, ...
    booking_date: date | None
    value_date: date | None
    account_servicer_ref: str | None
    return_reason: Reason | None
    line: int

    @property
    def is_return(self) -> bool:
        return self.return_reason is not None


@dataclass(frozen=True)
class ReportHeader:
    """What a file is: kind ("pain.002"/"camt.054"), version ("pain.002.001.12"), MsgId, CreDtTm."""

    kind: str
    version: str
    message_id: str
    created_at: str
    group: GroupStatus | None  # pain.002 only


@dataclass(frozen=True)
class StatusReport:
    path: Path
    sha256: str
    header: ReportHeader
    payment_informations: tuple[PaymentInformationStatus, ...]
    transactions: tuple[TransactionStatus, ...]

    @property
    def group(self) -> GroupStatus:
        assert self.header.group is not None
        return self.header.group


@dataclass(frozen=True)
class NotificationReport:
    path: Path
    sha256: str
    header: ReportHeader
    entries: tuple[NotificationEntry, ...]

    @property
    def returns(self) -> tuple[NotificationEntry, ...]:
        """Entries with RtrInf: money that came back after a payout had succeeded (退票)."""
        return tuple(e for e in self.entries if e.is_return)


@dataclass(frozen=True)
class CheckedReport:
    """Phase one of a two-phase read: the file is valid as a whole; :meth:`items` streams it again."""

    path: Path
    sha256: str
    header: ReportHeader
    payment_informations: tuple[PaymentInformationStatus, ...]
    count: int
    size: int = field(repr=False)

    def items(self) -> Iterator[TransactionStatus | NotificationEntry]:
        """Every item of the file, in file order; raises ReportRejected at the end if the file changed."""
        scan = _Scan(self.path)
        yield from scan.run()
        if scan.sha256 != self.sha256:
            raise ReportRejected(self.path, None, None, "file changed since it was checked 文件在校验后被修改")


# ------------------------------------------------------------------------------------------- API


def read_report(path: Path) -> StatusReport | NotificationReport:
    """Parse a pain.002 or camt.054 file completely; raise ReportRejected (and return nothing) if bad."""
    scan = _Scan(Path(path))
    items = list(scan.run())
    header = scan.header()
    if header.kind == "pain.002":
        txs = tuple(i for i in items if isinstance(i, TransactionStatus))
        return StatusReport(scan.path, scan.sha256, header, tuple(scan.pmt_infos), txs)
    entries = tuple(i for i in items if isinstance(i, NotificationEntry))
    return NotificationReport(scan.path, scan.sha256, header, entries)


def check_report(path: Path) -> CheckedReport:
    """Phase one: stream and check the whole file, keeping only its header and counts."""
    scan = _Scan(Path(path))
    count = sum(1 for _ in scan.run())
    return CheckedReport(scan.path, scan.sha256, scan.header(), tuple(scan.pmt_infos), count, scan.size)


class ReportStream:
    """A single streaming pass that checks and yields items at once (for applying inside one transaction).

    ``kind`` and ``version`` are known on opening; :meth:`items` yields every item in file order and
    raises :class:`ReportRejected` at whatever point the file turns out to be bad — the caller must
    apply the items in one database transaction so that a late raise rolls back all of them.
    ``header``, ``payment_informations`` (complete), ``count``, ``sha256`` and ``size`` are final
    once :meth:`items` is exhausted; ``current_payment_information`` is the one being read.
    """

    def __init__(self, path: Path) -> None:
        self._scan = _Scan(Path(path))
        self._scan._prolog()
        self.path = self._scan.path
        self.kind, self.version = self._scan.kind, self._scan.version
        self.count = 0
        self.done = False

    def items(self) -> Iterator[TransactionStatus | NotificationEntry]:
        if self.count or self.done:
            raise RuntimeError("a ReportStream is read once")
        for item in self._scan.run():
            self.count += 1
            yield item
        self.done = True

    @property
    def group(self) -> GroupStatus | None:
        return self._scan.group

    @property
    def current_payment_information(self) -> PaymentInformationStatus | None:
        return self._scan.pmt_infos[-1] if self._scan.pmt_infos else None

    @property
    def header(self) -> ReportHeader:
        assert self.done, "read items() first"
        return self._scan.header()

    @property
    def payment_informations(self) -> tuple[PaymentInformationStatus, ...]:
        return tuple(self._scan.pmt_infos)

    @property
    def sha256(self) -> str:
        assert self.done, "read items() first"
        return self._scan.sha256

    @property
    def size(self) -> int:
        return self._scan.size


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks); ReportRejected if it cannot be read."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ReportRejected(path, None, None, f"cannot read file 无法读取文件: {exc.strerror}") from None


def implied_statuses(header: ReportHeader, payment_informations: Sequence[PaymentInformationStatus],
                     original: Mapping[str, Sequence[str]], listed: set[str] | frozenset[str]
                     ) -> list[TransactionStatus]:
    """Statuses for the original message's transactions the report does not list.

    ``original`` maps each PmtInfId of the pain.001 we sent (``header.group.original_message_id``) to
    its EndToEndIds; ``listed`` holds the EndToEndIds the report listed. A PmtInfSts applies to every
    unlisted transaction of that payment information, otherwise the GrpSts applies (not ``PART``).
    """
    group = header.group
    if group is None:
        return []
    by_id = {p.original_payment_information_id: p for p in payment_informations}
    out: list[TransactionStatus] = []
    for pmt_id, keys in original.items():
        pmt = by_id.get(pmt_id)
        if pmt is not None and pmt.status is not None and pmt.status != "PART":
            status, reasons, source, line = pmt.status, pmt.reasons, "payment_information", pmt.line
        elif group.status is not None and group.status != "PART":
            status, reasons, source, line = group.status, group.reasons, "group", None
        else:
            continue
        code, prtry, info = _first(reasons)
        out.extend(TransactionStatus(k, status, code, prtry, info, pmt_id, source, None, line)
                   for k in keys if k not in listed)
    return out


def _first(reasons: Sequence[Reason]) -> tuple[str | None, str | None, str]:
    if not reasons:
        return None, None, ""
    info = "; ".join(r.additional_info for r in reasons if r.additional_info)
    return reasons[0].code, reasons[0].proprietary, info


# ------------------------------------------------------------------------------------------- parsing


class _HashingReader:
    """A binary file wrapper that hashes what the parser reads."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def _echo(value: object) -> str:
    """File content quoted in a rejection: masked, cut to ECHO_LIMIT characters, in quotes."""
    return f"'{bounded(str(value), ECHO_LIMIT)}'"


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return "#comment"
    return tag.rsplit("}", 1)[-1]


def parse_amount(text: str | None, currency: str | None) -> int:
    """An ISO 20022 amount as exact integer fen; raises ValueError with a bilingual reason."""
    if text is None or not text.strip():
        raise ValueError("empty amount 金额为空")
    if currency != CURRENCY:
        raise ValueError(f"currency must be CNY 币种须为人民币, got Ccy={_echo(currency)}")
    m = _AMOUNT_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not a non-negative decimal amount 金额格式错误: {_echo(text.strip())}")
    whole, frac = m.group(1), (m.group(2) or "")
    if frac[2:].strip("0"):
        raise ValueError(f"amount has fractions of a fen 金额超过两位小数: {_echo(text.strip())}")
    return int(whole) * 100 + int(frac[:2].ljust(2, "0"))


def _plain_amount(text: str | None, currency: str | None) -> int | None:
    """Fen of the common form ``123`` / ``123.4`` / ``123.45`` in CNY, or None (then parse_amount decides)."""
    if text is None or currency != CURRENCY:
        return None
    whole, dot, frac = text.partition(".")
    if (0 < len(whole) <= 18 and len(frac) <= 2 and (frac or not dot) and whole.isascii() and whole.isdigit()
            and (not frac or (frac.isascii() and frac.isdigit()))):
        return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)
    return None


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    m = _DATE_RE.match(text.strip())
    if m is None:
        raise ValueError(f"not an ISO date 日期格式错误: {_echo(text)}")
    return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


class _Tags:
    """Qualified tag names of one namespace, computed once per file."""

    def __init__(self, ns: str) -> None:
        q = f"{{{ns}}}"
        self.ns = ns
        self.end_to_end = q + "OrgnlEndToEndId"
        self.tx_sts = q + "TxSts"
        self.reason = q + "StsRsnInf"
        self.tx_ref = q + "OrgnlTxRef"
        self.amt = q + "Amt"
        self.instd = q + "InstdAmt"


class _Scan:
    """One streaming pass over a report file. Items are yielded as the file is read; the header
    and payment-information statuses are collected as attributes; any problem raises ReportRejected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = ""
        self.size = 0
        self.kind = ""
        self.version = ""
        self.ns = ""
        self.message_id: str | None = None
        self.created_at: str | None = None
        self.group: GroupStatus | None = None
        self.pmt_infos: list[PaymentInformationStatus] = []
        self._tag_table: _Tags | None = None
        self._masked: dict[str, str] = {}

    @property
    def _tags(self) -> _Tags:
        if self._tag_table is None or self._tag_table.ns != self.ns:
            self._tag_table = _Tags(self.ns)
        return self._tag_table

    def _mask(self, text: str) -> str:
        """``text`` with card numbers masked; repeated texts (reasons) are masked once per file."""
        done = self._masked.get(text)
        if done is None:
            done = mask_card_numbers(text)
            if len(self._masked) < _MASK_CACHE:
                self._masked[text] = done
        return done

    def _mask_text(self, el: Any, path: str, required: bool = False) -> str | None:
        """:meth:`_text`, masked: for every text handed on from the file."""
        text = self._text(el, path, required)
        return None if text is None else mask_card_numbers(text)

    def reject(self, line: int | None, element: str | None, reason: str) -> ReportRejected:
        return ReportRejected(self.path, line, element, reason)

    def header(self) -> ReportHeader:
        assert self.message_id is not None
        assert self.created_at is not None
        return ReportHeader(self.kind, self.version, self.message_id, self.created_at, self.group)

    # -- prolog: refuse DTDs before parsing anything else

    def _prolog(self) -> None:
        try:
            with self.path.open("rb") as f:
                head = f.read(_PROLOG_BYTES)
        except OSError as exc:
            raise self.reject(None, None, f"cannot read file 无法读取文件: {exc.strerror}") from None
        if not head.strip():
            raise self.reject(1, None, "empty file 空文件")
        for marker in (b"<!DOCTYPE", b"<!ENTITY"):
            at = head.find(marker)
            if at >= 0:
                raise self.reject(head.count(b"\n", 0, at) + 1, marker[2:].decode(),
                                  "DTDs and entities are not allowed 不允许 DTD 或实体声明")
        try:
            with self.path.open("rb") as f:
                for _event, el in etree.iterparse(f, events=("start",), **_PARSER_OPTIONS):
                    if not self.kind:  # the root: Document in a known namespace, no DTD
                        docinfo = el.getroottree().docinfo
                        if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url:
                            raise self.reject(el.sourceline, "DOCTYPE",
                                              "DTDs and entities are not allowed 不允许 DTD 或实体声明")
                        self._root(el)
                        continue
                    # the message element under Document must be the one of that namespace
                    expected = f"{{{self.ns}}}{ROOTS[self.kind]}"
                    if el.tag != expected:
                        raise self.reject(el.sourceline, _local(el.tag),
                                          f"expected <{ROOTS[self.kind]}> under Document 报文类型不符 "
                                          f"(a {self.kind} file), got {_echo(_local(el.tag))}")
                    return
        except etree.XMLSyntaxError as exc:
            raise self._syntax(exc) from None
        if self.kind:
            raise self.reject(None, ROOTS[self.kind], "missing required element 缺少必需元素")
        raise self.reject(None, None, "no root element 缺少根元素")

    def _root(self, el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
        m = _NS_RE.match(ns)
        if _local(tag) != "Document" or m is None:
            raise self.reject(el.sourceline, _local(tag),
                              f"not a pain.002 or camt.054 document 不是 pain.002 或 camt.054 报文 "
                              f"(root {_echo(_local(tag))}, namespace {_echo(ns or '(none)')})")
        self.kind = m.group(1)
        self.version = f"{self.kind}.001.{m.group(2)}"
        self.ns = ns

    def _syntax(self, exc: Any) -> ReportRejected:
        line = getattr(exc, "lineno", None) or None
        msg = str(getattr(exc, "msg", exc)).strip()
        tag = re.search(r"\btag (\w+)", msg) or re.search(r"Opening and ending tag mismatch: (\w+)", msg)
        return self.reject(line, tag.group(1) if tag else None, f"malformed XML 报文格式损坏: {bounded(msg, 160)}")

    # -- main pass

    def run(self) -> Iterator[TransactionStatus | NotificationEntry]:
        if not self.kind:  # (a ReportStream has read the prolog already)
            self._prolog()
        q = f"{{{self.ns}}}"
        handler: Callable[[Any], Iterator[TransactionStatus | NotificationEntry]]
        if self.kind == "pain.002":
            tags = [q + t for t in ("GrpHdr", "OrgnlGrpInfAndSts", "OrgnlPmtInfAndSts", "TxInfAndSts")]
            events: tuple[str, ...] = ("end",)
            handler = self._pain002
        else:
            tags = [q + t for t in ("BkToCstmrDbtCdtNtfctn", "GrpHdr", "Ntfctn", "Ntry")]
            events = ("start", "end")
            handler = self._camt054
        with self.path.open("rb") as raw:
            reader = _HashingReader(raw)
            try:
                context = etree.iterparse(reader, events=events, tag=tags, **_PARSER_OPTIONS)
                yield from handler(context)
            except etree.XMLSyntaxError as exc:
                raise self._syntax(exc) from None
            while reader.read(1 << 20):  # hash any trailing bytes the parser did not need
                pass
            self.sha256, self.size = reader.digest.hexdigest(), reader.size
        if self.message_id is None:
            raise self.reject(None, "GrpHdr", "missing required element 缺少必需元素")
        if self.kind == "pain.002" and self.group is None:
            raise self.reject(None, "OrgnlGrpInfAndSts", "missing required element 缺少必需元素")

    # helpers on elements

    def _child(self, el: Any, name: str) -> Any:
        return el.find(f"{{{self.ns}}}{name}")

    def _text(self, el: Any, path: str, required: bool = False) -> str | None:
        q = "/".join(f"{{{self.ns}}}{p}" for p in path.split("/"))
        node = el.find(q)
        text = node.text.strip() if node is not None and node.text is not None else None
        if required and not text:
            raise self.reject(el.sourceline, f"{_local(el.tag)}/{path}", "missing required element 缺少必需元素")
        return text

    def _reasons(self, el: Any, tag: str) -> tuple[Reason, ...]:
        out = []
        for r in el.iterchildren(f"{{{self.ns}}}{tag}"):
            infos = [a.text.strip() for a in r.iterchildren(f"{{{self.ns}}}AddtlInf") if a.text and a.text.strip()]
            code, prtry = self._text(r, "Rsn/Cd"), self._text(r, "Rsn/Prtry")
            out.append(Reason(None if code is None else self._mask(code), None if prtry is None else self._mask(prtry),
                              self._mask("; ".join(infos))))
        return tuple(out)

    def _group_header(self, el: Any) -> None:
        if self.message_id is not None:
            raise self.reject(el.sourceline, "GrpHdr", "more than one group header 重复的报文头")
        self.message_id = self._mask_text(el, "MsgId", required=True)
        self.created_at = self._mask_text(el, "CreDtTm", required=True)

    def _amount(self, el: Any, where: str) -> int:
        try:
            return parse_amount(el.text, el.get("Ccy"))
        except ValueError as exc:
            raise self.reject(el.sourceline, where, str(exc)) from None

    @staticmethod
    def _release(el: Any) -> None:
        """Free a handled element and any handled siblings before it (bounded memory)."""
        el.clear(keep_tail=False)
        parent = el.getparent()
        if parent is not None:
            while (prev := el.getprevious()) is not None:
                parent.remove(prev)

    # -- pain.002

    def _pain002(self, context: Any) -> Iterator[TransactionStatus | NotificationEntry]:
        q = f"{{{self.ns}}}"
        tx_tag = q + "TxInfAndSts"
        parent: Any = None
        current: PaymentInformationStatus | None = None
        for _event, el in context:
            tag = el.tag
            if tag == tx_tag:
                if current is None:  # first transaction of a payment information: its header is parsed
                    parent = el.getparent()
                    current = self._pmt_info(parent)
                yield self._transaction(el, current)
                el.clear(keep_tail=False)
                prev = el.getprevious()
                if prev is not None and prev.tag == tx_tag:
                    parent.remove(prev)
                continue
            name = tag[len(q):]
            if name == "OrgnlPmtInfAndSts":
                if current is None:
                    current = self._pmt_info(el)
                current, parent = None, None
                self._release(el)
            elif name == "GrpHdr":
                self._group_header(el)
            elif name == "OrgnlGrpInfAndSts":
                self._group(el)
                self._release(el)

    def _group(self, el: Any) -> None:
        if self.message_id is None:
            raise self.reject(el.sourceline, "GrpHdr", "missing before OrgnlGrpInfAndSts 缺少报文头")
        if self.group is not None:
            raise self.reject(el.sourceline, "OrgnlGrpInfAndSts", "more than one 重复的原报文信息")
        msg_id = self._text(el, "OrgnlMsgId", required=True)  # verbatim: matched against ours (module docstring)
        name = self._mask_text(el, "OrgnlMsgNmId", required=True)
        assert msg_id is not None
        assert name is not None
        if not name.startswith("pain.001"):
            raise self.reject(el.sourceline, "OrgnlMsgNmId",
                              f"reports on {_echo(name)}, not on a pain.001 we sent 不是针对 pain.001 的状态报告")
        status = self._status(el, "GrpSts", GROUP_STATUSES)
        self.group = GroupStatus(msg_id, name, status, self._reasons(el, "StsRsnInf"))

    def _status(self, el: Any, tag: str, allowed: frozenset[str]) -> str | None:
        value = self._text(el, tag)
        if value is not None and value not in allowed:
            node = self._child(el, tag)
            raise self.reject(node.sourceline, tag, f"unknown status code 未知状态码 {_echo(value)}")
        return value

    def _pmt_info(self, el: Any) -> PaymentInformationStatus:
        if self.group is None:
            raise self.reject(el.sourceline, "OrgnlGrpInfAndSts", "missing before OrgnlPmtInfAndSts 缺少原报文信息")
        pmt_id = self._text(el, "OrgnlPmtInfId", required=True)  # verbatim: matched against ours
        assert pmt_id is not None
        status = self._status(el, "PmtInfSts", GROUP_STATUSES)
        if self.group.status == REJECTED and status not in (None, REJECTED):
            raise self.reject(el.sourceline, "PmtInfSts",
                              f"{status} contradicts the rejected group 与整批拒绝矛盾")
        info = PaymentInformationStatus(pmt_id, status, self._reasons(el, "StsRsnInf"), el.sourceline)
        self.pmt_infos.append(info)
        return info

    def _transaction(self, el: Any, pmt: PaymentInformationStatus) -> TransactionStatus:
        # The hot loop of a million-status file: one pass over the children, tags compared with
        # precomputed qualified names, the common amount form parsed without a regex.
        group = self.group
        assert group is not None
        t = self._tags
        key = own = instd = None
        reasons: tuple[Reason, ...] = ()
        for child in el:
            tag = child.tag
            if tag == t.end_to_end:
                key = mask_card_numbers((child.text or "").strip()) or None
            elif tag == t.tx_sts:
                own = (child.text or "").strip()
                if own not in TX_STATUSES:
                    raise self.reject(child.sourceline, "TxSts", f"unknown status code 未知状态码 {_echo(own)}")
            elif tag == t.reason:
                if not reasons:
                    reasons = self._reasons(el, "StsRsnInf")
            elif tag == t.tx_ref:  # OrgnlTxRef/Amt/InstdAmt, walked by hand (find() with a path is slow)
                for amt in child.iterchildren(t.amt):
                    for node in amt.iterchildren(t.instd):
                        instd = node
        if key is None:
            raise self.reject(el.sourceline, "TxInfAndSts/OrgnlEndToEndId", "missing required element 缺少必需元素")
        if own is not None:
            if own != REJECTED and (pmt.status == REJECTED or group.status == REJECTED):
                level = "PmtInfSts" if pmt.status == REJECTED else "GrpSts"
                raise self.reject(el.sourceline, "TxSts",
                                  f"{own} for {_echo(key)} contradicts {level} RJCT 与上级拒绝状态矛盾")
            status, source = own, "transaction"
        elif pmt.status is not None and pmt.status != "PART":
            status, source, reasons = pmt.status, "payment_information", reasons or pmt.reasons
        elif group.status is not None and group.status != "PART":
            status, source, reasons = group.status, "group", reasons or group.reasons
        else:
            raise self.reject(el.sourceline, "TxSts", f"no status for {_echo(key)} at any level 该笔交易没有任何状态")
        amount = None
        if instd is not None:
            amount = _plain_amount(instd.text, instd.get("Ccy"))
            if amount is None:  # not the plain form: the full check, with its reason
                amount = self._amount(instd, "OrgnlTxRef/Amt/InstdAmt")
        if reasons:
            code, prtry, info = _first(reasons)
        else:
            code = prtry = None
            info = ""
        return TransactionStatus(key, status, code, prtry, info, pmt.original_payment_information_id, source,
                                 amount, el.sourceline)

    # -- camt.054

    def _camt054(self, context: Any) -> Iterator[TransactionStatus | NotificationEntry]:
        q = f"{{{self.ns}}}"
        notification_id: str | None = None
        for event, el in context:
            name = el.tag[len(q):]
            if event == "start":
                if name == "Ntfctn":
                    notification_id = None
                elif name == "BkToCstmrDbtCdtNtfctn" and el.getparent() is None:
                    raise self.reject(el.sourceline, name, "must be inside Document 须位于 Document 之内")
                continue
            if name == "Ntry":
                if self.message_id is None:
                    raise self.reject(el.sourceline, "GrpHdr", "missing before Ntry 缺少报文头")
                if notification_id is None:
                    notification_id = self._mask_text(el.getparent(), "Id", required=True)
                    assert notification_id is not None
                yield from self._entry(el, notification_id)
                el.clear(keep_tail=False)
                prev = el.getprevious()
                if prev is not None and prev.tag == el.tag:
                    el.getparent().remove(prev)
            elif name == "Ntfctn":
                self._text(el, "Id", required=True)
                if self._child(el, "Acct") is None:
                    raise self.reject(el.sourceline, "Ntfctn/Acct", "missing required element 缺少必需元素")
                self._release(el)
            elif name == "GrpHdr":
                self._group_header(el)

    def _entry(self, el: Any, notification_id: str) -> Iterator[NotificationEntry]:
        ns = self.ns
        amt = self._child(el, "Amt")
        if amt is None:
            raise self.reject(el.sourceline, "Ntry/Amt", "missing required element 缺少必需元素")
        total = self._amount(amt, "Ntry/Amt")
        cd = self._text(el, "CdtDbtInd", required=True)
        if cd not in ("CRDT", "DBIT"):
            raise self.reject(el.sourceline, "CdtDbtInd", f"must be CRDT or DBIT, got {_echo(cd)}")
        sts = self._child(el, "Sts")
        if sts is None:
            raise self.reject(el.sourceline, "Ntry/Sts", "missing required element 缺少必需元素")
        entry_status = mask_card_numbers((self._text(sts, "Cd") or self._text(sts, "Prtry") or "") if len(sts)
                                         else (sts.text or "").strip())
        if not entry_status:
            raise self.reject(sts.sourceline, "Ntry/Sts", "empty entry status 记账状态为空")
        reversal = (self._text(el, "RvslInd") or "false").lower() == "true"
        try:
            booking = self._date_choice(el, "BookgDt")
            value = self._date_choice(el, "ValDt")
        except ValueError as exc:
            raise self.reject(el.sourceline, "BookgDt/ValDt", str(exc)) from None
        entry_ref = self._mask_text(el, "AcctSvcrRef")
        details = [tx for d in el.iterchildren(f"{{{ns}}}NtryDtls") for tx in d.iterchildren(f"{{{ns}}}TxDtls")]
        if not details:
            yield NotificationEntry(notification_id, None, total, cd, reversal, entry_status, booking, value,
                                    entry_ref, None, el.sourceline)
            return
        out = []
        for tx in details:
            tx_amt = tx.find(f"{{{ns}}}Amt")
            if tx_amt is None:
                tx_amt = tx.find(f"{{{ns}}}AmtDtls/{{{ns}}}TxAmt/{{{ns}}}Amt")
            if tx_amt is not None:
                amount = self._amount(tx_amt, "TxDtls/Amt")
            elif len(details) == 1:
                amount = total
            else:
                raise self.reject(tx.sourceline, "TxDtls/Amt",
                                  "missing amount in a batch entry 批量记账明细缺少金额")
            tx_cd = self._text(tx, "CdtDbtInd") or cd
            if tx_cd != cd:
                raise self.reject(tx.sourceline, "TxDtls/CdtDbtInd", "differs from the entry 与记账方向不一致")
            rtr = self._child(tx, "RtrInf")
            reason = self._reasons(tx, "RtrInf")[0] if rtr is not None else None
            out.append(NotificationEntry(notification_id, self._mask_text(tx, "Refs/EndToEndId"), amount, cd,
                                         reversal, entry_status, booking, value,
                                         self._mask_text(tx, "Refs/AcctSvcrRef") or entry_ref, reason, tx.sourceline))
        if sum(e.amount_fen for e in out) != total:
            raise self.reject(el.sourceline, "Ntry/Amt",
                              f"entry amount {total} fen is not the sum of its details 明细金额合计与记账金额不符")
        yield from out

    def _date_choice(self, el: Any, tag: str) -> date | None:
        return _parse_date(self._text(el, f"{tag}/Dt") or self._text(el, f"{tag}/DtTm"))


_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False, "no_network": True, "load_dtd": False, "huge_tree": False,
    "remove_comments": True, "remove_pis": True, "dtd_validation": False,
}
