"""The command line refuses times that lie (issue 16, item 7): ``settle --date`` in the future, and a
transaction file with a row later than the importing machine's clock plus the tolerance
(SETTLEGUARD_FUTURE_TOLERANCE_MINUTES, default 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from factories import Txn, make_merchants, ref, write_csv
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.settlement.model import CardType, TxnKind


def cli(db: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "settleguard", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=300, check=False)


def test_settling_a_business_day_in_the_future_is_refused_and_opens_nothing(tmp_path: Path) -> None:
    db = tmp_path / "sg.db"
    tomorrow = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=1)).date()

    proc = cli(f"sqlite:///{db}", tmp_path, "settle", "--date", tomorrow.isoformat())

    assert proc.returncode == 2
    assert f"业务日期 {tomorrow} 在未来" in proc.stderr
    assert "is in the future" in proc.stderr
    assert not db.exists()


def test_a_transaction_file_with_a_row_in_the_future_is_refused_at_its_line(db_url: str, vault: Vault,
                                                                           tmp_path: Path) -> None:
    engine = open_engine(db_url)
    with engine.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    now = datetime.now(UTC)
    rows = [Txn(ref(), m.merchant_no, m.terminal_no, now - timedelta(hours=1), TxnKind.SALE, CardType.QR, 100),
            Txn(ref(), m.merchant_no, m.terminal_no, now + timedelta(minutes=5), TxnKind.SALE, CardType.QR, 100),
            Txn(ref(), m.merchant_no, m.terminal_no, now + timedelta(hours=3), TxnKind.SALE, CardType.QR, 100)]
    path = write_csv(tmp_path / "future.csv", rows)

    proc = cli(db_url, tmp_path, "import", "transactions", str(path))

    assert proc.returncode == 2
    err = proc.stderr.replace("\n", "")
    assert f"{path}:4" in err
    assert "in the future" in err
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.transactions)).scalar_one() == 0
    # A wider tolerance (a terminal fleet with slow clocks) lets the same file in.
    assert cli(db_url, tmp_path, "import", "transactions", str(path),
               SETTLEGUARD_FUTURE_TOLERANCE_MINUTES="240").returncode == 0
    engine.dispose()
