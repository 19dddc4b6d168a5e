"""Build a case's evidence bundle (证据包) and write it as a zip; verify a zip against its manifest.

Bundle layout (docs/cases.md), every text file UTF-8 (CSV files with a BOM, headers "中文 english", amounts
in 元, local times with their offset, merchant and terminal numbers: evidence/columns.py), names in sorted
order inside the zip:

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
sorted names. The pieces every bundle shares (CSV/JSON text, the guard, the manifest, the zip) are in
evidence/pack.py; a payout's bundle is built by evidence/payout.py. :func:`verify` checks either kind.
"""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from settleguard.cases import model as cm
from settleguard.cases import repository as case_repo
from settleguard.cases.service import failure_diagnosis
from settleguard.evidence import columns as cols
from settleguard.evidence import repository as repo
from settleguard.evidence.model import MANIFEST, Report, check, files_phrase
from settleguard.evidence.pack import (
    GENERATOR,
    Bundle,
    attempt_diagnosis,
    seal,
    to_json,
    to_table,
    write_zip,
    zip_bytes,
)
from settleguard.evidence.summary import render
from settleguard.money import format_yuan

__all__ = ["GENERATOR", "Bundle", "NoSuchCase", "build", "export", "verify", "write_zip", "zip_bytes"]


class NoSuchCase(LookupError):
    pass


def build(engine: Engine, case_id: int, now: datetime, *, tz: str) -> Bundle:
    """Collect everything about case ``case_id`` (raises NoSuchCase); the CSVs' times in zone ``tz``."""
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
        terminals = repo.terminal_numbers(conn, mid)
    cells = cols.Cells(ZoneInfo(tz), {mid: str(merchant["merchant_no"])}, terminals)
    for p in linked:
        p["amount_yuan"] = format_yuan(int(p["amount_fen"]))
        p["diagnosis_zh"] = failure_diagnosis(p, "zh")
        p["diagnosis_en"] = failure_diagnosis(p, "en")
    bad = [a for a in attempts if a["outcome"] in ("failed", "unknown")]
    answers = [{**{k: a[k] for k in ("payout_id", "attempt_no", "kind", "idempotency_key", "channel",
                                     "requested_at", "responded_at", "outcome", "code", "message",
                                     "raw_response", "category", "rule_id", "decision")},
                "diagnosis_zh": attempt_diagnosis(a, "zh"), "diagnosis_en": attempt_diagnosis(a, "en")} for a in bad]
    texts: dict[str, str] = {
        "case.json": to_json({"case": case, "merchant": merchant, "payouts": linked, "contacts": contacts,
                              "notes": notes}),
        "bank_responses.json": to_json(answers),
        "attempts.csv": to_table(attempts, cols.ATTEMPTS, cells),
        "attempts.json": to_json(attempts),
        "payouts.csv": to_table(payouts, cols.PAYOUTS, cells),
        "payout_events.csv": to_table(events, cols.PAYOUT_EVENTS, cells),
        "settlements.csv": to_table(settlements, cols.SETTLEMENTS, cells),
        "ledger_entries.csv": to_table(entries, cols.LEDGER_ENTRIES, cells),
        "ledger_postings.csv": to_table(postings, cols.LEDGER_POSTINGS, cells),
        "contacts.csv": to_table(contacts, cols.CONTACTS, cells),
        "notes.csv": to_table(notes, cols.NOTES, cells),
        **{f"cards/{name}.csv": to_table(rows, cols.CARD_FILES[name], cells) for name, rows in cards.items()},
        **{f"transactions/{d.isoformat()}.csv": to_table(rows, cols.TRANSACTIONS, cells) for d, rows in txns.items()},
    }
    names = sorted([*texts, "summary.html", MANIFEST])
    texts["summary.html"] = render({
        "case": case, "merchant": merchant, "payouts": linked, "attempts": attempts, "notes": notes,
        "contacts": [{**c, "party_zh": cm.PARTY_ZH.get(cm.Party(c["party"]), ""),
                      "method_zh": cm.METHOD_ZH.get(cm.Method(c["method"]), "")} for c in contacts],
        "accounts": cards["settlement_accounts"], "files": names, "files_said": files_phrase(len(names) - 1), "created_at": now, "tz": cells.tz,
        "generator": GENERATOR, "category_zh": cm.CATEGORY_ZH.get(str(case["category"]), ""),
        "status_zh": cm.STATUS_ZH[cm.CaseStatus(case["status"])],
    })
    return seal(texts, now=now, case_id=case_id)


def export(engine: Engine, case_id: int, out: Path, now: datetime, *, tz: str) -> Bundle:
    bundle = build(engine, case_id, now, tz=tz)
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
