"""Build pain.002 and camt.054 sample files the way banks send them (tests validate them against the XSDs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape


@dataclass
class Tx:
    key: str
    status: str | None = "ACSC"
    code: str | None = None
    prtry: str | None = None
    info: Sequence[str] = ()
    amount: str | None = None  # OrgnlTxRef/Amt/InstdAmt


@dataclass
class Pmt:
    pmt_id: str
    status: str | None = None
    code: str | None = None
    info: Sequence[str] = ()
    txs: Sequence[Tx] = field(default_factory=list)


def _reason(code: str | None, prtry: str | None, info: Sequence[str]) -> str:
    if code is None and prtry is None and not info:
        return ""
    rsn = f"<Rsn><Cd>{code}</Cd></Rsn>" if code else (f"<Rsn><Prtry>{escape(prtry)}</Prtry></Rsn>" if prtry else "")
    return "<StsRsnInf>" + rsn + "".join(f"<AddtlInf>{escape(i)}</AddtlInf>" for i in info) + "</StsRsnInf>"


def pain002(pmts: Sequence[Pmt], *, group_status: str | None = None, group_code: str | None = None,
            group_info: Sequence[str] = (), version: str = "12", encoding: str = "UTF-8",
            original_message: str = "SGB20261118001", original_name: str = "pain.001.001.09") -> str:
    ns = f"urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}"
    body = []
    for p in pmts:
        txs = []
        for t in p.txs:
            ref = (f"<OrgnlTxRef><Amt><InstdAmt Ccy=\"CNY\">{t.amount}</InstdAmt></Amt></OrgnlTxRef>"
                   if t.amount is not None else "")
            txs.append("<TxInfAndSts>" + f"<OrgnlEndToEndId>{t.key}</OrgnlEndToEndId>"
                       + (f"<TxSts>{t.status}</TxSts>" if t.status else "") + _reason(t.code, t.prtry, t.info)
                       + ref + "</TxInfAndSts>")
        body.append(f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{p.pmt_id}</OrgnlPmtInfId>"
                    + (f"<PmtInfSts>{p.status}</PmtInfSts>" if p.status else "") + _reason(p.code, None, p.info)
                    + "\n".join(txs) + "</OrgnlPmtInfAndSts>")
    grp = (f"<OrgnlGrpInfAndSts><OrgnlMsgId>{original_message}</OrgnlMsgId><OrgnlMsgNmId>{original_name}</OrgnlMsgNmId>"
           + (f"<GrpSts>{group_status}</GrpSts>" if group_status else "") + _reason(group_code, None, group_info)
           + "</OrgnlGrpInfAndSts>")
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n<Document xmlns="{ns}">\n<CstmrPmtStsRpt>\n'
            "<GrpHdr><MsgId>BANK-RPT-0001</MsgId><CreDtTm>2026-11-19T08:00:00+08:00</CreDtTm></GrpHdr>\n"
            + grp + "\n" + "\n".join(body) + "\n</CstmrPmtStsRpt>\n</Document>\n")


@dataclass
class Detail:
    key: str | None
    amount: str | None
    return_code: str | None = None
    return_info: Sequence[str] = ()


@dataclass
class Entry:
    amount: str
    cd: str = "CRDT"
    status: str = "BOOK"
    booking: str | None = "2026-11-23"
    details: Sequence[Detail] = ()


def camt054(entries: Sequence[Entry], *, version: str = "08", encoding: str = "UTF-8", ccy: str = "CNY") -> str:
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.054.001.{version}"
    out = []
    for n, e in enumerate(entries, 1):
        txs = []
        for d in e.details:
            rtr = ""
            if d.return_code is not None or d.return_info:
                rtr = ("<RtrInf>" + (f"<Rsn><Cd>{d.return_code}</Cd></Rsn>" if d.return_code else "")
                       + "".join(f"<AddtlInf>{escape(i)}</AddtlInf>" for i in d.return_info) + "</RtrInf>")
            txs.append("<TxDtls>" + (f"<Refs><EndToEndId>{d.key}</EndToEndId></Refs>" if d.key else "")
                       + (f'<Amt Ccy="{ccy}">{d.amount}</Amt>' if d.amount is not None else "")
                       + f"<CdtDbtInd>{e.cd}</CdtDbtInd>" + rtr + "</TxDtls>")
        details = f"<NtryDtls>{''.join(txs)}</NtryDtls>" if txs else ""
        out.append(f'<Ntry><NtryRef>E{n}</NtryRef><Amt Ccy="{ccy}">{e.amount}</Amt><CdtDbtInd>{e.cd}</CdtDbtInd>'
                   f"<Sts><Cd>{e.status}</Cd></Sts>"
                   + (f"<BookgDt><Dt>{e.booking}</Dt></BookgDt>" if e.booking else "")
                   + f"<AcctSvcrRef>REF{n}</AcctSvcrRef>"
                   "<BkTxCd><Prtry><Cd>RTRN</Cd></Prtry></BkTxCd>" + details + "</Ntry>")
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n<Document xmlns="{ns}">\n<BkToCstmrDbtCdtNtfctn>\n'
            "<GrpHdr><MsgId>BANK-NTF-0001</MsgId><CreDtTm>2026-11-23T18:00:00+08:00</CreDtTm></GrpHdr>\n"
            "<Ntfctn><Id>NTF-20261123</Id><Acct><Id><Othr><Id>110060123456789</Id></Othr></Id></Acct>\n"
            + "\n".join(out) + "\n</Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n")
