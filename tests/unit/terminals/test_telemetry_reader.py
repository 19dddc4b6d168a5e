"""The telemetry field reader and the TMS export reader are fed anything (hypothesis): they return values and
problems, never raise, never echo a value unbounded, and what they accept is within its field's range."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.terminals.policy import PolicyRejected, parse_csv, parse_toml
from settleguard.terminals.registry import ExportRejected, parse_export
from settleguard.terminals.telemetry import FIELDS, read_fields

BJ = ZoneInfo("Asia/Shanghai")
values = st.one_of(st.text(max_size=300), st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31 23:59:59",
                                                          "1700000000000", "2026-11-20T09:30:00"]), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.lists(st.text(max_size=20), max_size=10), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                               max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(FIELDS)), values, max_size=12))
def test_read_fields_never_raises_and_bounds_what_it_accepts(raw: dict[str, object]) -> None:
    tel, problems = read_fields(raw, BJ)
    for p in problems:
        assert p.field in FIELDS
        assert len(p.zh) < 200
        assert len(p.en) < 260
    if tel.battery is not None:
        assert 0 <= tel.battery <= 100
    if tel.signal_dbm is not None:
        assert -150 <= tel.signal_dbm <= 0
    if tel.lat is not None:
        assert -90 <= tel.lat <= 90
    if tel.iccid is not None:
        assert tel.iccid[:18].isdigit()
    for at in (tel.last_heartbeat_at, tel.last_sign_in_at):
        assert at is None or at.astimezone(UTC).year >= 1999
    for text in (tel.host, tel.firmware, tel.app_version, tel.model_name):
        assert text is None or len(text) <= 64


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000) | st.text(max_size=2000).map(lambda s: s.encode()))
def test_export_reader_refuses_or_reports_never_crashes(data: bytes) -> None:
    try:
        rows, problems = parse_export(data, BJ)
    except ExportRejected as exc:
        refused = exc
    else:
        refused = None
    if refused is not None:
        assert refused.zh
        assert refused.en
        return
    assert all(r.telemetry.serial_no or r.telemetry.terminal_no for r in rows)
    assert all(p.zh and p.en for p in problems)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=1000))
def test_policy_readers_refuse_or_read_never_crash(text: str) -> None:
    for parse in (parse_toml, parse_csv):
        problems = []
        try:
            parse(text)
        except PolicyRejected as exc:
            problems = exc.problems
        assert all(p.zh and p.en for p in problems)
