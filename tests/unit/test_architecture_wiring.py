"""The wiring stays one-way: settings come from the entry points, entry points sit on top, domains form no cycle.

- Nothing below the entry points reads the environment: no ``os.environ`` / ``os.getenv``, no ``Settings``
  built (called, or handed over as a factory), no ``pydantic_settings``. The entry points that may are the
  command line (``cli/``, with the uvicorn factory of ``serve --workers N`` in ``cli/commands_serve.py``), the
  composition root (``bootstrap.py``), ``config.py`` (the settings themselves), the worker (``worker.py``) and
  ``db/migrations/env.py`` -- Alembic's own entry point, run by ``alembic`` outside settleguard's wiring. The
  web app gets everything from its container (``create_app(container)``) and reads nothing itself.
- Only the entry points (``cli/``, ``web/``, ``bootstrap.py``, ``worker.py``, ``__main__.py``) import
  ``settleguard.cli`` or ``settleguard.web``, and ``web/`` never imports ``cli/``: both get their parts from
  ``bootstrap.Container``.
- No import cycle between top-level packages (``settleguard.<top>``): the graph of which package imports which
  module that does work (touches the database, the network, the web; every import: module level, inside
  functions and under ``TYPE_CHECKING`` -- a lazy import is still a dependency) has no cycle. Imports of pure
  modules (models, checks, code tables, labels) are shared vocabulary and do not count (``WORK_LIBRARIES``).

Each check is a function of source text, and the last tests feed it bad snippets so that it is seen to fail.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from test_architecture import SRC, imported_modules, module_name

MODULES = sorted(SRC.rglob("*.py"))
ENV_ATTRS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
ENV_ENTRY_POINTS = ("settleguard.cli", "settleguard.bootstrap", "settleguard.config", "settleguard.worker",
                    "settleguard.db.migrations.env")
CLI_WEB = ("settleguard.cli", "settleguard.web")
MAY_IMPORT_CLI_WEB = (*CLI_WEB, "settleguard.bootstrap", "settleguard.worker", "settleguard.__main__")

# A module "does work" when it touches the database, the network, the web or the file lock -- it imports one of
# these libraries, or a settleguard module that does work. The others (models, checks, tables of codes, labels,
# the BIN and MCC tables, the vault's cipher) are shared vocabulary: importing one is not a dependency between
# two domains' use cases, so the cycle check follows only imports of modules that do work.
WORK_LIBRARIES = frozenset({"sqlalchemy", "alembic", "psycopg", "httpx", "fastapi", "starlette", "uvicorn", "lxml",
                            "defusedxml", "smtplib", "socket", "pyarrow", "fcntl", "subprocess", "jinja2"})


# --- the checks: functions of source text ------------------------------------------------------------


def _is_settings(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Settings") or (
        isinstance(node, ast.Attribute) and node.attr == "Settings")


def environment_reads(source: str) -> list[str]:
    """How a module reads the environment: os.environ/getenv, Settings built or handed over, pydantic_settings."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ENV_ATTRS:
            found.append(f"reads the environment: os.{node.attr} at line {line}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(f"imports os.{a.name} at line {line}" for a in node.names if a.name in ENV_ATTRS)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found.extend(f"imports {n} at line {line}" for n in names if n.split(".")[0] == "pydantic_settings")
        elif isinstance(node, ast.Call):
            target = node.func.value if isinstance(node.func, ast.Attribute) and _is_settings(node.func.value) \
                else node.func
            if _is_settings(target):
                found.append(f"builds Settings at line {line}")
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if _is_settings(arg):
                    found.append(f"hands Settings over as a factory at line {line}")
    return found


def imports_of(source: str, module: str) -> set[str]:
    """Every settleguard module or package ``module`` imports, wherever the import is written."""
    tree = ast.parse(source)
    out = {n for n in imported_modules(tree, module) if n == "settleguard" or n.startswith("settleguard.")}
    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):  # "from settleguard import web" imports the package settleguard.web
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name == "settleguard" or name.startswith("settleguard."):
                out.update(f"{name}.{a.name}" for a in node.names
                           if (SRC.parent / name.replace(".", "/") / a.name).is_dir())
    return out


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def entry_point_imports(source: str, module: str) -> list[str]:
    """Imports of settleguard.cli / settleguard.web that ``module`` may not make."""
    if _under(module, ("settleguard.web",)):
        forbidden: tuple[str, ...] = ("settleguard.cli",)
    elif _under(module, MAY_IMPORT_CLI_WEB):
        return []
    else:
        forbidden = CLI_WEB
    return sorted(f"imports {n}" for n in imports_of(source, module) if _under(n, forbidden))


