"""Reading a TMS export never changes the process-wide csv field limit (it did: csv.field_size_limit(4096) made a
later BIN-table import in the same process fail with 'field larger than field limit' instead of naming the
header), and still refuses an over-long field itself."""

from __future__ import annotations

import csv

import pytest

from settleguard.terminals import registry


def test_a_tms_csv_leaves_the_csv_module_as_it_was_and_refuses_a_long_field() -> None:
    before = csv.field_size_limit()
    rows = registry._csv_rows("tid,serialNo\nT0000001,SN1\n")
    assert rows[0][2] == {"tid": "T0000001", "serialNo": "SN1"}
    with pytest.raises(registry.ExportRejected, match="4096"):
        registry._csv_rows("tid,serialNo\nT0000001," + "x" * 5000 + "\n")
    with pytest.raises(registry.ExportRejected, match="line 1"):
        registry._csv_rows("tid," + "y" * 5000 + "\nT1,SN\n")
    assert csv.field_size_limit() == before
