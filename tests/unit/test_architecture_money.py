"""One write path for money: only ``ledger/repository.py`` inserts ledger rows (and nothing updates or
deletes them), only the payout status gate ``payouts/repository.py`` writes ``payouts.status``.

The check reads every module's syntax tree: ``insert(t.ledger_entries)`` / ``t.ledger_postings.insert()``
(also through a local name such as ``e = t.ledger_entries``), ``update(t.payouts)...values(status=...)``
(a ``**`` mapping counts as a possible status) and SQL written as strings (``INSERT INTO ledger_postings``,
``UPDATE payouts SET ... status``). Migrations are history (they run once, on their own frozen copies of
the tables) and are not checked.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import settleguard

SRC = Path(settleguard.__file__).resolve().parent
LEDGER_TABLES = {"ledger_entries", "ledger_postings"}
LEDGER_WRITER = "ledger/repository.py"
STATUS_GATE = "payouts/repository.py"
RAW_LEDGER = re.compile(r"\b(insert\s+into|update|delete\s+from)\s+[\"`]?(ledger_entries|ledger_postings)\b",
                        re.IGNORECASE)
RAW_STATUS = re.compile(r"\bupdate\s+[\"`]?payouts[\"`]?\s+set\b[^;]*\bstatus\s*=", re.IGNORECASE | re.DOTALL)


def _table_of(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """The table an expression names: ``t.payouts``, ``tables.payouts``, a local alias, ``x.alias()``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "alias":
        return _table_of(node.func.value, aliases)
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local names bound to a table attribute: ``p = t.payouts``, ``lp, po = t.ledger_postings, t.payouts``."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            else:
                pairs = [(target, node.value)]
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Attribute):
                    out[name.id] = value.attr
    return out


def _sets_status(call: ast.Call) -> bool:
    if any(k.arg == "status" or k.arg is None for k in call.keywords):
        return True
    return any(isinstance(a, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "status" or k is None
                                              for k in a.keys) for a in call.args)


def _update_target(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """The table of the ``update(...)``/``X.update()`` at the root of a method chain."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "update":
            return _table_of(node.func.value, aliases)
        node = node.func.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "update" and node.args:
        return _table_of(node.args[0], aliases)
    return None


def money_writes(source: str) -> tuple[list[str], list[str]]:
    """(ledger writes, payout status writes) found in ``source``, each as "line: what"."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    ledger: list[str] = []
    status: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if RAW_LEDGER.search(node.value):
                ledger.append(f"{node.lineno}: SQL text writes a ledger table")
            if RAW_STATUS.search(node.value):
                status.append(f"{node.lineno}: SQL text updates payouts.status")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        # insert(T) / update(T) / delete(T), and T.insert() / T.update() / T.delete()
        if isinstance(func, ast.Name) and func.id in ("insert", "update", "delete") and node.args:
            if _table_of(node.args[0], aliases) in LEDGER_TABLES:
                ledger.append(f"{node.lineno}: {func.id}({ast.unparse(node.args[0])})")
        elif isinstance(func, ast.Attribute) and func.attr in ("insert", "update", "delete"):
            if _table_of(func.value, aliases) in LEDGER_TABLES:
                ledger.append(f"{node.lineno}: {ast.unparse(func)}()")
        # <update(payouts) chain>.values(status=...)
        if isinstance(func, ast.Attribute) and func.attr == "values" and _sets_status(node) \
                and _update_target(func.value, aliases) == "payouts":
            status.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return ledger, status


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.relative_to(SRC).parts)


def test_there_are_modules_to_check_and_the_writers_are_found() -> None:
    by_path = {p.relative_to(SRC).as_posix(): money_writes(p.read_text(encoding="utf-8")) for p in _modules()}
    assert len(by_path) > 50
    assert by_path[LEDGER_WRITER][0], "the ledger module itself must be seen writing ledger rows"
    assert by_path[STATUS_GATE][1], "the status gate itself must be seen writing payouts.status"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(SRC).as_posix())
def test_only_the_ledger_module_writes_ledger_rows_and_only_the_gate_writes_payout_statuses(path: Path) -> None:
    rel = path.relative_to(SRC).as_posix()
    ledger, status = money_writes(path.read_text(encoding="utf-8"))
    if rel != LEDGER_WRITER:
        assert not ledger, f"{rel} writes ledger rows; post them through ledger.repository: {ledger}"
    if rel != STATUS_GATE:
        assert not status, f"{rel} writes payouts.status; change it through payouts.repository: {status}"


@pytest.mark.parametrize(("source", "ledger", "status"), [
    ("from sqlalchemy import insert\nconn.execute(insert(t.ledger_entries).values(kind='x'))", 1, 0),
    ("e = t.ledger_postings\nconn.execute(insert(e).from_select([], q))", 1, 0),
    ("lp, po = t.ledger_postings, t.payouts\nconn.execute(insert(lp), rows)", 1, 0),
    ("conn.execute(tables.ledger_entries.insert())", 1, 0),
    ("conn.execute(delete(t.ledger_postings))", 1, 0),
    ("conn.exec_driver_sql('INSERT INTO ledger_postings (entry_id) VALUES (1)')", 1, 0),
    ("conn.execute(text('insert into \"ledger_entries\" (kind) values (:k)'))", 1, 0),
    ("conn.execute(update(t.payouts).where(t.payouts.c.id == 1).values(status='held'))", 0, 1),
    ("p = t.payouts\nconn.execute(update(p).where(p.c.id == 1).values(updated_at=now, status=s))", 0, 1),
    ("conn.execute(update(t.payouts).values({'status': 'held'}))", 0, 1),
    ("conn.execute(update(t.payouts).where(x).values(**values))", 0, 1),
    ("conn.execute(t.payouts.update().values(status='held'))", 0, 1),
    ("conn.execute(text('UPDATE payouts SET updated_at = now(), status = :s WHERE id = :i'))", 0, 1),
    # not money writes
    ("conn.execute(update(t.payouts).where(x).values(updated_at=now))", 0, 0),
    ("conn.execute(update(t.merchants).values(status='frozen'))", 0, 0),
    ("conn.execute(select(t.ledger_postings.c.amount_fen))", 0, 0),
    ("conn.execute(insert(t.payout_events).values(to_status='held'))", 0, 0),
    ("doc = 'the ledger_postings of an entry sum to zero'", 0, 0),
])
def test_the_checker_catches_a_bad_snippet(source: str, ledger: int, status: int) -> None:
    found_ledger, found_status = money_writes(source)
    assert (len(found_ledger), len(found_status)) == (ledger, status), (found_ledger, found_status)
