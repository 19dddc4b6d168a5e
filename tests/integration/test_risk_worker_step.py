"""The worker's ``risk_scan`` step (worker.STEPS; risk.service.worker_scan), SQLite and PostgreSQL: a cycle scans
the latest imported business day not yet scanned (features, scores, cases), the next cycle does nothing, a
transaction file imported after the scan makes the next cycle scan that day again (idempotent: no second case), a
day older than the look-back is left to ``settleguard risk scan``, and an unusable rule file scans nothing and
says why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select
from test_payout_send import ScriptedBank
from test_risk_scan import DAY, NOW, build_corpus

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.risk.service import WorkerScan
from settleguard.worker import STEPS, cycle

STEP = tuple(s for s in STEPS if s.name == "risk_scan")


def _run(engine: Engine, vault: Vault, as_of: object, now: object, rules_file: Path | None = None) -> WorkerScan:
    got = cycle(engine, ScriptedBank(), vault, None, as_of=as_of, now=now, tz="Asia/Shanghai",  # type: ignore[arg-type]
                steps=STEP, risk_rules_file=rules_file).steps["risk_scan"]
    assert isinstance(got, WorkerScan)
    return got


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_the_worker_scans_the_latest_imported_day_once(engine: Engine, vault: Vault, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert [s.name for s in STEP] == ["risk_scan"]
    assert _run(engine, vault, DAY, NOW) == WorkerScan()  # nothing imported yet
    corpus = build_corpus(engine, vault, seed=3)
    bad = tmp_path / "rules.toml"
    bad.write_text("[scoring]\nflag_score = 'high'\n", encoding="utf-8")
    monkeypatch.setenv("SETTLEGUARD_RISK_RULES", str(tmp_path / "absent.toml"))  # the step reads no environment
    refused = _run(engine, vault, DAY + timedelta(days=1), NOW, rules_file=bad)  # handed in by the entry point
    assert refused.day is None
    assert refused.error
    assert "flag_score" in refused.error
    assert _count(engine, t.risk_days) == 0  # nothing scanned
    monkeypatch.delenv("SETTLEGUARD_RISK_RULES")

    first = _run(engine, vault, DAY + timedelta(days=1), NOW)  # the worker's business day is the next one
    assert first.day == DAY
    assert first.flagged >= len([p for p in corpus.planted.values() if p != "silence"])
    assert first.cases_opened > 0
    cases = _count(engine, t.cases, t.cases.c.category == "risk_alert")
    assert cases == first.cases_opened
    flagged = _count(engine, t.risk_scores, t.risk_scores.c.cycle_date == DAY)
    assert flagged == first.flagged
    assert _count(engine, t.risk_days, t.risk_days.c.scanned_at.is_not(None)) == 1  # one day per cycle
    assert _count(engine, t.risk_days) == 31  # the day and its baseline window

    assert _run(engine, vault, DAY + timedelta(days=1), NOW + timedelta(minutes=1)) == WorkerScan()  # done already
    with engine.begin() as conn:  # a late transaction file after the scan
        conn.execute(insert(t.imports).values(kind="transactions", sha256="0" * 64, filename="late.csv",
                                              encoding="utf-8", row_count=0, imported_at=NOW + timedelta(minutes=2)))
    again = _run(engine, vault, DAY + timedelta(days=1), NOW + timedelta(minutes=3))
    assert (again.day, again.flagged, again.cases_opened) == (DAY, first.flagged, 0)  # idempotent: no second case
    assert _count(engine, t.cases, t.cases.c.category == "risk_alert") == cases
    assert _run(engine, vault, DAY + timedelta(days=1), NOW + timedelta(minutes=4)) == WorkerScan()
    # beyond the look-back (7 days): left to `settleguard risk scan --date`
    assert _run(engine, vault, DAY + timedelta(days=9), NOW + timedelta(days=8)) == WorkerScan()
