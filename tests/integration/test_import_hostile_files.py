"""Transaction files that could exhaust memory, flood the terminal or lie about time (issue 16, item 7):
binary and huge one-line files are refused early with a bounded message and bounded memory; a row dated in
the future is refused at its line; echoed values are cut and card numbers in them masked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from factories import Txn, make_merchants, ref, write_csv
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.imports.csv_layout import REQUIRED
from settleguard.imports.transactions import DEFAULT_FUTURE_TOLERANCE, ImportRejected, import_transactions
from settleguard.settlement.model import CardType, CutOffs, TxnKind

HEADER = (",".join((*REQUIRED, "amount_fen")) + "\n").encode()
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
MB = 1 << 20


def _count(engine: Engine, table: t.Table) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


# --- the command line on hostile files: exit 2, a short message, little memory ---------------------------

_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "settleguard", "import", "transactions", sys.argv[1]],
                      capture_output=True, timeout=300)
sys.stdout.buffer.write(b"%d %d %d\\n" % (proc.returncode, len(proc.stdout) + len(proc.stderr),
                        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.stdout.buffer.write(proc.stderr[-4000:])
"""


def _import_cli(path: Path, db: str, cwd: Path) -> tuple[int, int, int, float, str]:
    """(exit code, bytes of output, peak RSS in KiB, seconds, stderr's tail) of ``settleguard import
    transactions path`` run in a child process of its own (RUSAGE_CHILDREN then sees only it)."""
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "t.key"), "COLUMNS": "160"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], cwd=cwd, env=env, capture_output=True,
                          timeout=600, check=True)
    seconds = time.monotonic() - t0
    numbers, _, err = proc.stdout.partition(b"\n")
    rc, out, rss = (int(x) for x in numbers.split())
    return rc, out, rss, seconds, err.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory: pytest.TempPathFactory) -> int:
    """Peak RSS of the same command refusing a small bad file (interpreter, pyarrow, SQLAlchemy loaded)."""
    d = tmp_path_factory.mktemp("baseline")
    small = d / "small.csv"
    small.write_bytes(HEADER + b"R1,1,1,2026-11-20T10:00:00+08:00,sale,debit,1,extra\n")
    rc, _, rss, _, _ = _import_cli(small, f"sqlite:///{d / 'sg.db'}", d)
    assert rc == 2
    return rss


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)  # a file of NUL bytes without the disk space
    return path


@pytest.mark.parametrize("kind", ["nul-200k", "sparse-50m", "one-line-50m", "huge-row-50m"])
def test_binary_and_one_line_files_are_refused_quickly_with_little_output_and_memory(
    tmp_path: Path, baseline_rss: int, kind: str
) -> None:
    path = tmp_path / f"{kind}.csv"
    if kind == "nul-200k":
        path.write_bytes(b"\0" * 200_000)
    elif kind == "sparse-50m":
        _sparse(path, 50 * MB)
    elif kind == "one-line-50m":
        path.write_bytes(b"x" * (50 * MB))
    else:  # a good header, one good-looking row, then a 50 MB "row"
        path.write_bytes(HEADER + b"R1,1,1,2026-11-20T10:00:00+08:00,sale,debit,1\n" + b"6" * (50 * MB) + b"\n")
    rc, out, rss, seconds, err = _import_cli(path, f"sqlite:///{tmp_path / 'sg.db'}", tmp_path)

    assert rc == 2, err
    assert "文件被拒绝" in err
    assert "file rejected" in err
    assert out < 2_000, (out, err)
    assert seconds < 60
    # The file is never read whole: pyarrow's blocks (16 MiB) may be in flight, a 50 MB string may not.
    assert rss - baseline_rss < 100 * 1024, (rss, baseline_rss)
    expected = {"nul-200k": ("binary file", ":1:"), "sparse-50m": ("binary file", ":1:"),
                "one-line-50m": ("header", ":1:"), "huge-row-50m": ("line longer than", ":3:")}[kind]
    assert expected[0] in err, err
    assert f"{path.name}{expected[1]}" in err.replace("\n", ""), err


