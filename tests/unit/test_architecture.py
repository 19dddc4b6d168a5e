"""Domain models stay pure: a ``model.py`` imports only the standard library, settleguard.money,
other pure settleguard model/calendar modules and small pure libraries, and never reads the clock."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import settleguard

SRC = Path(settleguard.__file__).resolve().parent
MODELS = sorted(SRC.rglob("model.py"))
PURE_LIBRARIES = {"stdnum", "chinese_calendar"}
CLOCK_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
               ("time", "time"), ("time", "monotonic"), ("time", "perf_counter")}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(tree: ast.AST, current: str) -> set[str]:
    out: set[str] = set()
    package = current.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            out.add(name)
            # "from settleguard.ledger import model" imports the submodule settleguard.ledger.model
            out.update(f"{name}.{a.name}" for a in node.names if (SRC.parent / name.replace(".", "/") / a.name)
                       .with_suffix(".py").exists())
    return out


def is_pure_settleguard(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return name == "settleguard.money" or last in ("model", "calendar") or name == "settleguard"


def impurities(path: Path) -> list[str]:
    """What a module imports or calls that a pure model may not; empty when pure."""
    return impurities_of(path.read_text(encoding="utf-8"), module_name(path))


def impurities_of(source: str, module: str) -> list[str]:
    tree = ast.parse(source)
    bad = []
    for name in sorted(imported_modules(tree, module)):
        top = name.split(".")[0]
        if top == "settleguard":
            if not is_pure_settleguard(name) and not (SRC.parent / name.replace(".", "/")).is_dir():
                bad.append(f"imports {name}")
        elif top not in sys.stdlib_module_names and top not in PURE_LIBRARIES:
            bad.append(f"imports {name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(
                node.func.value, ast.Name) and (node.func.value.id, node.func.attr) in CLOCK_CALLS:
            bad.append(f"reads the clock: {node.func.value.id}.{node.func.attr}() at line {node.lineno}")
    return bad


def settleguard_imports(path: Path) -> list[Path]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for name in imported_modules(tree, module_name(path)):
        if name.startswith("settleguard."):
            f = (SRC.parent / name.replace(".", "/")).with_suffix(".py")
            if f.exists():
                out.append(f)
    return out


def test_there_are_model_modules_to_check() -> None:
    assert {p.parent.name for p in MODELS} >= {"settlement", "ledger", "payouts", "merchants"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: str(p.relative_to(SRC)))
def test_a_model_module_imports_only_pure_code(path: Path) -> None:
    assert impurities(path) == []


@pytest.mark.parametrize("path", MODELS, ids=lambda p: str(p.relative_to(SRC)))
def test_everything_a_model_module_pulls_in_from_settleguard_is_pure_too(path: Path) -> None:
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        assert impurities(current) == [], current.relative_to(SRC)
        todo.extend(settleguard_imports(current))


@pytest.mark.parametrize(("source", "problem"), [
    ("import sqlalchemy\n", "imports sqlalchemy"),
    ("from sqlalchemy.orm import Session\n", "imports sqlalchemy.orm"),
    ("import httpx\n", "imports httpx"),
    ("from typer import Typer\n", "imports typer"),
    ("import rich.console\n", "imports rich.console"),
    ("import pyarrow as pa\n", "imports pyarrow"),
    ("from settleguard.db import tables\n", "imports settleguard.db.tables"),
    ("from settleguard.payouts.repository import due\n", "imports settleguard.payouts.repository"),
    ("from ..db import tables\n", "imports settleguard.db.tables"),
    ("from datetime import datetime\nx = datetime.now()\n", "reads the clock: datetime.now()"),
    ("import time\nx = time.time()\n", "reads the clock: time.time()"),
])
def test_the_purity_check_catches_impure_modules(source: str, problem: str) -> None:
    model = SRC / "settlement" / "model.py"
    original = model.read_text(encoding="utf-8")
    assert impurities_of(original, "settleguard.settlement.model") == []
    found = impurities_of(original + "\n" + source, "settleguard.settlement.model")
    assert any(problem in p for p in found), found
