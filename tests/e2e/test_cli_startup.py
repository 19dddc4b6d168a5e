"""The command line starts fast: ``--help`` and ``card check`` (no database) do not import the heavy libraries.

Each command imports what it needs itself (cli/main.py). Deterministic, not a stopwatch: ``python -X importtime``
lists every module a run imported; none of the heavy ones may be among them. (They made every command take
~2 s to start, ``--help`` too; docs/benchmarks.md "CLI start-up" has the times.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Libraries that take tens to hundreds of milliseconds to import, and our modules that load them or the
# diagnosis knowledge base.
HEAVY = ("sqlalchemy", "alembic", "pyarrow", "numpy", "fastapi", "starlette", "uvicorn", "lxml", "cryptography",
         "httpx", "jinja2", "faker", "settleguard.db", "settleguard.demo", "settleguard.diagnosis.kb",
         "settleguard.diagnosis.classifier")
# `card check` reads its settings (pydantic) and the packaged BIN table, and prints with Rich; nothing else.
HEAVY_FOR_CARD_CHECK = (*HEAVY, "rich.progress", "settleguard.cards.vault", "settleguard.cards.repository")


def imported(*args: str) -> set[str]:
    """The modules a run of ``settleguard ARGS`` imported (python -X importtime writes them to stderr)."""
    env = {**os.environ, "COLUMNS": "120", "SETTLEGUARD_DB": "sqlite:///does-not-exist/never-opened.db"}
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "settleguard", *args], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    names = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "settleguard.cli.main" in names  # the list is real
    return names


def heavy_in(names: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in heavy))


@pytest.mark.parametrize("args", [("--help",), ("card", "--help"), ("payouts", "--help"), ("demo", "--help"),
                                  ("users", "add", "--help")])
def test_help_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    assert heavy_in(imported(*args), HEAVY) == []


def test_card_check_imports_no_heavy_library() -> None:
    names = imported("card", "check", "6222 0202 0011 2233 447", "--json")
    assert "settleguard.cards.checks" in names  # it did check the card
    assert heavy_in(names, HEAVY_FOR_CARD_CHECK) == []
