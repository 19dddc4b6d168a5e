"""The simulated bank's account statements (银行对账单): one camt.053.001.08 per business day with planted breaks.

中文：模拟银行每个工作日出具一份 camt.053 对账单（ISO 20022 camt.053.001.08），内容是银行实际付出的出款
（模拟银行的流水账）与每日清算资金划入，并可注入差错：漏记一笔扣款（账上已付、银行未记账）、重复扣款、
金额差一分、迟一天记账（次日对上）、银行冲正（RvslInd）。期初、期末余额逐日衔接，因此账实核对
（reconciliation/followup.py）的差额恰好由注入的差错（与在途出款）解释。

Pure apart from writing the files: :func:`statement_days` plans the entries, :func:`camt053_xml` renders one
statement, :func:`write_statements` writes them (``camt053-<day>.xml``). Amounts are integer fen; every text is
generated here (no merchant data, card numbers or names appear in the files).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
ACCOUNT = "110060001012345"  # the acquirer's settlement account (备付金账户) at the simulated bank (made up)
OPENING_FEN = 500_000_000  # 5,000,000 yuan on the first statement
_BKTXCD = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
_FUNDING_BKTXCD = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>"

# what each planted anomaly becomes in `recon run` (reconciliation/matching.py); the late booking is no break
PLANTED_BREAKS: dict[str, str] = {"missing": "ledger_only", "duplicate": "duplicate_debit",
                                  "off_by_one": "amount_mismatch", "reversal": "reversal"}


@dataclass(frozen=True)
class Paid:
    """A payout the bank paid: its id (ours), the instruction key the bank executed (EndToEndId), fen, value date."""

    payout_id: int
    key: str
    amount_fen: int
    value_date: date


@dataclass(frozen=True)
class Entry:
    ref: str
    amount_fen: int
    credit: bool
    booking: date
    end_to_end_id: str | None = None
    reversal: bool = False
    info: str = ""


@dataclass
class Statement:
    day: date
    statement_id: str
    opening_fen: int
    entries: list[Entry] = field(default_factory=list)

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + sum(e.amount_fen if e.credit else -e.amount_fen for e in self.entries)


@dataclass
class Planted:
    """The payouts each anomaly was planted on (None: too few payouts to plant it)."""

    missing: Paid | None = None  # no debit at all -> ledger_only
    duplicate: Paid | None = None  # debited twice -> duplicate_debit
    off_by_one: Paid | None = None  # debited one fen more -> amount_mismatch (+1)
    late: Paid | None = None  # booked the next statement day -> in transit, then matched
    reversal: Paid | None = None  # debited, then credited back with RvslInd the next day -> reversal

    def expected_breaks(self) -> dict[str, int]:
        """break type -> count the bank reconciliation must find (exactly)."""
        out: dict[str, int] = {}
        for name, kind in PLANTED_BREAKS.items():
            if getattr(self, name) is not None:
                out[kind] = out.get(kind, 0) + 1
        return out


def statement_days(paid: Sequence[Paid], *, seed: int, next_day: Callable[[date], date], tail_days: int = 2,
                   opening_fen: int = OPENING_FEN, account: str = ACCOUNT) -> tuple[list[Statement], Planted]:
    """One statement per business day from the first value date to ``tail_days`` business days after the last
    (so that the missing debit's booking window has passed), each opening at the previous closing; the day's
    money paid in (清算资金划入, a credit under no key of ours) covers the day's debits, rounded up to 10,000 yuan.
    The anomalies are planted on distinct payouts of the first value date (seeded choice)."""
    planted = Planted()
    if not paid:
        return [], planted
    ordered = sorted(paid, key=lambda p: (p.value_date, p.payout_id))
    first = ordered[0].value_date
    pool = [p for p in ordered if p.value_date == first]
    picks = random.Random(f"bank-statement|{seed}").sample(pool, min(5, len(pool)))
    for name, p in zip(("missing", "duplicate", "off_by_one", "late", "reversal"), picks, strict=False):
        setattr(planted, name, p)
    days = [first]
    end = ordered[-1].value_date
    for _ in range(tail_days):
        end = next_day(end)
    while days[-1] < end:
        days.append(next_day(days[-1]))
    by_day: dict[date, list[Entry]] = {d: [] for d in days}

    def book(on: date) -> date:  # a weekend value date is booked the next business day
        while on not in by_day:
            on += timedelta(days=1)
        return on

    n = 0
    for p in ordered:
        n += 1
        ref = f"B{p.value_date:%m%d}N{n:05d}"  # short digit runs: never read as a card number
        if p is planted.missing:
            continue
        on = book(p.value_date)
        if p is planted.late:
            on = next_day(on)
        amount = p.amount_fen + (1 if p is planted.off_by_one else 0)
        by_day[on].append(Entry(ref, amount, False, on, p.key))
        if p is planted.duplicate:
            by_day[on].append(Entry(ref + "D", p.amount_fen, False, on, p.key, info="重复扣款 duplicate"))
        if p is planted.reversal:
            back = next_day(on)
            by_day[back].append(Entry(ref + "R", p.amount_fen, True, back, p.key, reversal=True,
                                      info="冲正 reversal"))
    out: list[Statement] = []
    balance = opening_fen
    for d in days:
        debits = sum(e.amount_fen for e in by_day[d] if not e.credit)
        entries = by_day[d]
        if debits:
            funding = -(-debits // 1_000_000) * 1_000_000
            entries = [Entry(f"F{d:%Y%m%d}", funding, True, d, None, info="清算资金划入 settlement funds in"),
                       *entries]
        st = Statement(d, f"STMT-{account[-4:]}-{d:%Y%m%d}", balance, entries)
        balance = st.closing_fen
        out.append(st)
    return out, planted


def _amt(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _bal(code: str, fen: int, day: date) -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">{_amt(abs(fen))}</Amt>"
            f"<CdtDbtInd>{'CRDT' if fen >= 0 else 'DBIT'}</CdtDbtInd><Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>")


def _entry(e: Entry, tz: ZoneInfo) -> str:
    at = datetime.combine(e.booking, time(10, 0), tz).isoformat()
    details = ""
    if e.end_to_end_id:
        details = (f"<NtryDtls><TxDtls><Refs><EndToEndId>{escape(e.end_to_end_id)}</EndToEndId></Refs>"
                   "</TxDtls></NtryDtls>")
    return (f"<Ntry><NtryRef>{e.ref}</NtryRef><Amt Ccy=\"CNY\">{_amt(e.amount_fen)}</Amt>"
            f"<CdtDbtInd>{'CRDT' if e.credit else 'DBIT'}</CdtDbtInd>"
            + ("<RvslInd>true</RvslInd>" if e.reversal else "")
            + f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{e.booking.isoformat()}</Dt></BookgDt>"
            f"<ValDt><DtTm>{at}</DtTm></ValDt><AcctSvcrRef>SIM{e.ref}</AcctSvcrRef>"
            + (_FUNDING_BKTXCD if e.credit and not e.reversal else _BKTXCD) + details
            + (f"<AddtlNtryInf>{escape(e.info)}</AddtlNtryInf>" if e.info else "") + "</Ntry>")


def camt053_xml(st: Statement, *, account: str = ACCOUNT, tz: str = "Asia/Shanghai") -> str:
    """One statement as camt.053.001.08 (valid against the official XSD), with OPBD, CLBD and TxsSummry."""
    zone = ZoneInfo(tz)
    created = datetime.combine(st.day + timedelta(days=1), time(6, 0), zone).isoformat()
    credits = [e.amount_fen for e in st.entries if e.credit]
    debits = [e.amount_fen for e in st.entries if not e.credit]
    net = sum(credits) - sum(debits)
    summary = (f"<TxsSummry><TtlNtries><NbOfNtries>{len(st.entries)}</NbOfNtries>"
               f"<Sum>{_amt(sum(credits) + sum(debits))}</Sum><TtlNetNtry><Amt>{_amt(abs(net))}</Amt>"
               f"<CdtDbtInd>{'CRDT' if net >= 0 else 'DBIT'}</CdtDbtInd></TtlNetNtry></TtlNtries>"
               f"<TtlCdtNtries><NbOfNtries>{len(credits)}</NbOfNtries><Sum>{_amt(sum(credits))}</Sum></TtlCdtNtries>"
               f"<TtlDbtNtries><NbOfNtries>{len(debits)}</NbOfNtries><Sum>{_amt(sum(debits))}</Sum></TtlDbtNtries>"
               "</TxsSummry>")
    body = "\n".join(_entry(e, zone) for e in st.entries)
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{NS}\"><BkToCstmrStmt>"
            f"<GrpHdr><MsgId>SIMBANK-{st.day:%Y%m%d}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>\n"
            f"<Stmt><Id>{st.statement_id}</Id><CreDtTm>{created}</CreDtTm>"
            f"<Acct><Id><Othr><Id>{account}</Id></Othr></Id><Ccy>CNY</Ccy></Acct>\n"
            f"{_bal('OPBD', st.opening_fen, st.day)}{_bal('CLBD', st.closing_fen, st.day)}{summary}\n"
            f"{body}\n</Stmt></BkToCstmrStmt></Document>\n")


def write_statements(directory: Path, statements: Sequence[Statement], *, account: str = ACCOUNT,
                     tz: str = "Asia/Shanghai") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for st in statements:
        path = directory / f"camt053-{st.day:%Y%m%d}.xml"
        path.write_text(camt053_xml(st, account=account, tz=tz), encoding="utf-8")
        paths.append(path)
    return paths
