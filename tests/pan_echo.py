"""Bank answers that echo a full card number in every field they can (schema-valid pain.002 and camt.054, an
HTTP bank's JSON), in every written form: plain, grouped by four with spaces, dashed, full-width. Used by the
reader's unit tests and the PAN scan (tests/e2e/test_pan_scan.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def forms(pan: str) -> list[str]:
    """``pan`` as banks and people write it: plain, ``6217 0000 …``, ``6217-0000-…``, full-width (plain and
    grouped with ideographic spaces)."""
    groups = [pan[i:i + 4] for i in range(0, len(pan), 4)]
    return [pan, " ".join(groups), "-".join(groups), pan.translate(_FULL), "\u3000".join(groups).translate(_FULL)]


def form(pan: str, n: int) -> str:
    """The ``n``-th written form of ``pan`` (cycling)."""
    all_ = forms(pan)
    return all_[n % len(all_)]


@dataclass
class EchoTx:
    """One transaction of a pain.002 answer; ``pan`` is echoed in every free-text and account element."""

    key: str
    status: str
    pan: str
    code: str | None = None  # Rsn/Cd; without it the echo goes into Rsn/Prtry
    amount: str | None = None
    n: int = 0  # which written form


def _x(text: str) -> str:
    return escape(text)


def _pain002_tx(t: EchoTx, version: str) -> str:
    p = form(t.pan, t.n)
    rsn = f"<Rsn><Cd>{t.code}</Cd></Rsn>" if t.code else f"<Rsn><Prtry>{_x('账号' + p)}</Prtry></Rsn>"
    reason = (f"<StsRsnInf>{rsn}<AddtlInf>{_x(f'账号{p}户名不符')}</AddtlInf>"
              f"<AddtlInf>{_x(f'payee account {p} name mismatch')}</AddtlInf></StsRsnInf>"
              if t.status == "RJCT" else f"<StsRsnInf><AddtlInf>{_x(f'已入账 {p}')}</AddtlInf></StsRsnInf>")
    amt = f'<Amt><InstdAmt Ccy="CNY">{t.amount}</InstdAmt></Amt>' if t.amount else ""
    cdtr = f"<Cdtr><Pty><Nm>{_x('张三 ' + p)}</Nm></Pty></Cdtr>"
    ref = (f"<OrgnlTxRef>{amt}<RmtInf><Ustrd>{_x('结算款 ' + p)}</Ustrd></RmtInf>"
           f"<Dbtr><Pty><Nm>{_x('付款方 ' + p)}</Nm></Pty></Dbtr>"
           f"<DbtrAcct><Id><Othr><Id>{_x(p)}</Id></Othr></Id></DbtrAcct>"
           f"{cdtr}<CdtrAcct><Id><Othr><Id>{_x(p)}</Id></Othr></Id><Nm>{_x('账户 ' + p)}</Nm></CdtrAcct>"
           "</OrgnlTxRef>")
    return (f"<TxInfAndSts><StsId>{_x(p)}</StsId><OrgnlInstrId>{_x(p)}</OrgnlInstrId>"
            f"<OrgnlEndToEndId>{t.key}</OrgnlEndToEndId>"
            f"<TxSts>{t.status}</TxSts>{reason}<AcctSvcrRef>{_x(p)}</AcctSvcrRef><ClrSysRef>{_x(p)}</ClrSysRef>"
            f"{ref}</TxInfAndSts>")


def pain002_echo(original_message: str, pmts: Sequence[tuple[str, Sequence[EchoTx]]], *, pan: str,
                 version: str = "12", group_status: str | None = None) -> str:
    """A pain.002 answering ``original_message`` (payment information id -> transactions), echoing ``pan``
    also in the group header's MsgId, the group's and each payment information's AddtlInf."""
    ns = f"urn:iso:std:iso:20022:tech:xsd:pain.002.001.{version}"
    body = []
    for i, (pmt_id, txs) in enumerate(pmts):
        p = form(pan, i + 1)
        body.append(f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{pmt_id}</OrgnlPmtInfId>"
                    f"<StsRsnInf><AddtlInf>{_x('批次 ' + p)}</AddtlInf></StsRsnInf>"
                    + "".join(_pain002_tx(t, version) for t in txs) + "</OrgnlPmtInfAndSts>")
    grp = (f"<OrgnlGrpInfAndSts><OrgnlMsgId>{original_message}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>"
           + (f"<GrpSts>{group_status}</GrpSts>" if group_status else "")
           + f"<StsRsnInf><AddtlInf>{_x('回执 ' + form(pan, 2))}</AddtlInf></StsRsnInf></OrgnlGrpInfAndSts>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{ns}">\n<CstmrPmtStsRpt>\n'
            f"<GrpHdr><MsgId>R{pan}</MsgId><CreDtTm>2026-11-19T08:00:00+08:00</CreDtTm>"
            f"<InitgPty><Nm>{_x('银行 ' + form(pan, 1))}</Nm></InitgPty></GrpHdr>\n"
            + grp + "\n" + "\n".join(body) + "\n</CstmrPmtStsRpt>\n</Document>\n")


