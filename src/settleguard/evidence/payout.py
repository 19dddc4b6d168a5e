"""Build one payout's evidence bundle (出款凭证): the merchant's proof of what happened to a payment, as a zip
with the same manifest as a case's bundle (``payout_id`` instead of ``case_id``), so ``settleguard evidence
verify`` checks both (docs/payouts.md).

Bundle layout, every text file UTF-8 (CSV files with a BOM, headers "中文 english", amounts in 元, local times
with their offset, merchant and terminal numbers: evidence/columns.py), names in sorted order inside the zip:

    manifest.json                 payout id, created time, generator; SHA-256 and size of every other file
    summary.html                  the payout on one page, Chinese first (evidence/summary.py PAYOUT_TEMPLATE)
    payout.json                   the payout, its merchant, parts, settlement, latest diagnosis (zh, en)
    payout_events.csv             status changes of the payout and of its parts
    attempts.csv / attempts.json  every attempt: bank code, message, raw answer (json), diagnosis
    parts.csv                     the parts of a split payout (only when it was split)
    settlement.csv                the settlement row the payout pays
    transactions/<cycle date>.csv the merchant's transactions of that cycle
    ledger_entries.csv, ledger_postings.csv   the entries of the payout and its parts
    cards.csv                     the settlement card(s) the payout was held on or sent to (masked only)
    notices.json, notices.csv     notices about it (text and facts) and every delivery try (targets
                                  without secrets: a webhook URL without user, password or query)

No full card number is ever read (accounts without their cipher); the same second guard as a case's
bundle masks any card-number-like digit run (evidence/pack.py seal). Deterministic for a given database
state and ``now``. Only this merchant's data: no other merchant's posting, not a settlement run's totals.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from settleguard.diagnosis.model import CATEGORY_ZH
from settleguard.evidence import columns as cols
from settleguard.evidence import repository as repo
from settleguard.evidence.model import MANIFEST, PAYOUT_STATUS_ZH, files_phrase, safe_target
from settleguard.evidence.pack import (
    GENERATOR,
    Bundle,
    attempt_diagnosis,
    seal,
    to_json,
    to_table,
    write_zip,
)
from settleguard.evidence.summary import render_payout
from settleguard.money import format_yuan

BAD = ("failed", "unknown")  # attempt outcomes that are diagnosed


class NoSuchPayout(LookupError):
    pass


def _meaning(d: dict[str, Any] | None) -> str:
    return "" if d is None else str(d["meaning"])


def build_payout(engine: Engine, payout_id: int, now: datetime, *, tz: str) -> Bundle:
    """Collect everything about payout ``payout_id`` (raises NoSuchPayout); the CSVs' times in zone ``tz``."""
    with engine.connect() as conn:
        found = repo.payouts(conn, [payout_id])
        if not found:
            raise NoSuchPayout(payout_id)
        payout = found[0]
        mid = int(payout["merchant_id"])
        parts = repo.parts(conn, payout_id)
        ids = [payout_id, *(int(p["id"]) for p in parts)]
        attempts = repo.attempts(conn, ids)
        events = repo.events(conn, ids)
        cycle = payout["cycle_date"]
        settlements = [s for s in repo.settlements(conn, mid, [cycle])
                       if payout["settlement_id"] is None or s["id"] == payout["settlement_id"]]
        txns = repo.transactions(conn, mid, cycle)
        entries, postings = repo.ledger(conn, mid, ids, [])
        used = {int(a["account_id"]) for a in attempts if a["account_id"] is not None}
        cards = repo.accounts(conn, mid, sorted(used | {int(x["account_id"]) for x in [payout, *parts]
                                                        if x["account_id"] is not None}))
        notices = repo.notices(conn, mid, ids)
        log = repo.notice_log(conn, [int(n["id"]) for n in notices]) if notices else []
        merchant = repo.merchant(conn, mid)
        terminals = repo.terminal_numbers(conn, mid)
    cells = cols.Cells(ZoneInfo(tz), {mid: str(merchant["merchant_no"])}, terminals)
    masks = {int(c["id"]): str(c["pan_masked"]) for c in cards}
    for a in attempts:
        bad = a["outcome"] in BAD
        a["diagnosis_zh"] = attempt_diagnosis(a, "zh") if bad else None
        a["diagnosis_en"] = attempt_diagnosis(a, "en") if bad else None
    for x in log:  # a webhook's URL may carry a token: not in the target, nor in an error message quoting it
        raw, x["target"] = str(x["target"]), safe_target(str(x["channel"]), str(x["target"]))
        if x["detail"] and raw != x["target"]:
            x["detail"] = str(x["detail"]).replace(raw, x["target"])
    own_bad = [a for a in attempts if a["payout_id"] == payout_id and a["outcome"] in BAD]
    last_bad = own_bad[-1] if own_bad else None
    diagnosis_zh = None if last_bad is None else last_bad["diagnosis_zh"]
    diagnosis_en = None if last_bad is None else last_bad["diagnosis_en"]
    settlement = settlements[0] if settlements else None
    texts: dict[str, str] = {
        "payout.json": to_json({"payout": {**payout, "amount_yuan": format_yuan(int(payout["amount_fen"]))},
                                "merchant": merchant, "parts": parts, "settlement": settlement,
                                "diagnosis_zh": diagnosis_zh, "diagnosis_en": diagnosis_en}),
        "payout_events.csv": to_table(events, cols.PAYOUT_EVENTS, cells),
        "attempts.csv": to_table([{**a, "diagnosis_category": (a["diagnosis_en"] or {}).get("category"),
                                   "diagnosis_zh": _meaning(a["diagnosis_zh"]),
                                   "diagnosis_en": _meaning(a["diagnosis_en"])} for a in attempts],
                                 [*cols.ATTEMPTS, *cols.ATTEMPT_DIAGNOSES], cells),
        "attempts.json": to_json(attempts),
        "settlement.csv": to_table(settlements, cols.SETTLEMENTS, cells),
        f"transactions/{cycle.isoformat()}.csv": to_table(txns, cols.TRANSACTIONS, cells),
        "ledger_entries.csv": to_table(entries, cols.LEDGER_ENTRIES, cells),
        "ledger_postings.csv": to_table(postings, cols.LEDGER_POSTINGS, cells),
        "cards.csv": to_table(cards, cols.CARDS, cells),
        "notices.json": to_json([{**n, "deliveries": [x for x in log if x["notification_id"] == n["id"]]}
                                 for n in notices]),
        "notices.csv": to_table(log, cols.NOTICE_LOG, cells),
    }
    if parts:
        texts["parts.csv"] = to_table(parts, cols.PAYOUTS, cells)
    names = sorted([*texts, "summary.html", MANIFEST])
    category = None if diagnosis_en is None else str(diagnosis_en["category"])
    texts["summary.html"] = render_payout({
        "payout": payout, "merchant": merchant, "amount_yuan": format_yuan(int(payout["amount_fen"])),
        "status_zh": PAYOUT_STATUS_ZH.get(str(payout["status"]), ""), "cards": cards, "last_bad": last_bad,
        "settlement": settlement,
        "settlement_net_yuan": "" if settlement is None else format_yuan(int(settlement["net_fen"])),
        "diagnosis_zh": diagnosis_zh, "diagnosis_en": diagnosis_en,
        "category_zh": {str(k): v for k, v in CATEGORY_ZH.items()}.get(category or "", ""),
        "events": [{**e, "from_zh": PAYOUT_STATUS_ZH.get(str(e["from_status"]), ""),
                    "to_zh": PAYOUT_STATUS_ZH.get(str(e["to_status"]), "")} for e in events],
        "attempts": [{**a, "card": masks.get(int(a["account_id"])) if a["account_id"] is not None else None}
                     for a in attempts],
        "parts": [{**p, "amount_yuan": format_yuan(int(p["amount_fen"])),
                   "status_zh": PAYOUT_STATUS_ZH.get(str(p["status"]), "")} for p in parts],
        "notices": notices, "log": log, "files": names, "files_said": files_phrase(len(names) - 1), "created_at": now, "tz": cells.tz, "generator": GENERATOR,
    })
    return seal(texts, now=now, payout_id=payout_id)


def export_payout(engine: Engine, payout_id: int, out: Path, now: datetime, *,
                  tz: str) -> Bundle:
    """Build the bundle and write it to ``out`` (nothing is written for an unknown payout)."""
    bundle = build_payout(engine, payout_id, now, tz=tz)
    write_zip(bundle, out)
    return bundle
