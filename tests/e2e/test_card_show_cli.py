"""``settleguard card show`` of a merchant with many notices, at 80 and 120 columns (issue 18, item 10: it
printed every notice in full, ~200 lines for eight, and cut table cells with "…"). SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from test_cases_cli import failed_payout
from test_payout_send import SEND_AT  # tests/integration is on sys.path (test_cases_cli puts it there)

from long_output import WIDTHS, assert_fits, assert_whole
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.notify.outbox import PayoutNotice, notify_payouts

RELEASED_ZH, RELEASED_EN = "挂账已解除：结算款将重新付款", "Hold lifted: the payout is being paid again"


@dataclass(frozen=True)
class Released:
    id: int
    merchant_id: int
    account_id: int | None
    instruction_no: int
    key: str


def show(db: str, cwd: Path, width: int, *args: str) -> str:
    env = {**os.environ, "SETTLEGUARD_DB": db, "SETTLEGUARD_KEY_FILE": str(cwd / "e2e.key"), "COLUMNS": str(width)}
    return subprocess.run([sys.executable, "-m", "settleguard", "card", "show", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=True).stdout


def test_card_show_summarises_notices_and_wraps_at_80_and_120_columns(db_url: str, tmp_path: Path) -> None:
    f = failed_payout(db_url, tmp_path)  # held for 户名不符: one full failure notice
    engine = open_engine(db_url)
    with engine.begin() as conn:
        mid = conn.execute(select(t.merchants.c.id).where(t.merchants.c.merchant_no == f.merchant_no)).scalar_one()
        # eight released payouts: eight notices of one subject
        items = [PayoutNotice(Released(f.payout_id, mid, None, n, f"SG20261118M{mid}"), "released", None, 10_000 + n)
                 for n in range(1, 9)]
        assert notify_payouts(conn, items, SEND_AT, tz="Asia/Shanghai") == [True] * 8
    engine.dispose()

    full = show(db_url, tmp_path, 120, f.merchant_no, "--full")
    assert full.count(RELEASED_EN) == 8  # --full: every notice, in full
    assert f.pan not in full
    for width in WIDTHS:
        out = show(db_url, tmp_path, width, f.merchant_no)
        assert_fits(out, width, max_lines=70 if width == 80 else 45)  # nine full notices took ~150 lines
        assert "通知 notices (9)" in out
        assert_whole(out, RELEASED_ZH, RELEASED_EN, once=True)  # one row for the eight
        assert_whole(out, "8 待发送 pending", "--full")
        assert "账号户名不符" not in out.split("通知 notices (9)")[1]  # the summary has the subject, not the text
        assert f.pan not in out
