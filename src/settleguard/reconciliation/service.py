"""Import a bank statement file (camt.053, camt.054 or a bank file through a profile): atomic, idempotent.

中文：导入银行对账单。整份文件先完整读入并校验（任何问题整份拒绝），再在一个数据库事务中写入：
同一文件（SHA-256 相同）再导入不做任何更改；同一对账单（账号 + 对账单编号）被银行重发时，
已有的条目不再重复写入，只补上新的条目；导入中途出错或进程被杀，事务回滚，什么都不留下。
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from settleguard.config import DEFAULT_TIMEZONE
from settleguard.hashing import sha256_file
from settleguard.reconciliation import repository as repo
from settleguard.reconciliation.bank_file import Profile, load_profile, read_bank_file
from settleguard.reconciliation.camt import looks_like_xml, read_camt
from settleguard.reconciliation.model import Statement, StatementRejected, StatementTotals, totals

CHUNK = 1000  # lines per INSERT


@dataclass
class StatementResult:
    statement_id: str
    source: str
    account: str
    lines: int
    new_lines: int
    totals: StatementTotals
    balances: dict[str, int]
    balance_difference: int | None  # OPBD + booked - CLBD; 0 = the statement proves itself

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        return {"statement_id": self.statement_id, "source": self.source, "account": self.account,
                "lines": self.lines, "new_lines": self.new_lines, "booked": t.booked, "pending": t.pending,
                "info": t.info, "debits": t.debits, "debit_fen": t.debit_fen, "credits": t.credits,
                "credit_fen": t.credit_fen, "balances_fen": self.balances,
                "balance_difference_fen": self.balance_difference}


@dataclass
class ImportResult:
    file: str
    sha256: str
    kind: str
    already_imported: bool
    statements: list[StatementResult] = field(default_factory=list)

    @property
    def new_lines(self) -> int:
        return sum(s.new_lines for s in self.statements)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "kind": self.kind,
                "already_imported": self.already_imported, "new_lines": self.new_lines,
                "statements": [s.as_dict() for s in self.statements]}


def file_sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise StatementRejected(str(path), "-", f"无法读取文件：{exc.strerror}", f"cannot read: {exc.strerror}") from None


def read_statements(path: Path, profile: Profile | str | Path | None = None, sha256: str | None = None,
                    tz: str = DEFAULT_TIMEZONE) -> tuple[str, list[Statement]]:
    """(kind, statements) of a file: XML is camt.053/.054, anything else a bank file read by ``profile``."""
    sha = sha256 or file_sha256(path)
    with path.open("rb") as f:
        head = f.read(4096)
    if profile is None and looks_like_xml(head):
        statements = read_camt(path, tz=tz)
        return str(statements[0].source), statements
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    return f"bank_file:{prof.name}", [read_bank_file(path, prof, sha)]


def import_statement_file(engine: Engine, path: Path, *, now: datetime, profile: Profile | str | Path | None = None,
                          tz: str = DEFAULT_TIMEZONE, after_chunk: Callable[[int], None] | None = None,
                          chunk: int = CHUNK) -> ImportResult:
    """Read and check the whole file, then store it in one transaction (see the module docstring).

    ``after_chunk(lines stored so far)`` is called after each INSERT of ``chunk`` lines (progress; tests
    raise from it to prove that a failure half-way leaves nothing)."""
    sha = file_sha256(path)
    with engine.connect() as conn:  # the same file again: known by its hash, not parsed a second time
        done = repo.imported_kind(conn, sha)
    if done is not None:
        return ImportResult(str(path), sha, done, already_imported=True)
    kind, statements = read_statements(path, profile, sha, tz)
    result = ImportResult(str(path), sha, kind, already_imported=False)
    stored = 0
    with engine.begin() as conn:
        if repo.file_imported(conn, sha):
            result.already_imported = True
            return result
        for st in statements:
            row = repo.statement_row(conn, st.account, st.statement_id)
            known = repo.existing_refs(conn, st.account, st.statement_id) if row is not None else set()
            if row is None:
                row = repo.insert_statement(conn, st, sha, now)
            fresh = [ln for ln in st.lines if ln.entry_ref not in known]
            for at in range(0, len(fresh), chunk):
                stored += repo.insert_lines(conn, row, st.account, fresh[at:at + chunk])
                if after_chunk is not None:
                    after_chunk(stored)
            result.statements.append(StatementResult(
                statement_id=st.statement_id, source=str(st.source), account=st.account, lines=len(st.lines),
                new_lines=len(fresh), totals=totals(st.lines),
                balances={code: b.amount_fen for code, b in st.balances.items()},
                balance_difference=st.balance_difference()))
    return result