def top_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def working_modules(sources: Mapping[str, str]) -> set[str]:
    """The modules that do work: import a WORK_LIBRARIES library, or (transitively) a settleguard module that does."""
    deps = {m: {n for n in imports_of(s, m) if n in sources} for m, s in sources.items()}
    working = set()
    for module, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            if any(n.split(".")[0] in WORK_LIBRARIES for n in names):
                working.add(module)
    grew = True
    while grew:
        grew = False
        for module in sources.keys() - working:
            if deps[module] & working:
                working.add(module)
                grew = True
    return working


def package_edges(sources: Mapping[str, str], only: set[str] | None = None) -> dict[tuple[str, str], set[str]]:
    """(importing top-level package, imported one) -> the modules that make the import; with ``only``, imports
    of those modules only."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for module, source in sources.items():
        for name in imports_of(source, module):
            if only is not None and name not in only:
                continue
            if name.count(".") >= 1 and top_of(name) != top_of(module):
                edges[(top_of(module), top_of(name))].add(module)
    return edges


def cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan), each sorted."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
        graph[b]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def explain(found: list[list[str]], edges: Mapping[tuple[str, str], set[str]]) -> list[str]:
    """Each cycle with the imports that make it: 'cases -> payouts (settleguard.cases.service)'."""
    return [f"{' <-> '.join(c)}: " + "; ".join(f"{a} -> {b} ({', '.join(sorted(ms))})"
                                              for (a, b), ms in sorted(edges.items()) if a in c and b in c)
            for c in found]


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _ids(path: Path) -> str:
    return str(path.relative_to(SRC))


# --- the rules over the package --------------------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in MODULES if not _under(module_name(p), ENV_ENTRY_POINTS)], ids=_ids)
def test_no_module_below_the_entry_points_reads_the_environment(path: Path) -> None:
    assert environment_reads(_source(path)) == []


@pytest.mark.parametrize("path", MODULES, ids=_ids)
def test_only_entry_points_import_the_cli_or_the_web_app(path: Path) -> None:
    assert entry_point_imports(_source(path), module_name(path)) == []


def test_the_settings_are_read_where_the_wiring_says() -> None:
    readers = {module_name(p) for p in MODULES if environment_reads(_source(p))}
    assert "settleguard.bootstrap" in readers  # the checks see real reads
    assert readers <= {module_name(p) for p in MODULES if _under(module_name(p), ENV_ENTRY_POINTS)}


def test_no_import_cycle_between_top_level_packages() -> None:
    sources = {module_name(p): _source(p) for p in MODULES}
    working = working_modules(sources)
    assert {"settleguard.payouts.repository", "settleguard.cases.service"} <= working  # the graph is real
    assert "settleguard.payouts.model" not in working
    assert "settleguard.labels" not in working
    edges = package_edges(sources, working)
    assert ("cli", "bootstrap") in edges
    assert ("worker", "cases") in edges
    assert explain(cycles(edges), edges) == []


def test_the_worker_s_domains_do_not_import_each_other_to_run_a_cycle() -> None:
    sources = {module_name(p): _source(p) for p in MODULES}
    edges = package_edges(sources, working_modules(sources))
    assert not {("payouts", "cases"), ("cases", "notify"), ("notify", "payouts"), ("payouts", "worker")} & set(edges)


# --- each check can fail ---------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "problem"), [
    ("import os\nx = os.environ['SETTLEGUARD_DB']\n", "reads the environment: os.environ"),
    ("import os\nx = os.environ.get('X')\n", "reads the environment: os.environ"),
    ("import os\nx = os.getenv('X')\n", "reads the environment: os.getenv"),
    ("from os import environ\n", "imports os.environ"),
    ("from os import getenv as g\n", "imports os.getenv"),
    ("from settleguard.config import Settings\ns = Settings()\n", "builds Settings"),
    ("from settleguard import config\ns = config.Settings(db='x')\n", "builds Settings"),
    ("def f(s=None):\n    return s or Settings()\n", "builds Settings"),
    ("x = Settings.model_validate({})\n", "builds Settings"),
    ("from dataclasses import field\nx = field(default_factory=Settings)\n", "hands Settings over as a factory"),
    ("from pydantic_settings import BaseSettings\n", "imports pydantic_settings"),
])
def test_the_environment_check_catches_reads(source: str, problem: str) -> None:
    found = environment_reads(source)
    assert any(problem in f for f in found), found


def test_the_environment_check_lets_settings_be_passed_in() -> None:
    source = ("from __future__ import annotations\nimport os\nfrom settleguard.config import Settings\n"
              "from settleguard.cards.service import CardSettings\n"
              "def f(s: Settings) -> CardSettings:\n    os.path.join('a')\n    return CardSettings()\n")
    assert environment_reads(source) == []


@pytest.mark.parametrize(("module", "source", "problem"), [
    ("settleguard.notify.delivery", "from settleguard.web.users import add_user\n", "imports settleguard.web.users"),
    ("settleguard.payouts.service", "import settleguard.cli.main\n", "imports settleguard.cli.main"),
    ("settleguard.cases.service", "from settleguard import web\n", "imports settleguard.web"),
    ("settleguard.payouts.files", "from ..cli import output\n", "imports settleguard.cli.output"),
    ("settleguard.ledger.repository", "def f():\n    from settleguard.web.app import create_app\n",
     "imports settleguard.web.app"),
    ("settleguard.web.services", "from settleguard.cli.runtime import Runtime\n", "imports settleguard.cli.runtime"),
    ("settleguard.web.console.tools", "def f():\n    from settleguard.cli.runtime import Runtime\n",
     "imports settleguard.cli.runtime"),
])
def test_the_entry_point_check_catches_imports_from_below(module: str, source: str, problem: str) -> None:
    assert problem in entry_point_imports(source, module)


def test_the_entry_points_may_import_each_other() -> None:
    assert entry_point_imports("from settleguard.web.app import create_app\n", "settleguard.cli.commands_serve") == []
    assert entry_point_imports("from settleguard.web.app import create_app\n", "settleguard.bootstrap") == []
    assert entry_point_imports("from settleguard.cli.main import main\n", "settleguard.__main__") == []


def test_the_cycle_check_finds_a_cycle_between_packages_and_names_the_imports() -> None:
    sources = {"settleguard.cases.service": "from settleguard.payouts import repository\n",
               "settleguard.payouts.files": "def f():\n    from settleguard.cases.service import open_case\n",
               "settleguard.payouts.service": "from settleguard.ledger import repository\n",
               "settleguard.ledger.repository": "from settleguard.db import tables\n"}
    edges = package_edges(sources)
    assert cycles(edges) == [["cases", "payouts"]]
    assert explain(cycles(edges), edges) == [
        "cases <-> payouts: cases -> payouts (settleguard.cases.service); payouts -> cases (settleguard.payouts.files)"]
    assert cycles(e for e in edges if e != ("cases", "payouts")) == []


def test_imports_of_modules_that_do_no_work_do_not_count_and_work_is_transitive() -> None:
    sources = {"settleguard.cases.service": "from settleguard.payouts import model\nfrom settleguard.cases import repository\n",
               "settleguard.cases.repository": "import sqlalchemy\n",
               "settleguard.payouts.model": "import enum\n",
               "settleguard.payouts.files": "from settleguard.cases.service import open_case\n"}
    working = working_modules(sources)
    assert working == {"settleguard.cases.service", "settleguard.cases.repository", "settleguard.payouts.files"}
    assert cycles(package_edges(sources)) == [["cases", "payouts"]]
    assert cycles(package_edges(sources, working)) == []


def test_the_cycle_check_finds_a_longer_cycle() -> None:
    assert cycles([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == [["a", "b", "c"]]
    assert cycles([("a", "b"), ("b", "c"), ("a", "c")]) == []
