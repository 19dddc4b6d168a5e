"""What the demo's caller needs before it runs: the default first day and the progress callbacks.

Kept apart from :mod:`settleguard.demo` (which loads the database, the importer and the generator) so that
the command line can describe ``settleguard demo`` without importing them.
"""

from __future__ import annotations

from datetime import date

DEFAULT_START = date(2026, 11, 16)  # a Monday: the week has a weekend, so T+1 waits for Monday


class Hooks:
    """Progress callbacks; the CLI draws Rich progress bars with them."""

    def stage(self, name: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def done(self) -> None: ...
