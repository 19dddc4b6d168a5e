"""Logs: one configuration for the CLI, the worker and the server, masked, with a run or request id.

:func:`configure` is called once by each entry point (the CLI's callback, so also ``settleguard worker`` and
``settleguard serve``; each server process of ``serve --workers N`` in ``cli/commands_serve.py``). settleguard's
modules log with the standard library (``logging.getLogger(__name__)``, fields as ``extra={...}``); structlog
loggers work too once JSON is configured. Every record gets:

- the ids bound for the current unit of work (:func:`bound`): ``run_id`` of a worker cycle (worker.run),
  ``request_id`` of an HTTP request (web/health.py's middleware, which also answers ``X-Request-ID``);
- level, logger name and an ISO time in UTC (JSON);
- the exception, rendered as text;
- :func:`mask_event` / :func:`mask_text`: every string in the record -- the event (message), every field,
  nested dicts and lists, the exception text -- with card numbers (settleguard.masking) and resident ID numbers
  (18 characters, the last may be X) masked; long integers are masked as card numbers too.

``json=True``: structlog's processor chain over the standard library, one JSON object per line on stderr.
Text (the default, for a person at a terminal): ``LEVEL logger: message [ids]``, masked the same way, without
importing structlog (it costs ~0.1 s, and ``settleguard card check`` must start fast: tests/e2e/test_cli_startup.py).
The environment is read by the entry points, never here.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

from settleguard.masking import mask_card_numbers

_SEP = r"[ \-\u00a0\u3000\uff0d]"
# 17 digits and a last digit or X (ASCII or full-width), possibly in groups; not inside a longer word or number.
_RESIDENT_ID = re.compile(rf"(?<![0-9A-Za-z\uff10-\uff19])\d(?:{_SEP}?\d){{16}}{_SEP}?[\dXx\uff38\uff58]"
                          rf"(?![0-9A-Za-z\uff10-\uff19])")
_NOT_ID_CHAR = re.compile(r"[^\dXx\uff38\uff58]")


def _mask_id(m: re.Match[str]) -> str:
    chars = _NOT_ID_CHAR.sub("", m.group(0))
    return chars[:6] + "*" * 8 + chars[-4:]  # region kept, birth date and sequence hidden


def mask_text(text: str) -> str:
    """``text`` with resident ID numbers and card numbers masked (first 6 and last 4 characters kept)."""
    if len(text) < 13:
        return text
    return mask_card_numbers(_RESIDENT_ID.sub(_mask_id, text))


def mask_value(value: Any) -> Any:
    """A log value with :func:`mask_text` applied to every string in it (dicts, lists, tuples, sets)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        shown = str(value)
        masked = mask_text(shown)
        return value if masked == shown else masked
    if isinstance(value, Mapping):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(v) for v in value]
    if isinstance(value, BaseException):
        return mask_text(f"{type(value).__name__}: {value}")
    return value


def mask_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The structlog processor: :func:`mask_value` over the whole record (it runs after the exception is
    rendered, so the traceback text is masked as well)."""
    for key in list(event_dict):
        if key.startswith("_"):  # structlog's own entries (_record, _from_structlog)
            continue
        event_dict[key] = mask_value(event_dict[key])
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_MARK = "_settleguard_handler"
_NOISY = ("alembic", "httpx", "httpcore")
_STATE = {"json": False}


def json_configured() -> bool:
    """Whether :func:`configure` chose JSON (the server then hands uvicorn's own loggers to this chain)."""
    return _STATE["json"]


def _shared() -> list[Any]:
    import structlog

    return [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info]


class _TextFormatter(logging.Formatter):
    """``LEVEL logger: message [run_id=…]`` and the traceback, masked."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in current_ids().items())
        text = super().format(record)
        if ids:
            first, _, rest = text.partition("\n")
            text = f"{first} [{ids}]" + (f"\n{rest}" if rest else "")
        return mask_text(text)


def configure(*, json: bool = False, level: int | str | None = None) -> None:
    """Route every log record through the masking chain, as JSON lines (``json``) or text, to stderr.

    ``level`` defaults to INFO for JSON (a collector wants the worker's cycles and the requests) and WARNING for
    text (a person at a terminal). Calling it again replaces the handler it installed."""
    _STATE["json"] = json
    lvl = level if level is not None else (logging.INFO if json else logging.WARNING)
    formatter: logging.Formatter
    if json:
        import structlog

        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared(),
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, mask_event,
                        structlog.processors.JSONRenderer(ensure_ascii=False, default=str)])
        structlog.configure(
            processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
    else:
        formatter = _TextFormatter()
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(h)
    handler = _StderrHandler()
    setattr(handler, _MARK, True)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(lvl)
    for noisy in _NOISY:  # their INFO is each migration step or HTTP call, not an operator's business
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))


def new_id() -> str:
    """A fresh run or request id (32 hex characters)."""
    return uuid.uuid4().hex


@contextmanager
def bound(**ids: str) -> Iterator[None]:
    """Every record logged inside the block (in this thread or task) carries ``ids``."""
    import structlog.contextvars

    tokens = structlog.contextvars.bind_contextvars(**ids)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def current_ids() -> dict[str, Any]:
    """The ids bound for the current unit of work (``run_id``, ``request_id``)."""
    ctx = sys.modules.get("structlog.contextvars")  # nothing was bound unless structlog was imported
    return dict(ctx.get_contextvars()) if ctx is not None else {}