# --- the importer itself, on SQLite and PostgreSQL -----------------------------------------------------


def _merchant(engine: Engine, vault: Vault) -> tuple[str, str]:
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    return m.merchant_no, m.terminal_no


def test_a_row_in_the_future_is_refused_naming_its_line_and_nothing_is_imported(
    engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    mno, tno = _merchant(engine, vault)
    near = NOW + DEFAULT_FUTURE_TOLERANCE - timedelta(seconds=1)  # a terminal's clock a little ahead: fine
    rows = [Txn(ref(), mno, tno, NOW - timedelta(hours=2), TxnKind.SALE, CardType.DEBIT, 100),
            Txn(ref(), mno, tno, near, TxnKind.SALE, CardType.DEBIT, 100),
            Txn(ref(), mno, tno, NOW + timedelta(days=1), TxnKind.SALE, CardType.DEBIT, 100),
            Txn(ref(), mno, tno, NOW + timedelta(days=400), TxnKind.SALE, CardType.DEBIT, 100)]
    path = write_csv(tmp_path / "future.csv", rows)

    with pytest.raises(ImportRejected) as info:
        import_transactions(engine, path, cutoffs=CutOffs(timezone="Asia/Shanghai"), now=NOW, future_tolerance=DEFAULT_FUTURE_TOLERANCE)

    assert info.value.line == 4
    assert "in the future" in str(info.value)
    assert "晚于当前时间" in str(info.value)
    assert "2026-11-20 12:00" in str(info.value)  # now, in Beijing time
    assert _count(engine, t.transactions) == 0
    assert _count(engine, t.imports) == 0
    ok = write_csv(tmp_path / "ok.csv", rows[:2])
    assert import_transactions(engine, ok, cutoffs=CutOffs(timezone="Asia/Shanghai"), now=NOW,
                               future_tolerance=DEFAULT_FUTURE_TOLERANCE).rows == 2


def test_a_huge_value_is_echoed_cut_to_200_characters_with_card_numbers_masked(
    engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    mno, tno = _merchant(engine, vault)
    pan = "6222021234567890123"
    path = tmp_path / "echo.csv"
    path.write_bytes(HEADER + f"R1,{mno},{tno},2026-11-20T10:00:00+08:00,sale,debit,100\n".encode()
                     + f"R2,{mno},{tno},2026-11-20T10:00:00+08:00,{pan} {'消费' * 400_000},debit,100\n".encode())

    with pytest.raises(ImportRejected) as info:
        import_transactions(engine, path, cutoffs=CutOffs(timezone="Asia/Shanghai"), now=NOW)

    assert info.value.line == 3
    assert "column kind" in str(info.value)
    assert len(str(info.value)) < 600
    assert pan not in str(info.value)
    assert "622202*********0123" in str(info.value)
    assert _count(engine, t.transactions) == 0


def test_nul_bytes_after_the_first_block_are_refused_at_their_line_and_echoed_bounded(
    engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    mno, tno = _merchant(engine, vault)
    good = "".join(f"G{i},{mno},{tno},2026-11-20T10:00:00+08:00,sale,debit,100\n" for i in range(2_000))
    path = tmp_path / "late-nul.csv"
    nuls = "\0" * 5_000
    path.write_bytes(HEADER + good.encode() + f"N1,{mno},{tno},2026-11-20T10:00:00+08:00,sale,debit,1{nuls}\n".encode())

    with pytest.raises(ImportRejected) as info:
        import_transactions(engine, path, cutoffs=CutOffs(timezone="Asia/Shanghai"), now=NOW)

    assert info.value.line == 2_002
    assert "\\x00" in str(info.value)
    assert "\0" not in str(info.value)
    assert len(str(info.value)) < 600
    assert _count(engine, t.transactions) == 0
