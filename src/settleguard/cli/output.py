"""Rich output helpers: one console, bilingual labels (zh-CN first), progress bars."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy import Engine

    from settleguard.cli.runtime import Runtime

# Piped output (CI logs, files) gets 120 columns instead of Rich's 80, so tables of yuan
# amounts are not truncated; COLUMNS still wins when set.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120
console = Console(width=_WIDTH)
err = Console(stderr=True, width=_WIDTH)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()  # a worker printing one line per cycle must not hold them in a buffer


def fail(zh: str, en: str, detail: str = "", code: int = 2) -> NoReturn:
    """Print an error in Chinese then English and exit with ``code``."""
    import typer

    err.print(f"[bold red]错误[/] {zh}\n[bold red]Error[/] {en}")
    if detail:
        err.print(detail, markup=False, highlight=False)
    raise typer.Exit(code)


def engine_or_fail(rt: Runtime) -> Engine:
    """The runtime's engine, or a zh/en error (exit 2) when the database cannot be opened or migrated."""
    from settleguard.db.engine import DatabaseError

    try:
        return rt.engine
    except DatabaseError as exc:
        fail("无法打开数据库", "cannot open the database", str(exc))


def progress() -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    )


@contextmanager
def bar(description: str, total: int | None) -> Iterator[Any]:
    with progress() as p:
        task = p.add_task(description, total=total)

        class _Bar:
            def update(self, completed: int, total: int | None = None) -> None:
                p.update(task, completed=completed, total=total)

            def advance(self, n: int = 1) -> None:
                p.advance(task, n)

        yield _Bar()


def parse_date(text: str) -> date:
    """A calendar date given as YYYY-MM-DD."""
    import typer

    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date, no time
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {text!r}") from None
