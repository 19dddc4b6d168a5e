"""Bank references we do not know are alarms, not silence (issue 16, item 3), on SQLite and PostgreSQL:

- a pain.002 whose OrgnlMsgId is no pain.001 we exported is refused whole;
- EndToEndIds (camt.054 debit and return references) we never sent raise an ops alert and open a case whose
  note lists the file, its SHA-256 and those lines (card numbers masked), while what matched is applied;
- a file none of whose lines is ours is refused and not recorded as imported;
- a file payout still without a final answer two business days after the export is flagged once (alert and
  case), by the worker cycle too, and keeps its status so a late report still applies (cases/overdue.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from test_payout_files import NOW, apply, batch, state, write  # noqa: F401  (batch: a fixture)
from test_payout_send import Due

from payout_helpers import ScriptedBank, alerts, status
from settleguard.cards.vault import Vault
from settleguard.cases.overdue import due_at, flag_overdue, overdue_files
from settleguard.channels.iso20022.reports import ReportRejected, file_sha256
from settleguard.db import tables as t
from settleguard.payouts.files import NothingMatched
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.service import Options
from settleguard.worker import cycle
from unit.channels.samples import Detail, Entry, Pmt, Tx, camt054, pain002

BEIJING = "Asia/Shanghai"  # the business time zone (config.Settings.timezone), passed in

S = PayoutStatus
PAN = "6217000010001234567"  # a 19-digit card number a hostile bank file echoes
MASKED = "621700*********4567"
Batch = tuple[list[Due], Any, dict[str, str]]


def cases(engine: Engine) -> list[dict[str, Any]]:
    c = t.cases
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(c).order_by(c.c.id))]
        for r in rows:
            r["notes"] = [n for (n,) in conn.execute(select(t.case_notes.c.body)
                                                       .where(t.case_notes.c.case_id == r["id"]))]
            r["payouts"] = sorted(p for (p,) in conn.execute(select(t.case_payouts.c.payout_id)
                                                             .where(t.case_payouts.c.case_id == r["id"])))
    return rows


def imported(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.report_imports)).scalar_one())


def everything(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return (*state(engine), *(conn.execute(select(func.count()).select_from(tbl)).scalar_one()
                                  for tbl in (t.cases, t.case_notes, t.case_payouts)))


# --- OrgnlMsgId ---------------------------------------------------------------------------------------------------

def test_a_status_report_about_a_message_we_never_sent_is_refused_whole(
    engine: Engine, tmp_path: Path, batch: Batch,  # noqa: F811
) -> None:
    ds, res, by_key = batch
    pmt = by_key[ds[0].key]
    txs = [Tx(ds[0].key, "ACSC"), Tx(ds[1].key, "RJCT", "AC04")]
    before = everything(engine)

    with pytest.raises(ReportRejected) as exc:
        apply(engine, write(tmp_path / "theirs.xml", pain002([Pmt(pmt, txs=txs)], original_message="SGB-NEVER-SENT")))

    assert exc.value.element == "OrgnlMsgId"
    assert "SGB-NEVER-SENT" in exc.value.reason
    assert exc.value.reason.index("不是我们发出的") < exc.value.reason.index("names no pain.001 we exported")
    assert everything(engine) == before
    assert {status(engine, d.payout_id) for d in ds} == {S.SUBMITTED}
    ours = apply(engine, write(tmp_path / "ours.xml", pain002([Pmt(pmt, txs=txs)], original_message=res.message_id)))
    assert ours.applied == 2


# --- unknown EndToEndIds --------------------------------------------------------------------------------------------

def test_unknown_end_to_end_ids_raise_an_alert_and_a_case_and_what_matched_is_applied(
    engine: Engine, tmp_path: Path, batch: Batch,  # noqa: F811
) -> None:
    """Two of seven EndToEndIds replaced: once "applied 5; ignored 2", rc 0, no alert, and the two real payouts
    stayed submitted for ever."""
    ds, res, by_key = batch
    report = write(tmp_path / "bank-0042.xml", pain002([
        Pmt(by_key[ds[0].key], txs=[Tx(ds[i].key, "ACSC") for i in range(5)]),
        Pmt(by_key[ds[5].key], txs=[
            Tx("SG20261118M999998", "RJCT", "AC04", info=[f"账号{PAN}户名不符"], amount="1234.56"),
            Tx(PAN, "ACSC", amount="105000.00"),  # an account number where the EndToEndId belongs
        ]),
    ], group_status="PART", original_message=res.message_id))

    s = apply(engine, report)

    assert (s.applied, s.unknown, s.ignored, s.known) == (5, 2, 2, 5)
    assert [status(engine, d.payout_id) for d in ds] == [S.SUCCEEDED] * 5 + [S.SUBMITTED] * 2
    assert [(u.reference, u.amount_fen, u.status) for u in s.unknown_lines] == [
        ("SG20261118M999998", 123_456, "RJCT"), (MASKED, 10_500_000, "ACSC")]
    assert MASKED in s.unknown_lines[0].reason
    assert PAN not in s.unknown_lines[0].reason
    sha = file_sha256(report)

    (alert,) = alerts(engine, "unknown_reference")
    assert "bank-0042.xml" in alert["message"]
    assert sha[:16] in alert["message"]
    assert alert["message"].index("从未发出") < alert["message"].index("never sent")
    (case,) = cases(engine)
    assert case["id"] == s.case_id
    assert (case["category"], case["source"], case["status"], case["priority"]) == (
        "unknown_reference", "auto", "open", "p2")
    # filed under the first payout of that pain.001 left without an answer (the unknown lines may be about it)
    first = min(ds[5:], key=lambda d: d.payout_id)
    assert (case["merchant_id"], case["payouts"]) == (first.merchant.id, [first.payout_id])
    (note,) = case["notes"]
    for shown in ("bank-0042.xml", sha, res.message_id, "SG20261118M999998", "¥1,234.56", "RJCT", "AC04", MASKED,
                  "¥105,000.00", ds[5].key, ds[6].key):
        assert shown in note, shown
    assert PAN not in note
    assert PAN not in alert["message"]
    assert PAN not in case["title"]
    assert imported(engine) == 1  # what matched is applied and the file recorded

    before = everything(engine)
    again = apply(engine, report)
    assert again.already_imported
    assert everything(engine) == before


def test_camt054_debits_and_returns_under_references_we_never_sent_raise_the_alarm(
    engine: Engine, tmp_path: Path, batch: Batch,  # noqa: F811
) -> None:
    ds, res, by_key = batch
    apply(engine, write(tmp_path / "ok.xml", pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSC")])],
                                                     original_message=res.message_id)))
    amount = f"{ds[0].amount // 100}.{ds[0].amount % 100:02d}"
    ntf = write(tmp_path / "ntf.xml", camt054([
        Entry(amount, details=[Detail(ds[0].key, amount, "AC04", ["账户已销户，退回"])]),  # ours: a return
        Entry("88.00", cd="DBIT", details=[Detail("SG20261118M999997", "88.00")]),  # money out, not ours
        Entry("66.00", details=[Detail("XX-UNKNOWN-RTN", "66.00", "AC01", [f"退回 {PAN}"])]),  # a return, not ours
        Entry("10.00", details=[Detail("THEIR-CREDIT", "10.00")]),  # an incoming credit: not ours to judge
        Entry("5.00", cd="DBIT", details=[Detail("NOTPROVIDED", "5.00")]),  # no reference given
    ]))

    s = apply(engine, ntf)

    assert (s.returned, s.unknown, s.known) == (1, 2, 1)
    assert status(engine, ds[0].payout_id) is S.HELD
    assert [(u.reference, u.amount_fen) for u in s.unknown_lines] == [("SG20261118M999997", 8800),
                                                                      ("XX-UNKNOWN-RTN", 6600)]
    (alert,) = alerts(engine, "unknown_reference")
    assert "ntf.xml" in alert["message"]
    (case,) = [c for c in cases(engine) if c["category"] == "unknown_reference"]
    assert (case["merchant_id"], case["payouts"]) == (ds[0].merchant.id, [])  # no pain.001: its first known line
    assert MASKED in case["notes"][0]
    assert PAN not in case["notes"][0]


# --- nothing matched ------------------------------------------------------------------------------------------------

def test_a_file_that_matches_nothing_is_refused_and_not_recorded(
    engine: Engine, tmp_path: Path, batch: Batch,  # noqa: F811
) -> None:
    """Once "applied 0; ignored 7", rc 0, and the file recorded as imported: a fixed re-import was a no-op."""
    ds, res, by_key = batch
    report = write(tmp_path / "all-unknown.xml", pain002([Pmt(by_key[ds[0].key], txs=[
        Tx(f"SG20261118M99{i:04d}", "ACSC", amount="1000.00") for i in range(7)])], original_message=res.message_id))
    before = everything(engine)

    for _ in range(2):  # not recorded: the same file is refused again, not "already imported"
        with pytest.raises(NothingMatched) as exc:
            apply(engine, report)
        assert (exc.value.unknown, len(exc.value.lines)) == (7, 7)
        assert "未导入" in exc.value.reason
        assert "not recorded as imported" in exc.value.reason
        assert everything(engine) == before
    assert imported(engine) == 0

    camt = write(tmp_path / "camt-unknown.xml", camt054([Entry("88.00", cd="DBIT", details=[Detail("NOPE-1", "88.00")])]))
    with pytest.raises(NothingMatched):
        apply(engine, camt)
    assert everything(engine) == before


# --- overdue file answers ---------------------------------------------------------------------------------------------

def test_file_payouts_without_an_answer_are_flagged_once_after_two_business_days(
    engine: Engine, tmp_path: Path, batch: Batch,  # noqa: F811
) -> None:
    ds, res, by_key = batch
    pmt = by_key[ds[0].key]
    apply(engine, write(tmp_path / "part.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSC"), Tx(ds[1].key, "ACSP")])],
                                                       original_message=res.message_id)))
    due = due_at(NOW, 2, BEIJING)  # exported Thursday 2026-11-19 09:00 Beijing time: due Monday 23rd, 09:00
    assert due == datetime(2026, 11, 23, 1, 0, tzinfo=NOW.tzinfo)

    assert flag_overdue(engine, due - timedelta(seconds=1), tz=BEIJING).flagged == 0
    with engine.connect() as conn:
        assert overdue_files(conn, due - timedelta(seconds=1), tz=BEIJING) == []
    summary = flag_overdue(engine, due, tz=BEIJING)

    waiting = [d for d in ds if d is not ds[0]]  # ds[1] answered ACSP only: not final, waits too
    assert summary.flagged == 6
    assert summary.files == [res.message_id]
    found = cases(engine)
    assert sorted(c["payouts"][0] for c in found) == sorted(d.payout_id for d in waiting)
    assert {(c["category"], c["source"], len(c["payouts"])) for c in found} == {("file_answer_overdue", "auto", 1)}
    by_payout = {c["payouts"][0]: c for c in found}
    for d in waiting:
        c = by_payout[d.payout_id]
        assert c["merchant_id"] == d.merchant.id
        assert d.key in c["notes"][0]
        assert res.message_id in c["notes"][0]
        assert "2026-11-19 09:00" in c["notes"][0]
    (alert,) = alerts(engine, "file_answer_overdue")
    assert res.message_id in alert["message"]
    assert "6" in alert["message"]
    assert [status(engine, d.payout_id) for d in ds] == [S.SUCCEEDED, S.RESULT_UNKNOWN] + [S.SUBMITTED] * 5
    with engine.connect() as conn:
        (f,) = overdue_files(conn, due, tz=BEIJING)
    assert (f.message_id, f.payouts, f.flagged, f.due_at) == (res.message_id, 6, 6, due)

    before = everything(engine)
    assert flag_overdue(engine, due + timedelta(days=3), tz=BEIJING).flagged == 0  # flagged once
    assert everything(engine) == before

    late = apply(engine, write(tmp_path / "late.xml", pain002([Pmt(pmt, txs=[Tx(ds[2].key, "ACSC")])],
                                                              original_message=res.message_id)))
    assert late.applied == 1  # the payout kept its status: a late report still applies
    assert status(engine, ds[2].payout_id) is S.SUCCEEDED
    with engine.connect() as conn:
        (f,) = overdue_files(conn, due, tz=BEIJING)
    assert (f.payouts, f.flagged) == (5, 5)


def test_the_worker_cycle_flags_overdue_file_payouts_after_the_configured_business_days(
    engine: Engine, vault: Vault, batch: Batch,  # noqa: F811
) -> None:
    ds, _res, _ = batch
    monday = due_at(NOW, 2, BEIJING)
    opts = Options(file_answer_due_business_days=3)
    bank = ScriptedBank()
    first = cycle(engine, bank, vault, None, as_of=monday.date(), now=monday, opts=opts)
    assert first.overdue is not None
    assert first.overdue.flagged == 0
    tuesday = due_at(NOW, 3, BEIJING)
    second = cycle(engine, bank, vault, None, as_of=tuesday.date(), now=tuesday, opts=opts)
    assert second.overdue is not None
    assert second.overdue.flagged == len(ds)
    third = cycle(engine, bank, vault, None, as_of=tuesday.date(), now=tuesday + timedelta(hours=1), opts=opts)
    assert third.overdue is not None
    assert third.overdue.flagged == 0
    assert bank.calls == []  # never inquired about or resent through the API channel
    assert len(alerts(engine, "file_answer_overdue")) == 1
    assert {status(engine, d.payout_id) for d in ds} == {S.SUBMITTED}


def test_the_due_time_counts_china_business_days() -> None:
    from settleguard.config import Settings

    friday = datetime(2026, 11, 20, 2, 0, tzinfo=NOW.tzinfo)  # 10:00 Beijing time
    assert due_at(friday, 2, BEIJING) == datetime(2026, 11, 24, 2, 0, tzinfo=NOW.tzinfo)  # Tuesday: the weekend is skipped
    assert Settings().file_answer_due_business_days == 2
    assert Settings(file_answer_due_business_days=5).file_answer_due_business_days == 5
