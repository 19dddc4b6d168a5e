"""The bundle's manifest and its check, and card-number redaction. Pure (no I/O).

``manifest.json`` = {"format": 1, "case_id", "created_at", "generator", "files": [{"name", "sha256",
"size"}, ...]} with files in name order; the manifest does not list itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MANIFEST = "manifest.json"
FORMAT = 1
_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(files: Mapping[str, bytes], *, case_id: int, created_at: str, generator: str) -> bytes:
    if MANIFEST in files:
        raise ValueError("the manifest cannot list itself")
    doc = {"format": FORMAT, "case_id": case_id, "created_at": created_at, "generator": generator,
           "files": [{"name": n, "sha256": sha256(files[n]), "size": len(files[n])} for n in sorted(files)]}
    return (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


@dataclass
class Report:
    """What :func:`check` found; ``ok`` when nothing is missing, extra, changed or unreadable."""

    case_id: int | None = None
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # unreadable members or manifest

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "case_id": self.case_id, "checked": self.checked, "missing": self.missing,
                "extra": self.extra, "changed": self.changed, "errors": self.errors}


def check(manifest: bytes, names: list[str], read: Callable[[str], bytes]) -> Report:
    """Recompute every listed file's hash and size. ``names`` are the members present; ``read`` reads one
    and raises (any exception) when it cannot be read, which counts the member as changed."""
    rep = Report()
    try:
        doc = json.loads(manifest)
        listed = {str(f["name"]): (str(f["sha256"]), int(f["size"])) for f in doc["files"]}
        rep.case_id = int(doc["case_id"])
    except (ValueError, KeyError, TypeError) as exc:
        rep.errors.append(f"{MANIFEST}: {type(exc).__name__}: {exc}")
        return rep
    present = set(names) - {MANIFEST}
    rep.missing = sorted(set(listed) - present)
    rep.extra = sorted(present - set(listed))
    for name in sorted(set(listed) & present):
        rep.checked += 1
        try:
            data = read(name)
        except Exception as exc:  # a corrupted member: bad CRC, bad compressed data
            rep.changed.append(name)
            rep.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        if (sha256(data), len(data)) != listed[name]:
            rep.changed.append(name)
    return rep


def redact_pans(text: str, is_card_number: Callable[[str], bool]) -> tuple[str, int]:
    """``text`` with every 13-19 digit run that ``is_card_number`` accepts masked (first 6, last 4 kept);
    and how many were masked."""
    n = 0

    def _mask(mo: re.Match[str]) -> str:
        nonlocal n
        digits = mo.group(0)
        if not is_card_number(digits):
            return digits
        n += 1
        return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]

    return _DIGIT_RUN.sub(_mask, text), n
