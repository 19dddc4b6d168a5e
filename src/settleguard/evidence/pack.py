"""What every evidence bundle shares (a case's, evidence/builder.py; a payout's, evidence/payout.py): rows as
CSV (:func:`to_table`: the columns of evidence/columns.py, zh/en headers, 元, local times, merchant and
terminal numbers) and JSON text, the card-number guard and the manifest over the files (:func:`seal`: CSV
files as UTF-8 with a BOM, so that Excel reads the Chinese), and the deterministic zip (sorted names, fixed
member times)."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from settleguard import __version__
from settleguard.cards.bins import load_packaged_bins, luhn_valid
from settleguard.cases.service import failure_diagnosis
from settleguard.evidence.columns import Cells, Col, headers
from settleguard.evidence.model import MANIFEST, build_manifest, redact_pans

GENERATOR = f"settleguard {__version__}"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """A sealed bundle about one case (``case_id``) or one payout (``payout_id``)."""

    case_id: int | None
    files: dict[str, bytes]  # without the manifest
    manifest: bytes
    redacted: int  # card-number-like digit runs masked by the second guard
    payout_id: int | None = None


def plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def to_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col], cells: Cells) -> str:
    """Rows as CSV text people read: a "中文 english" header per column, each value shown by ``cells``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers(columns))
    for r in rows:
        w.writerow([cells.show(c, r.get(c.key)) for c in columns])
    return buf.getvalue()


def encoding_of(name: str) -> str:
    """How a bundle's file is encoded: CSV as UTF-8 with a BOM (for Excel), everything else plain UTF-8."""
    return "utf-8-sig" if name.endswith(".csv") else "utf-8"


def to_json(obj: Any) -> str:
    return json.dumps(plain(obj), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def is_card_number(digits: str) -> bool:
    return luhn_valid(digits) and load_packaged_bins().lookup(digits) is not None


def attempt_diagnosis(attempt: Mapping[str, Any], lang: str) -> dict[str, Any] | None:
    """An attempt's answer diagnosed again (in ``lang``), as a case's linked payout's latest failure is; None
    when it carries no code nor message."""
    return failure_diagnosis({"fail_code": attempt["code"], "fail_message": attempt["message"],
                              "fail_rule": attempt["rule_id"]}, lang)


def seal(texts: Mapping[str, str], *, now: datetime, case_id: int | None = None,
         payout_id: int | None = None) -> Bundle:
    """Every text through the card-number guard (:func:`redact_pans`), as UTF-8 (a CSV file with a BOM: Excel
    reads a CSV without one in the system's ANSI code page and shows the Chinese as mojibake), and the
    manifest over them."""
    files: dict[str, bytes] = {}
    redacted = 0
    for name in sorted(texts):
        clean, n = redact_pans(texts[name], is_card_number)
        redacted += n
        files[name] = clean.encode(encoding_of(name))
    manifest = build_manifest(files, case_id=case_id, payout_id=payout_id, created_at=now.isoformat(),
                              generator=GENERATOR)
    return Bundle(case_id, files, manifest, redacted, payout_id)


def zip_bytes(bundle: Bundle) -> bytes:
    """The bundle as a zip (members in sorted order, fixed member times): what :func:`write_zip` writes."""
    members = {**bundle.files, MANIFEST: bundle.manifest}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, members[name])
    return buf.getvalue()


def write_zip(bundle: Bundle, out: Path) -> None:
    """Write the bundle to ``out`` atomically (a temporary file renamed into place)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(zip_bytes(bundle))
    os.replace(tmp, out)
