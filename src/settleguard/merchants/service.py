"""Onboarding for the API and the console: one merchant from form fields, or an uploaded merchant file.

Both go through merchants.onboarding (``add_merchant``, ``import_merchants``): the same checks, the same
line/field report, the same audit events as ``settleguard merchants add|import``. This module only turns
what a web request carries into what those take — the file layout's fields with one row per terminal, or
the upload written to a private temporary file (bounded: :data:`MAX_UPLOAD` bytes) under a safe name.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from settleguard.cards.vault import Vault
from settleguard.merchants.checks import RowProblem, Rules
from settleguard.merchants.file_layout import FIELDS
from settleguard.merchants.onboarding import (
    DEFAULT_LIMIT,
    OnboardingRejected,
    OnboardingResult,
    add_merchant,
    import_merchants,
)

MAX_UPLOAD = 20 * 1024 * 1024  # bytes of a merchant file sent through the API or the console
# what ``merchants add`` takes when a flag is left out (cli/commands_merchants.py)
DEFAULTS: Mapping[str, str] = {"cycle": "T+1", "debit_rate": "0.5", "debit_cap": "20", "credit_rate": "0.6",
                               "qr_rate": "0.38"}
MERCHANT_FIELDS = ("merchant_no", "registered_name", "kind", "legal_person", "legal_person_id", "uscc", "business",
                   "mcc", "city", "contact_mobile", "cycle", "debit_rate", "debit_cap", "credit_rate", "qr_rate",
                   "fee_effective_from", "holder_name", "holder_id", "card_no", "bank")
_SAFE_NAME = re.compile(r"[^\w.\-]+")


@dataclass(frozen=True)
class Terminal:
    serial_no: str
    terminal_no: str
    model: str


class UploadTooLarge(ValueError):
    """The uploaded file is larger than :data:`MAX_UPLOAD`; nothing was read further."""


def merchant_rows(fields: Mapping[str, str], terminals: Sequence[Terminal]) -> list[dict[str, str]]:
    """The file layout's rows of one merchant: its fields repeated once per terminal (at least one row)."""
    base = {k: str(fields.get(k) or DEFAULTS.get(k, "")).strip() for k in MERCHANT_FIELDS}
    if "debit_cap" in fields:  # an empty cap given on purpose means no cap
        base["debit_cap"] = str(fields["debit_cap"] or "").strip()
    return [{**base, "terminal_sn": x.serial_no.strip(), "terminal_no": x.terminal_no.strip(),
             "terminal_model": x.model.strip()} for x in terminals] or [
        {**base, "terminal_sn": "", "terminal_no": "", "terminal_model": ""}]


def register_one(engine: Engine, fields: Mapping[str, str], terminals: Sequence[Terminal], *, vault: Vault,
                 now: datetime, rules: Rules, actor: str, timezone: str) -> OnboardingResult:
    """``merchants add`` for one merchant given as fields; raises :class:`OnboardingRejected`."""
    return add_merchant(engine, merchant_rows(fields, terminals), vault=vault, now=now, rules=rules, actor=actor,
                        timezone=timezone)


def safe_filename(name: str | None) -> str:
    """The upload's base name with only letters, digits, ``.``, ``-`` and ``_`` (at most 100 characters)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return cleaned or "merchants.csv"


def import_upload(engine: Engine, chunks: Iterable[bytes], filename: str | None, *, vault: Vault, now: datetime,
                  rules: Rules, actor: str, timezone: str, limit: int = DEFAULT_LIMIT) -> OnboardingResult:
    """Write the upload to a private temporary file (at most :data:`MAX_UPLOAD` bytes, else
    :class:`UploadTooLarge`) and import it; raises :class:`OnboardingRejected` as the CLI's import does."""
    name = safe_filename(filename)
    with tempfile.TemporaryDirectory(prefix="sg-merchants-") as tmp:
        path = Path(tmp) / name
        size = 0
        with path.open("wb") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise UploadTooLarge(f"larger than {MAX_UPLOAD} bytes")
                fh.write(chunk)
        return import_merchants(engine, path, vault=vault, now=now, rules=rules, actor=actor, limit=limit,
                                timezone=timezone)


def problem_view(p: RowProblem) -> dict[str, Any]:
    """A problem for people and clients: line, field (and its zh/en label), code, zh/en text."""
    zh, en = FIELDS.get(p.field, (p.field, p.field))
    return {**p.as_dict(), "field_zh": zh, "field_en": en}


def rejection_view(exc: OnboardingRejected, filename: str | None = None) -> dict[str, Any]:
    """What a refusal reports (no server path): the problems shown, their total, or the file's reason."""
    return {"file": filename, "registered": 0, "total_problems": exc.total,
            "reason": None if exc.reason is None else {"zh": exc.reason[0], "en": exc.reason[1]},
            "problems": [problem_view(p) for p in exc.problems]}


def result_view(res: OnboardingResult, filename: str | None = None) -> dict[str, Any]:
    """An import's or registration's outcome (no server path)."""
    out = res.as_dict()
    out["file"] = filename
    out["warnings"] = [problem_view(w) for w in res.warnings]
    return out
