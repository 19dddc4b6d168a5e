"""The day's cycle model (daycycle/model.py): never settles before the cut-off or without the day's transaction file,
each action at most once, late files alerted once, pay times gate sends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.daycycle import model as m

TZ = "Asia/Shanghai"
Z = ZoneInfo(TZ)
DAY = date(2026, 12, 3)  # a Thursday
SCHEDULE = m.Schedule(expected={"transactions": time(2), "clearing_inn": time(9), "camt053": time(10)},
                      settle_latest=time(6), lookback_days=7)


def weekdays(d: date) -> bool:
    return d.weekday() < 5


def local(d: date, h: int, mi: int = 0) -> datetime:
    return datetime.combine(d, time(h, mi), Z)


def facts(now: datetime, arrivals: tuple[m.Arrived, ...] = (), ran: tuple[m.Ran, ...] = (), **kw: object) -> m.Facts:
    return m.Facts(now=now, tz=TZ, cutoff_hour=23, is_business_day=weekdays, arrivals=arrivals, ran=ran, **kw)  # type: ignore[arg-type]


def arrival(i: int, kind: str, days: tuple[date, ...], at: datetime, status: str = "done") -> m.Arrived:
    return m.Arrived(i, kind, status, days, at, f"f{i}")


def test_a_day_is_settled_after_its_cut_off_once_its_transaction_file_is_in() -> None:
    a = arrival(1, "transactions", (DAY,), local(DAY, 22))
    before = m.plan(facts(local(DAY, 22, 59), (a,)), SCHEDULE)
    assert [d.action for d in before.due] == []
    assert any("日切" in w.zh for w in before.waiting)
    after = m.plan(facts(local(DAY, 23, 0), (a,)), SCHEDULE)
    assert [(d.action, d.day, d.key) for d in after.due] == [("settle", DAY, "a1")]
    done = m.Ran(DAY, "settle", "a1", "done", local(DAY, 23))
    assert m.plan(facts(local(DAY, 23, 5), (a,), (done,)), SCHEDULE).due == ()


def test_no_transaction_file_no_settlement_and_an_alert_at_the_latest_time() -> None:
    other = arrival(1, "camt053", (DAY,), local(DAY + timedelta(days=1), 8))
    p = m.plan(facts(local(DAY + timedelta(days=1), 6, 0), (other,), started=DAY), SCHEDULE)
    assert not [d for d in p.due if d.action == "settle"]
    kinds = {(a.kind, a.key) for a in p.alerts if a.day == DAY}
    assert ("day_not_settled", "settle") in kinds
    assert ("file_late", "transactions") in kinds
    assert ("file_late", "camt053") not in kinds  # it arrived (and it is not due before 10:00 anyway)


def test_a_rejected_or_duplicate_arrival_settles_nothing() -> None:
    now = local(DAY + timedelta(days=1), 3)
    for status in ("rejected", "duplicate"):
        p = m.plan(facts(now, (arrival(1, "transactions", (DAY,), local(DAY, 23, 30), status),)), SCHEDULE)
        assert p.due == ()


def test_a_late_file_is_alerted_once() -> None:
    now = local(DAY + timedelta(days=1), 10, 1)
    p = m.plan(facts(now, started=DAY), SCHEDULE)
    late = [a for a in p.alerts if a.kind == "file_late" and a.day == DAY]
    assert {a.key for a in late} == {"transactions", "clearing_inn", "camt053"}
    assert all("迟到" in m.FILE_STATE["late"][0] for _ in late)
    ran = tuple(m.Ran(a.day, "alert", a.key, "done", now) for a in p.alerts)
    assert m.plan(facts(now + timedelta(minutes=5), ran=ran, started=DAY), SCHEDULE).alerts == ()


def test_bank_statements_are_not_expected_for_a_weekend_and_days_before_the_start_are_not_watched() -> None:
    saturday = date(2026, 12, 5)
    states = m.file_states(facts(local(saturday + timedelta(days=1), 12)), SCHEDULE, saturday)
    assert {s.kind for s in states} == {"transactions", "clearing_inn"}
    p = m.plan(facts(local(DAY + timedelta(days=3), 12), started=DAY + timedelta(days=3)), SCHEDULE)
    assert {a.day for a in p.alerts} == {DAY + timedelta(days=2)}  # only the day before the start


def test_file_states_late_then_missing() -> None:
    due = local(DAY + timedelta(days=1), 2)
    assert m.file_states(facts(due - timedelta(minutes=1)), SCHEDULE, DAY)[0].state == "waiting"
    assert m.file_states(facts(due), SCHEDULE, DAY)[0].state == "late"
    assert m.file_states(facts(due + timedelta(days=1)), SCHEDULE, DAY)[0].state == "missing"


def test_a_statement_is_reconciled_once_when_the_day_s_payouts_were_sent() -> None:
    stmt = arrival(5, "camt053", (DAY,), local(DAY + timedelta(days=1), 7))
    now = local(DAY + timedelta(days=1), 8)
    waiting = m.plan(facts(now, (stmt,), first_waiting_value_date=DAY), SCHEDULE)
    assert not waiting.due
    assert any("等待出款" in w.zh for w in waiting.waiting)
    assert [d.action for d in m.plan(facts(now, (stmt,), first_waiting_value_date=DAY + timedelta(days=1)),
                                     SCHEDULE).due] == ["recon"]
    assert [d.action for d in m.plan(facts(now + timedelta(hours=6), (stmt,), first_waiting_value_date=DAY),
                                     SCHEDULE).due] == ["recon"]  # waited long enough
    done = m.Ran(DAY, "recon", "a5", "done", now)
    again = arrival(6, "camt053", (DAY,), local(DAY + timedelta(days=1), 9))  # a new statement for the day
    p = m.plan(facts(now + timedelta(hours=1), (stmt, again), (done,)), SCHEDULE)
    assert [(d.action, d.key) for d in p.due] == [("recon", "a6")]


def test_a_clearing_file_runs_clearing_reconciliation_once() -> None:
    inn = arrival(7, "clearing_inn", (DAY,), local(DAY + timedelta(days=1), 8))
    now = local(DAY + timedelta(days=1), 8, 5)
    assert [(d.action, d.day) for d in m.plan(facts(now, (inn,)), SCHEDULE).due] == [("clearing", DAY)]
    done = m.Ran(DAY, "clearing", "a7", "done", now)
    assert m.plan(facts(now, (inn,), (done,)), SCHEDULE).due == ()


def test_a_failed_or_stale_run_is_due_again_a_live_one_is_not() -> None:
    a = arrival(1, "transactions", (DAY,), local(DAY, 22))
    now = local(DAY + timedelta(days=1), 3)
    failed = m.Ran(DAY, "settle", "a1", "failed", now)
    assert [d.retry for d in m.plan(facts(now, (a,), (failed,)), SCHEDULE).due] == [True]
    running = m.Ran(DAY, "settle", "a1", "running", now)
    assert m.plan(facts(now, (a,), (running,)), SCHEDULE).due == ()
    stale = m.Ran(DAY, "settle", "a1", "running", now, stale=True)
    assert len(m.plan(facts(now, (a,), (stale,)), SCHEDULE).due) == 1


def test_pay_times_run_once_the_latest_passed_and_gate_api_sends() -> None:
    s = m.Schedule(pay_times=(time(9, 30), time(15)), pay_window=timedelta(minutes=60))
    friday = date(2026, 12, 4)
    assert m.plan(facts(local(friday, 9, 29)), s).due == ()
    assert [(d.action, d.key) for d in m.plan(facts(local(friday, 9, 30)), s).due] == [("pay", "09:30")]
    assert [(d.action, d.key) for d in m.plan(facts(local(friday, 16)), s).due] == [("pay", "15:00")]
    assert m.plan(facts(local(date(2026, 12, 5), 10)), s).due == ()  # Saturday: no pay run
    assert m.send_open(s, local(friday, 9, 45), TZ, weekdays)
    assert not m.send_open(s, local(friday, 10, 30), TZ, weekdays)
    assert not m.send_open(s, local(date(2026, 12, 5), 9, 45), TZ, weekdays)
    assert m.send_open(m.Schedule(), local(friday, 3), TZ, weekdays)  # no pay times: as before
    assert not m.send_open(m.Schedule(pay_times=(time(9, 30),), pay_to_file=True), local(friday, 9, 45), TZ, weekdays)


@pytest.mark.parametrize("text", ["9:3x", "24:00", "12:60", "", "1230", "12:30:00"])
def test_a_bad_time_names_its_setting(text: str) -> None:
    with pytest.raises(m.ScheduleError) as e:
        m.parse_time("day_pay_times", text)
    assert "day_pay_times" in str(e.value)
    assert "时:分" in str(e.value)


KINDS = ("transactions", "camt053", "clearing_inn", "clearing_rd", "pain002")
STATUSES = ("done", "duplicate", "rejected")
arrivals_st = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(STATUSES),
                                 st.lists(st.integers(0, 9), min_size=1, max_size=3),
                                 st.integers(0, 10 * 24 * 60)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(arrivals_st, st.lists(st.integers(0, 10 * 24 * 60), min_size=1, max_size=6),
       st.sampled_from([22, 23, 24]), st.lists(st.sampled_from([time(9, 30), time(15), time(2)]), max_size=2))
def test_never_settles_before_the_cut_off_or_without_the_file_and_each_action_runs_at_most_once(
        raw: list[tuple[str, str, list[int], int]], clock: list[int], cutoff: int, pays: list[time]) -> None:
    base = datetime(2026, 11, 28, tzinfo=Z)
    schedule = m.Schedule(expected=SCHEDULE.expected, settle_latest=time(6), pay_times=tuple(sorted(set(pays))),
                          lookback_days=14)
    arrived = [arrival(i + 1, k, tuple(sorted({base.date() + timedelta(days=d) for d in ds})),
                       base + timedelta(minutes=at), s) for i, (k, s, ds, at) in enumerate(raw)]
    ran: list[m.Ran] = []
    alerted: list[tuple[date, str]] = []
    for minutes in sorted(clock):
        now = (base + timedelta(minutes=minutes)).astimezone(UTC)
        seen = tuple(a for a in arrived if a.received_at <= now)
        p = m.plan(m.Facts(now=now, tz=TZ, cutoff_hour=cutoff, is_business_day=weekdays, arrivals=seen,
                           ran=tuple(ran), started=base.date()), schedule)
        for d in p.due:
            if d.action == "settle":
                assert now >= m.cutoff_at(d.day, cutoff, Z)
                assert any(a.kind == "transactions" and a.status == "done" and d.day in a.business_days
                           and f"a{a.id}" == d.key for a in seen)
            ran.append(m.Ran(d.day, d.action, d.key, "done", now))
        for a in p.alerts:
            alerted.append((a.day, a.key))
            ran.append(m.Ran(a.day, "alert", a.key, "done", now))
    keys = [(r.day, r.action, r.key) for r in ran]
    assert len(keys) == len(set(keys))
    assert len(alerted) == len(set(alerted))


def test_a_day_settled_late_in_this_very_pass_is_not_alerted_as_unsettled() -> None:
    a = arrive = arrival(1, "transactions", (DAY,), local(DAY, 23, 30))
    p = m.plan(facts(local(DAY + timedelta(days=1), 10, 30), (arrive,), started=DAY), SCHEDULE)
    assert [(d.action, d.key) for d in p.due] == [("settle", f"a{a.id}")]
    assert not [x for x in p.alerts if x.kind == "day_not_settled" and x.day == DAY]
