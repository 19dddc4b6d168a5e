"""Build a case's evidence bundle (证据包) and write it as a zip; verify a zip against its manifest.

Bundle layout (docs/cases.md), every text file UTF-8, names in sorted order inside the zip:

    manifest.json                 case id, created time, generator; SHA-256 and size of every other file
    summary.html                  the case on one page, Chinese first (evidence/summary.py)
    case.json                     the case, merchant, linked payouts with diagnoses, contacts, notes
    bank_responses.json           every failed or unclear answer: code, message, raw response, diagnosis
    attempts.csv / attempts.json  every attempt of every linked payout
    payouts.csv, payout_events.csv, settlements.csv
    transactions/<cycle date>.csv the merchant's transactions of each linked payout's settled cycle
    ledger_entries.csv, ledger_postings.csv
    cards/settlement_accounts.csv, cards/card_events.csv, cards/card_verifications.csv (masked only)
    contacts.csv, notes.csv

No full card number is ever read (accounts are read without their cipher); as a second guard every file is
passed through :func:`settleguard.evidence.model.redact_pans` (a 13-19 digit run with a known BIN that passes
Luhn is masked). The zip is deterministic for a given database state and ``now``: fixed member times,
sorted names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from settleguard import __version__
from settleguard.cards.bins import load_packaged_bins, luhn_valid
from settleguard.cases import model as cm
from settleguard.cases import repository as case_repo
from settleguard.cases.service import failure_diagnosis
from settleguard.evidence import repository as repo
from settleguard.evidence.model import MANIFEST, Report, build_manifest, check, redact_pans
from settleguard.evidence.summary import render
from settleguard.money import format_yuan

GENERATOR = f"settleguard {__version__}"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class NoSuchCase(LookupError):
    pass


@dataclass(frozen=True)
class Bundle:
    case_id: int
    files: dict[str, bytes]  # without the manifest
    manifest: bytes
    redacted: int  # card-number-like digit runs masked by the second guard


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


def _cell(v: Any) -> str:
    v = _plain(v)
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, sort_keys=True)
    return str(v)


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    cols = list(columns or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in cols])
    return buf.getvalue()


def _json(obj: Any) -> str:
    return json.dumps(_plain(obj), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _is_card_number(digits: str) -> bool:
    return luhn_valid(digits) and load_packaged_bins().lookup(digits) is not None


def build(engine: Engine, case_id: int, now: datetime) -> Bundle:
    """Collect everything about case ``case_id`` (raises NoSuchCase)."""
    with engine.connect() as conn:
        case = case_repo.get(conn, case_id)
        if case is None:
            raise NoSuchCase(case_id)
        mid = int(case["merchant_id"])
        linked = case_repo.case_payouts(conn, case_id)
        contacts = case_repo.contacts(conn, case_id)
        notes = case_repo.notes(conn, case_id)
        ids = [int(p["id"]) for p in linked]
        payouts = repo.payouts(conn, ids)
        attempts = repo.attempts(conn, ids)
        events = repo.events(conn, ids)
        cycles = sorted({p["cycle_date"] for p in payouts})
        settlements = repo.settlements(conn, mid, cycles)
        txns = {d: repo.transactions(conn, mid, d) for d in cycles}
        entries, postings = repo.ledger(conn, mid, ids, sorted({int(s["run_id"]) for s in settlements}))
        cards = repo.card_history(conn, mid)
        merchant = repo.merchant(conn, mid)
    for p in linked:
        p["amount_yuan"] = format_yuan(int(p["amount_fen"]))
        p["diagnosis_zh"] = failure_diagnosis(p, "zh")
        p["diagnosis_en"] = failure_diagnosis(p, "en")
    bad = [a for a in attempts if a["outcome"] in ("failed", "unknown")]
    answers = [{**{k: a[k] for k in ("payout_id", "attempt_no", "kind", "idempotency_key", "channel",
                                     "requested_at", "responded_at", "outcome", "code", "message",
                                     "raw_response", "category", "rule_id", "decision")},
                "diagnosis_zh": failure_diagnosis({"fail_code": a["code"], "fail_message": a["message"],
                                                   "fail_rule": a["rule_id"]}, "zh"),
                "diagnosis_en": failure_diagnosis({"fail_code": a["code"], "fail_message": a["message"],
                                                   "fail_rule": a["rule_id"]}, "en")} for a in bad]
    texts: dict[str, str] = {
        "case.json": _json({"case": case, "merchant": merchant, "payouts": linked, "contacts": contacts,
                            "notes": notes}),
        "bank_responses.json": _json(answers),
        "attempts.csv": _csv(attempts, [c.name for c in _attempt_columns()]),
        "attempts.json": _json(attempts),
        "payouts.csv": _csv(payouts),
        "payout_events.csv": _csv(events),
        "settlements.csv": _csv(settlements),
        "ledger_entries.csv": _csv(entries),
        "ledger_postings.csv": _csv(postings),
        "contacts.csv": _csv(contacts, ["id", "at", "party", "method", "contact_name", "summary", "recorded_by",
                                        "recorded_at"]),
        "notes.csv": _csv(notes, ["id", "created_at", "author", "body"]),
        **{f"cards/{name}.csv": _csv(rows) for name, rows in cards.items()},
        **{f"transactions/{d.isoformat()}.csv": _csv(rows, [c.name for c in _txn_columns()])
           for d, rows in txns.items()},
    }
    names = sorted([*texts, "summary.html", MANIFEST])
    texts["summary.html"] = render({
        "case": case, "merchant": merchant, "payouts": linked, "attempts": attempts, "notes": notes,
        "contacts": [{**c, "party_zh": cm.PARTY_ZH.get(cm.Party(c["party"]), ""),
                      "method_zh": cm.METHOD_ZH.get(cm.Method(c["method"]), "")} for c in contacts],
        "accounts": cards["settlement_accounts"], "files": names, "created_at": now.isoformat(),
        "generator": GENERATOR, "category_zh": cm.CATEGORY_ZH.get(str(case["category"]), ""),
        "status_zh": cm.STATUS_ZH[cm.CaseStatus(case["status"])],
    })
    files: dict[str, bytes] = {}
    redacted = 0
    for name in sorted(texts):
        clean, n = redact_pans(texts[name], _is_card_number)
        redacted += n
        files[name] = clean.encode("utf-8")
    manifest = build_manifest(files, case_id=case_id, created_at=now.isoformat(), generator=GENERATOR)
    return Bundle(case_id, files, manifest, redacted)


def _attempt_columns() -> list[Any]:
    from settleguard.db.tables import payout_attempts

    return list(payout_attempts.columns)


def _txn_columns() -> list[Any]:
    from settleguard.db.tables import transactions

    return list(transactions.columns)


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


def export(engine: Engine, case_id: int, out: Path, now: datetime) -> Bundle:
    bundle = build(engine, case_id, now)
    write_zip(bundle, out)
    return bundle


def verify(path: Path) -> Report:
    """Check a bundle: every file the manifest lists is present with its SHA-256 and size, nothing else is."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if MANIFEST not in names:
                rep = Report()
                rep.errors.append(f"{MANIFEST} missing")
                rep.extra = sorted(n for n in names if n != MANIFEST)
                return rep
            try:
                manifest = z.read(MANIFEST)
            except Exception as exc:  # bad CRC, bad compressed data (zlib.error)
                rep = Report()
                rep.changed.append(MANIFEST)
                rep.errors.append(f"{MANIFEST}: {type(exc).__name__}: {exc}")
                return rep
            dupes = sorted({n for n in names if names.count(n) > 1})
            rep = check(manifest, names, z.read)
            rep.extra = sorted({*rep.extra, *dupes})
            return rep
    except (zipfile.BadZipFile, OSError) as exc:
        rep = Report()
        rep.errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
        return rep
