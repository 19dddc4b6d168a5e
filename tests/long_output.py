"""Checks for CLI output read in a terminal of a given width (issue 18, item 10): nothing is cut with "…",
no line is wider than the terminal, the length is bounded, and a text is there whole however it wrapped."""

from __future__ import annotations

import re

from rich.cells import cell_len

WIDTHS = (80, 120)
_BOX_AND_SPACE = re.compile(r"[\u2500-\u257f\s]+")  # Rich's box drawing, spaces and line breaks


def flat(text: str) -> str:
    """``text`` without spaces, line breaks and box lines: a wrapped text compares equal to its source."""
    return _BOX_AND_SPACE.sub("", text)


def assert_fits(out: str, width: int, max_lines: int) -> None:
    lines = out.splitlines()
    assert "…" not in out, "\n".join(line for line in lines if "…" in line)
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, too_wide
    assert len(lines) <= max_lines, f"{len(lines)} lines > {max_lines}:\n{out}"


def assert_whole(out: str, *texts: str, once: bool = False) -> None:
    """Each of ``texts`` is in ``out`` (wrapped or not), and with ``once``, exactly once."""
    got = flat(out)
    for text in texts:
        n = got.count(flat(text))
        assert n >= 1, f"missing: {text}"
        assert n == 1 or not once, f"{n} times: {text}"
