"""The payout list (payouts.repository.listing / count_listing, behind ``payouts list``, the API and the
console) against a plain reading of the table: every combination of filters, pages and offsets, on
SQLite and PostgreSQL. The statements are prebuilt with bound parameters, one per combination of
filters, so each combination is checked. The merchant search (issue 18: the console found only an exact
merchant number) keeps merchants whose number or name contains the text, in any case, with LIKE's
wildcards typed by a person matching only themselves."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from factories import make_merchants
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.payouts import repository as repo

AT = datetime(2026, 11, 20, 3, tzinfo=UTC)
STATUSES = ["succeeded", "held", "needs_review", "retry_scheduled", "created"]
CATEGORIES = [None, "card_info_error", "system_or_network_fault"]


def _seed(engine: Engine, vault: Vault) -> list[Any]:
    """Three merchants, 30 payouts in mixed statuses and categories, some with attempts (the latest
    attempt's key is the list's end_to_end_id)."""
    with engine.begin() as conn:
        merchants = make_merchants(conn, vault, 3)
        conn.execute(update(t.merchants).where(t.merchants.c.id == merchants[0].id)
                     .values(registered_name="Café Alpha 100%_店"))  # latin letters and LIKE's wildcards
        for i in range(30):
            m = merchants[i % 3]
            pid = conn.execute(insert(t.payouts).values(
                merchant_id=m.id, cycle_date=date(2026, 11, 20), value_date=date(2026, 11, 23),
                amount_fen=1_000 + i, status=STATUSES[i % 5], idempotency_key=f"SG20261120L{i:03d}",
                attempt_count=i % 3, category=CATEGORIES[i % 3], created_at=AT, updated_at=AT,
            )).inserted_primary_key[0]
            for n in range(1, i % 3 + 1):
                conn.execute(insert(t.payout_attempts).values(
                    payout_id=pid, attempt_no=n, kind="send", idempotency_key=f"SG20261120L{i:03d}R{n}",
                    channel="sim", amount_fen=1_000 + i, requested_at=AT))
    return merchants


def _reference(engine: Engine) -> list[dict[str, Any]]:
    p, m, a = t.payouts, t.merchants, t.payout_attempts
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(p.c.id, p.c.merchant_id, m.c.merchant_no, m.c.registered_name, p.c.status, p.c.category)
            .join(m, m.c.id == p.c.merchant_id).order_by(p.c.id))]
        keys = dict(conn.execute(select(a.c.payout_id, a.c.idempotency_key).order_by(a.c.id)).all())  # last wins
    for r in rows:
        r["end_to_end_id"] = keys.get(r["id"])
    return rows


def test_every_filter_combination_pages_through_exactly_the_matching_payouts(engine: Engine, vault: Vault) -> None:
    merchants = _seed(engine, vault)
    reference = _reference(engine)
    choices: dict[str, list[Any]] = {
        "status": [None, "", "held", "succeeded", "cancelled"],
        "merchant_no": [None, "", merchants[1].merchant_no, "NO-SUCH"],
        "category": [None, "", "card_info_error"],
        "merchant_id": [None, merchants[2].id],
        # part of a number (all three, one), of a name, another case, wildcards, none, blank
        "merchant_search": [None, "", "8981000", merchants[1].merchant_no[-3:], "小吃店", "café ALPHA", "100%_",
                            "%", "_店", " 1号 ", "NO-SUCH"],
    }
    combos = 0
    with engine.connect() as conn:
        for values in itertools.product(*choices.values()):
            f = dict(zip(choices, values, strict=True))
            want = [r for r in reference
                    if (not f["status"] or r["status"] == f["status"])
                    and (not f["merchant_no"] or r["merchant_no"] == f["merchant_no"])
                    and (not f["category"] or r["category"] == f["category"])
                    and (f["merchant_id"] is None or r["merchant_id"] == f["merchant_id"])
                    and _searched(r, f["merchant_search"])]
            assert repo.count_listing(conn, **f) == len(want), f
            for limit, offset in ((50, 0), (3, 0), (3, 3), (4, 7), (5, 40)):
                got = repo.listing(conn, limit=limit, offset=offset, **f)
                assert [(g["id"], g["end_to_end_id"]) for g in got] == [
                    (w["id"], w["end_to_end_id"]) for w in want[offset:offset + limit]], (f, limit, offset)
            if want:  # the CLI's keyset paging
                after = want[0]["id"]
                assert [g["id"] for g in repo.listing(conn, after_id=after, limit=50, **f)] == [
                    w["id"] for w in want if w["id"] > after]
            combos += 1
    assert combos == 5 * 4 * 3 * 2 * 11


def _searched(row: dict[str, Any], text: str | None) -> bool:
    """The plain reading of the merchant search: the trimmed text inside the number or the name, any case."""
    text = (text or "").strip().lower()
    return not text or text in row["merchant_no"].lower() or text in row["registered_name"].lower()


def test_the_merchant_search_matches_part_of_a_number_or_a_name(engine: Engine, vault: Vault) -> None:
    merchants = _seed(engine, vault)
    with engine.connect() as conn:
        def ids(text: str) -> set[int]:
            return {r["merchant_id"] for r in repo.listing(conn, merchant_search=text, limit=100)}

        assert ids(merchants[1].merchant_no[-6:]) == {merchants[1].id}  # "12" + serial: this one only
        assert ids("alpha") == {merchants[0].id}
        assert ids("%") == {merchants[0].id}  # only the name with a percent sign
        assert ids("测试小吃店") == {merchants[1].id, merchants[2].id}


def test_one_payout_is_the_list_row_and_unknown_ids_are_none(engine: Engine, vault: Vault) -> None:
    _seed(engine, vault)
    reference = {r["id"]: r for r in _reference(engine)}
    with engine.connect() as conn:
        for pid, want in reference.items():
            got = repo.one(conn, pid)
            assert got is not None
            assert (got["id"], got["merchant_no"], got["status"], got["end_to_end_id"]) == (
                pid, want["merchant_no"], want["status"], want["end_to_end_id"])
            assert repo.owner(conn, pid) == want["merchant_id"]
        missing = max(reference) + 1
        assert repo.one(conn, missing) is None
        assert repo.owner(conn, missing) is None
        assert repo.one(conn, 0) is None
