"""The bundle's manifest and its check, card-number redaction, and the masking of a notice's target. Pure
(no I/O).

``manifest.json`` = {"format": 1, "case_id" (a case's bundle) or "payout_id" (a payout's bundle),
"created_at", "generator", "files": [{"name", "sha256", "size"}, ...]} with files in name order; the
manifest does not list itself, and a bundle's file count (:func:`files_phrase`, said alike by export and
verify) is the files it lists.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from settleguard.payouts.model import STATUS_ZH

MANIFEST = "manifest.json"
FORMAT = 1
_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
SUBJECTS = ("case_id", "payout_id")  # what a bundle is about: exactly one of these is in its manifest
# payout statuses in words (payouts.model.STATUS_ZH, as the CLI, console and portal show them)
PAYOUT_STATUS_ZH: Mapping[str, str] = {str(s): zh for s, zh in STATUS_ZH.items()}


def files_phrase(n: int) -> str:
    """How many files a bundle holds, in words, as export and verify both say it: the files the manifest lists,
    not counting manifest.json itself (a bundle's zip holds n + 1 members)."""
    return f"{n} 个文件（另有清单 manifest.json）{n} files plus manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(files: Mapping[str, bytes], *, created_at: str, generator: str, case_id: int | None = None,
                   payout_id: int | None = None) -> bytes:
    """The manifest of a case's bundle (``case_id``) or of a payout's (``payout_id``): exactly one of them."""
    if MANIFEST in files:
        raise ValueError("the manifest cannot list itself")
    if (case_id is None) == (payout_id is None):
        raise ValueError("a bundle is about one case or one payout")
    subject = {"case_id": case_id} if case_id is not None else {"payout_id": payout_id}
    doc = {"format": FORMAT, **subject, "created_at": created_at, "generator": generator,
           "files": [{"name": n, "sha256": sha256(files[n]), "size": len(files[n])} for n in sorted(files)]}
    return (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


@dataclass
class Report:
    """What :func:`check` found; ``ok`` when nothing is missing, extra, changed or unreadable."""

    case_id: int | None = None
    payout_id: int | None = None
    listed: int = 0  # files the manifest lists (manifest.json itself not counted)
    checked: int = 0  # of those, present and re-hashed
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # unreadable members or manifest

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.errors)

    @property
    def subject_zh_en(self) -> str:
        """What the bundle is about, in words: "工单 case 3" or "出款 payout 7"."""
        if self.payout_id is not None:
            return f"出款 payout {self.payout_id}"
        return f"工单 case {self.case_id}"

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "case_id": self.case_id, "payout_id": self.payout_id, "listed": self.listed,
                "checked": self.checked,
                "missing": self.missing, "extra": self.extra, "changed": self.changed, "errors": self.errors}


def check(manifest: bytes, names: list[str], read: Callable[[str], bytes]) -> Report:
    """Recompute every listed file's hash and size. ``names`` are the members present; ``read`` reads one
    and raises (any exception) when it cannot be read, which counts the member as changed."""
    rep = Report()
    try:
        doc = json.loads(manifest)
        listed = {str(f["name"]): (str(f["sha256"]), int(f["size"])) for f in doc["files"]}
        about = [k for k in SUBJECTS if k in doc]
        if len(about) != 1:
            raise KeyError("case_id or payout_id" if not about else "both case_id and payout_id")
        if about == ["case_id"]:
            rep.case_id = int(doc["case_id"])
        else:
            rep.payout_id = int(doc["payout_id"])
    except (ValueError, KeyError, TypeError) as exc:
        rep.errors.append(f"{MANIFEST}: {type(exc).__name__}: {exc}")
        return rep
    rep.listed = len(listed)
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


def safe_target(channel: str, target: str) -> str:
    """A notice's delivery target without what could be a secret: a webhook URL loses its user, password,
    query and fragment (``https://h.example/hook``); email addresses and (already masked) phones stay."""
    if channel != "webhook":
        return target
    try:
        parts = urlsplit(target)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
