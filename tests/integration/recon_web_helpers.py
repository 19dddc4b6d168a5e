"""A reconciled world for the API and console tests of reconciliation (test_api_recon.py, test_console_recon.py):
four payouts paid through the scripted bank, a camt.053 imported through the project's import, and a run.

The bank's statement of 2026-11-20 (Friday) books payout a exactly, b one fen short, c twice, never books d,
debits a stranger (a card number in its AddtlNtryInf) and closes one fen off its own entries (balance drift).
The run of 2026-11-23 (Monday: d's two business days have passed) finds: amount_mismatch (b), duplicate_debit
(c), ledger_only (d), bank_only (stranger), balance_drift (statement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from payout_helpers import OK, SEND_AT, VALUE_DAY, Due, ScriptedBank, make_payouts
from settleguard.access.model import Role
from settleguard.access.service import add_user, issue_token
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.payouts.service import send_due
from settleguard.reconciliation.breaks import run
from settleguard.reconciliation.service import import_statement_file

PASSWORD = "correct-horse-battery"
BOOKED = date(2026, 11, 20)
RUN_DATE = date(2026, 11, 23)
RUN_AT = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)  # 09:02:03 in Beijing
STRANGER_PAN = "6217002710000684874"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
BKTXCD = "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>"


@dataclass
class ReconWorld:
    engine: Engine
    dues: list[Due]
    tokens: dict[str, str] = field(default_factory=dict)
    merchant_no: str = ""

    def breaks(self) -> dict[str, dict[str, object]]:
        """The open breaks by type (one of each here)."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.recon_breaks)).mappings().all()
        return {str(r["type"]): dict(r) for r in rows}


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _entry(ref: str, fen: int, key: str | None, info: str = "") -> str:
    details = f"<NtryDtls><TxDtls><Refs><EndToEndId>{key}</EndToEndId></Refs></TxDtls></NtryDtls>" if key else ""
    return (f'<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="CNY">{_yuan(fen)}</Amt><CdtDbtInd>DBIT</CdtDbtInd>'
            f"<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>{BOOKED}</Dt></BookgDt><ValDt><Dt>{BOOKED}</Dt></ValDt>"
            f"<AcctSvcrRef>BANK-{ref}</AcctSvcrRef>{BKTXCD}{details}"
            + (f"<AddtlNtryInf>{info}</AddtlNtryInf>" if info else "") + "</Ntry>")


def _bal(code: str, fen: int) -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">{_yuan(fen)}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{BOOKED}</Dt></Dt></Bal>")


def statement(dues: list[Due]) -> str:
    a, b, c, _d = dues
    entries = [_entry("E1", a.amount, a.key), _entry("E2", b.amount - 1, b.key), _entry("E3", c.amount, c.key),
               _entry("E4", c.amount, c.key), _entry("E5", 4_321, None, f"代付 卡号{STRANGER_PAN} 退款")]
    debits = a.amount + b.amount - 1 + 2 * c.amount + 4_321
    opening = 100_000_000
    closing = opening - debits - 1  # one fen the entries do not explain
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}"><BkToCstmrStmt>'
            "<GrpHdr><MsgId>MSG-RECON-WEB</MsgId><CreDtTm>2026-11-21T06:00:00+08:00</CreDtTm></GrpHdr>"
            "<Stmt><Id>STMT-20261120</Id><CreDtTm>2026-11-21T06:00:00+08:00</CreDtTm>"
            "<Acct><Id><Othr><Id>110060001012345</Id></Othr></Id><Ccy>CNY</Ccy></Acct>"
            + _bal("OPBD", opening) + _bal("CLBD", closing) + "".join(entries) + "</Stmt></BkToCstmrStmt></Document>\n")


def reconciled(engine: Engine, vault: Vault, tmp_path: Path) -> ReconWorld:
    dues = make_payouts(engine, vault, tmp_path, [12_345, 20_000, 33_300, 41_000])
    send_due(engine, ScriptedBank(sends={d.key: [OK] for d in dues}), vault, as_of=VALUE_DAY, now=SEND_AT)
    path = tmp_path / "stmt.xml"
    path.write_text(statement(dues), encoding="utf-8")
    import_statement_file(engine, path, now=RUN_AT)
    run(engine, RUN_DATE, now=RUN_AT)
    w = ReconWorld(engine, dues, merchant_no=dues[0].merchant.merchant_no)
    for name, role, merchant in (("oper", Role.OPERATOR, None), ("supp", Role.SUPPORT, None),
                                 ("audi", Role.AUDITOR, None), ("mera", Role.MERCHANT, w.merchant_no)):
        add_user(engine, username=name, password=PASSWORD, role=role, merchant_no=merchant, display_name=name.upper(),
                 now=RUN_AT, actor="test")
        w.tokens[name] = issue_token(engine, username=name, name="tests", now=RUN_AT, actor="test").token
    return w