@dataclass
class EchoReturn:
    """One camt.054 credit: a return (RtrInf, AC04 by default) of ``key``, or a booked debit when ``code`` is
    None and ``debit``."""

    key: str | None
    amount: str
    pan: str
    code: str | None = "AC04"
    debit: bool = False
    n: int = 0


def camt054_echo(entries: Sequence[EchoReturn], *, pan: str, version: str = "08") -> str:
    """A camt.054 whose notification id, account, entry refs, narratives (AddtlNtryInf, AddtlTxInf), parties,
    accounts, remittance text and return reasons all echo a card number."""
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.054.001.{version}"
    out = []
    for i, e in enumerate(entries):
        p = form(e.pan, e.n)
        cd = "DBIT" if e.debit else "CRDT"
        rtr = (f"<RtrInf><Rsn><Cd>{e.code}</Cd></Rsn><AddtlInf>{_x(f'账号{p}已销户')}</AddtlInf></RtrInf>"
               if e.code else "")
        refs = (f"<Refs><AcctSvcrRef>{_x(p)}</AcctSvcrRef>" + (f"<EndToEndId>{e.key}</EndToEndId>" if e.key else "")
                + "</Refs>")
        tx = (f'<TxDtls>{refs}<Amt Ccy="CNY">{e.amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd>'
              f"<RltdPties><Dbtr><Pty><Nm>{_x('付款 ' + p)}</Nm></Pty></Dbtr>"
              f"<DbtrAcct><Id><Othr><Id>{_x(p)}</Id></Othr></Id></DbtrAcct>"
              f"<Cdtr><Pty><Nm>{_x('张三 ' + p)}</Nm></Pty></Cdtr>"
              f"<CdtrAcct><Id><Othr><Id>{_x(p)}</Id></Othr></Id></CdtrAcct></RltdPties>"
              f"<RmtInf><Ustrd>{_x('退票 ' + p)}</Ustrd></RmtInf>{rtr}"
              f"<AddtlTxInf>{_x(f'原收款账号{p}')}</AddtlTxInf></TxDtls>")
        out.append(f'<Ntry><NtryRef>E{i + 1}</NtryRef><Amt Ccy="CNY">{e.amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd>'
                   f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-23</Dt></BookgDt>"
                   f"<AcctSvcrRef>{_x(p)}</AcctSvcrRef><BkTxCd><Prtry><Cd>RTRN</Cd></Prtry></BkTxCd>"
                   f"<NtryDtls>{tx}</NtryDtls><AddtlNtryInf>{_x(f'退票：账号{p}已销户')}</AddtlNtryInf></Ntry>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{ns}">\n<BkToCstmrDbtCdtNtfctn>\n'
            f"<GrpHdr><MsgId>N{pan}</MsgId><CreDtTm>2026-11-23T18:00:00+08:00</CreDtTm></GrpHdr>\n"
            f"<Ntfctn><Id>T{form(pan, 2)}</Id><Acct><Id><Othr><Id>{_x(form(pan, 1))}</Id></Othr></Id>"
            f"<Nm>{_x('账户 ' + pan)}</Nm></Acct>\n"
            + "\n".join(out) + f"\n<AddtlNtfctnInf>{_x('通知 ' + form(pan, 3))}</AddtlNtfctnInf>"
            "</Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n")


def http_answer(req_sn: str, pan: str, *, code: str = "3031", status: str = "FAIL", n: int = 0) -> dict[str, object]:
    """An HTTP bank's JSON answer echoing ``pan`` in every string field (and in fields we do not know)."""
    p = form(pan, n)
    return {"req_sn": req_sn, "ret_code": code, "ret_msg": f"账号{p}户名不符", "status": status, "amount": 100,
            "acct_no": p, "acct_name": f"张三{p}", "remark": {"acct": p, "list": [p, pan]}, "bank_sn": f"B{pan}"}
