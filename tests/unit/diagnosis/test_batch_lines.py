"""A diagnose batch never holds more than one capped line in memory: a hostile line is reported, not read."""

from __future__ import annotations

import io
import json

from settleguard.cli.commands_diagnose import capped_lines, run_batch


def test_a_line_longer_than_the_cap_is_reported_and_the_next_lines_are_diagnosed() -> None:
    good = b'{"scheme": "iso20022", "code": "AC04", "id": 1}\n'
    data = good + b"{" + b"\x00" * 5000 + b"\n" + good.replace(b"1}", b"3}")
    lines = list(capped_lines(io.BytesIO(data), limit=200))
    assert lines == [good, None, good.replace(b"1}", b"3}")]
    out = io.BytesIO()
    assert run_batch(lines, out) == 3
    got = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [g.get("id") for g in got] == [1, None, 3]
    assert got[1]["line"] == 2
    assert "行过长" in got[1]["error"]


def test_a_file_without_newlines_is_read_in_bounded_chunks() -> None:
    reads: list[int] = []

    class Spy(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:  # type: ignore[override]
            chunk = super().readline(size)
            reads.append(len(chunk))
            return chunk

    assert list(capped_lines(Spy(b"x" * 10_000), limit=100)) == [None]
    assert max(reads) <= 101
