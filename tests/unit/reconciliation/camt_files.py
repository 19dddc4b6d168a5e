"""camt.053 / camt.054 test files (valid against the official XSDs of the camt053 package unless a test
breaks them on purpose)."""

from __future__ import annotations

from pathlib import Path

NS08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
BKTXCD = ("<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>")
PAN = "6217002710000684874"


def entry(ref: str, amt: str, cd: str = "DBIT", sts: str = "BOOK", *, rvsl: bool = False, day: str = "2026-12-06",
          details: str = "", info: str = "", acct_ref: str | None = None) -> str:
    return (f"<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy=\"CNY\">{amt}</Amt><CdtDbtInd>{cd}</CdtDbtInd>"
            + ("<RvslInd>true</RvslInd>" if rvsl else "")
            + f"<Sts><Cd>{sts}</Cd></Sts>"
            + (f"<BookgDt><Dt>{day}</Dt></BookgDt>" if sts == "BOOK" else "")
            + f"<ValDt><DtTm>{day}T10:00:00+08:00</DtTm></ValDt>"
            + f"<AcctSvcrRef>{acct_ref or 'BANK-' + ref}</AcctSvcrRef>{BKTXCD}{details}"
            + (f"<AddtlNtryInf>{info}</AddtlNtryInf>" if info else "") + "</Ntry>")


def tx(e2e: str, amt: str | None = None, pmt: str | None = None) -> str:
    refs = (f"<PmtInfId>{pmt}</PmtInfId>" if pmt else "") + f"<EndToEndId>{e2e}</EndToEndId>"
    return f"<TxDtls><Refs>{refs}</Refs>" + (f"<Amt Ccy=\"CNY\">{amt}</Amt><CdtDbtInd>DBIT</CdtDbtInd>"
                                                if amt else "") + "</TxDtls>"


def batch(pmt: str, count: int, total: str, txs: str = "") -> str:
    return (f"<NtryDtls><Btch><PmtInfId>{pmt}</PmtInfId><NbOfTxs>{count}</NbOfTxs>"
            f"<TtlAmt Ccy=\"CNY\">{total}</TtlAmt><CdtDbtInd>DBIT</CdtDbtInd></Btch>{txs}</NtryDtls>")


def bal(code: str, amt: str, cd: str = "CRDT", day: str = "2026-12-06") -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">{amt}</Amt>"
            f"<CdtDbtInd>{cd}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")


def summary(n: int, total: str, net: str, net_cd: str, cn: int, csum: str, dn: int, dsum: str) -> str:
    return (f"<TxsSummry><TtlNtries><NbOfNtries>{n}</NbOfNtries><Sum>{total}</Sum><TtlNetNtry><Amt>{net}</Amt>"
            f"<CdtDbtInd>{net_cd}</CdtDbtInd></TtlNetNtry></TtlNtries>"
            f"<TtlCdtNtries><NbOfNtries>{cn}</NbOfNtries><Sum>{csum}</Sum></TtlCdtNtries>"
            f"<TtlDbtNtries><NbOfNtries>{dn}</NbOfNtries><Sum>{dsum}</Sum></TtlDbtNtries></TxsSummry>")


def camt053(body: str, *, stmt_id: str = "STMT-20261206", ns: str = NS08, balances: str | None = None,
            txs_summary: str = "") -> str:
    balances = balances if balances is not None else bal("PRCD", "10000.00", day="2026-12-05") + bal(
        "OPBD", "10000.00") + bal("CLBD", "9499.50")
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{ns}\"><BkToCstmrStmt>"
            "<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-12-07T06:00:00+08:00</CreDtTm></GrpHdr>\n"
            f"<Stmt><Id>{stmt_id}</Id><CreDtTm>2026-12-07T06:00:00+08:00</CreDtTm>"
            "<Acct><Id><Othr><Id>110060001012345</Id></Othr></Id><Ccy>CNY</Ccy></Acct>\n"
            f"{balances}{txs_summary}\n{body}\n</Stmt></BkToCstmrStmt></Document>\n")


def standard_body() -> str:
    """Five entries: a single payout (with TxDtls), a batch with two TxDtls, a batch with no TxDtls,
    a pending debit, and a reversal (credit) carrying a card number in AddtlNtryInf.
    Booked: debits 100.50 + 300.00 + 200.00 = 600.50; credit 100.00 (reversal). 10000 - 600.50 + 100 = 9499.50."""
    return "\n".join([
        entry("E1", "100.50", details="<NtryDtls>" + tx("SGE2E0001") + "</NtryDtls>"),
        entry("E2", "300.00", details=batch("SGB00000000000000000001", 2, "300.00",
                                            tx("SGE2E0002", "120.00") + tx("SGE2E0003", "180.00"))),
        entry("E3", "200.00", details=batch("SGB00000000000000000002", 5, "200.00")),
        entry("E4", "55.00", sts="PDNG", details="<NtryDtls>" + tx("SGE2E0004") + "</NtryDtls>"),
        entry("E5", "100.00", cd="CRDT", rvsl=True, info=f"退票 账号{PAN}户名不符",
              details="<NtryDtls>" + tx("SGE2E0001") + "</NtryDtls>"),
    ])


def standard_summary() -> str:
    # all entries: 5; sum 755.50; credits 1 (100.00); debits 4 (655.50); net -555.50
    return summary(5, "755.50", "555.50", "DBIT", 1, "100.00", 4, "655.50")


def write(tmp: Path, text: str, name: str = "stmt.xml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path
