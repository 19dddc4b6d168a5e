"""Each table has one owner: only notify/ inserts into the ``notifications`` outbox, and only access/ touches
the users, API tokens, sessions and login failures. Checked over the source (AST and SQL text), so a new module
that writes around the owner fails here. The schema (db/tables.py, db/migrations) defines the tables and is
not counted."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import settleguard

SRC = Path(settleguard.__file__).resolve().parent
TABLES_MODULE = "settleguard.db.tables"
OUTBOX = "notifications"
ACCESS_TABLES = frozenset({"users", "api_tokens", "web_sessions", "login_failures"})
SQL_INSERT = re.compile(r"\binsert\s+(?:or\s+\w+\s+)?into\s+[\"`]?(\w+)", re.IGNORECASE)
SQL_TABLE = re.compile(r"\b(?:from|join|into|update|table)\s*\(?\s*[\"'`]?(\w+)", re.IGNORECASE)


def sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p != SRC / "db" / "tables.py" and "migrations" not in p.parts)


def owner(path: Path) -> str:
    return path.relative_to(SRC).parts[0]


class Tables:
    """Which expressions of one module stand for which tables of db/tables.py: ``t.users`` after
    ``from settleguard.db import tables as t``, a name imported from the tables module, or a local alias
    (``n = t.notifications``; ``d, n = t.notification_deliveries, t.notifications``)."""

    def __init__(self, tree: ast.AST) -> None:
        self.modules: set[str] = set()  # local names of the tables module
        self.names: dict[str, str] = {}  # local name -> table
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "settleguard.db":
                self.modules.update(a.asname or a.name for a in node.names if a.name == "tables")
            elif isinstance(node, ast.ImportFrom) and node.module == TABLES_MODULE:
                self.names.update({a.asname or a.name: a.name for a in node.names})
            elif isinstance(node, ast.Import):
                self.modules.update(a.asname for a in node.names if a.name == TABLES_MODULE and a.asname)
        for node in ast.walk(tree):  # aliases, after the imports are known
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = (zip(target.elts, node.value.elts, strict=False)
                             if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                             else [(target, node.value)])
                    for name, value in pairs:
                        table = self.table(value)
                        if isinstance(name, ast.Name) and table is not None:
                            self.names[name.id] = table

    def table(self, node: ast.AST) -> str | None:
        """The table ``node`` stands for, or None."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in self.modules:
            return node.attr
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        return None


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def inserts(source: str) -> set[str]:
    """The tables a module inserts into: ``insert(table)`` (SQLAlchemy core or a dialect's),
    ``table.insert()``, or ``INSERT INTO table`` in SQL text."""
    tree = ast.parse(source)
    tables = Tables(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called != "insert":
            continue
        if node.args and (table := tables.table(node.args[0])) is not None:
            out.add(table)
        if isinstance(func, ast.Attribute) and (table := tables.table(func.value)) is not None:
            out.add(table)
    for _, text in _strings(tree):
        out.update(m.group(1).lower() for m in SQL_INSERT.finditer(text))
    return out


def touched(source: str) -> set[str]:
    """The tables a module names at all (reads or writes), as table objects or in SQL text."""
    tree = ast.parse(source)
    tables = Tables(tree)
    out = {t for n in ast.walk(tree) if isinstance(n, ast.Attribute | ast.Name) and (t := tables.table(n)) is not None}
    for _, text in _strings(tree):
        out.update(m.group(1).lower() for m in SQL_TABLE.finditer(text))
    return out


def test_only_notify_inserts_into_the_outbox() -> None:
    writers = sorted(str(p.relative_to(SRC)) for p in sources() if OUTBOX in inserts(p.read_text(encoding="utf-8")))
    assert writers, "the outbox is written somewhere: the check must see notify/repository.py"
    assert [w for w in writers if not w.startswith("notify/")] == []


def test_only_access_touches_users_tokens_and_sessions() -> None:
    users = {str(p.relative_to(SRC)): sorted(touched(p.read_text(encoding="utf-8")) & ACCESS_TABLES)
             for p in sources()}
    assert {path: found for path, found in users.items() if found and not path.startswith("access/")} == {}
    assert users["access/repository.py"] == sorted(ACCESS_TABLES), "the check must see access/repository.py"


@pytest.mark.parametrize("source", [
    "from settleguard.db import tables as t\nconn.execute(insert(t.notifications).values(x=1))\n",
    "from settleguard.db import tables as t\nn = t.notifications\nconn.execute(postgresql.insert(n), rows)\n",
    "from settleguard.db import tables as t\nd, n = t.notification_deliveries, t.notifications\nsqlite.insert(n)\n",
    "from settleguard.db import tables\nstmt = tables.notifications.insert()\n",
    "from settleguard.db.tables import notifications\nsa.insert(notifications)\n",
    "import settleguard.db.tables as tb\ninsert(tb.notifications)\n",
    "conn.execute(text('INSERT INTO notifications (merchant_id) VALUES (1)'))\n",
    "q = 'insert or ignore into \"notifications\" values (?)'\n",
])
def test_the_outbox_check_catches_every_way_of_inserting(source: str) -> None:
    assert OUTBOX in inserts(source)


@pytest.mark.parametrize("source", [
    "from settleguard.db import tables as t\nn = t.notifications\nconn.execute(select(n.c.id))\n",
    "from settleguard.db import tables as t\nconn.execute(insert(t.notification_deliveries))\n",
    "from settleguard.notify import repository as repo\nrepo.add_notification(conn, merchant_id=1)\n",
])
def test_reading_the_outbox_or_writing_other_tables_is_not_an_insert(source: str) -> None:
    assert OUTBOX not in inserts(source)


@pytest.mark.parametrize(("source", "table"), [
    ("from settleguard.db import tables as t\nselect(t.users.c.id)\n", "users"),
    ("from settleguard.db import tables as t\nu, m = t.users, t.merchants\nselect(u)\n", "users"),
    ("from settleguard.db.tables import api_tokens\nupdate(api_tokens)\n", "api_tokens"),
    ("from settleguard.db import tables as t\ndelete(t.web_sessions)\n", "web_sessions"),
    ("text('SELECT at FROM login_failures WHERE username = :u')\n", "login_failures"),
    ("text('update users set disabled = true')\n", "users"),
])
def test_the_access_check_catches_every_way_of_touching_the_tables(source: str, table: str) -> None:
    assert table in touched(source)


def test_calling_the_access_repository_is_not_touching_its_tables() -> None:
    source = "from settleguard.access import repository as access_repo\nusers = access_repo.users(conn)\n"
    assert touched(source) & ACCESS_TABLES == set()
