"""pain.002 statuses applied in bulk (set-based SQL, payouts/report_repository.py) leave exactly what
applying them one by one through apply_answers leaves: payouts, events, attempts, ledger entries,
alerts, merchant notices and the import summary — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from payout_helpers import SEND_AT, VALUE_DAY, make_payouts
from settleguard.cards.vault import Vault
from settleguard.cases.service import SystemCases
from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount
from settleguard.db import tables as t
from settleguard.db.engine import open_engine
from settleguard.ledger import repository as ledger_repo
from settleguard.payouts import files
from settleguard.payouts import report_repository as report_repo
from unit.channels.samples import Pmt, Tx, pain002

CASES = SystemCases("Asia/Shanghai")  # cases opened by an import, in the business time zone (as the CLI does)

NOW = SEND_AT.astimezone(UTC)
PLATFORM = DebtorAccount("某某收单有限公司备付金户", "110060123456789", Agent(cnaps="102100099996", name="中国工商银行"))


@pytest.fixture
def second_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    schema = f"sgtest_{uuid.uuid4().hex[:12]}"
    url = make_url(db_url)
    base = url.set(query={k: v for k, v in url.query.items() if k != "options"})
    admin = create_engine(base)
    with admin.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    with admin.begin() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def reports(keys: list[str], pmt_id: str, message_id: str) -> tuple[str, str]:
    k = keys
    first = pain002([Pmt(pmt_id, txs=[
        Tx(k[0], "ACSC", amount="1000.00"), Tx(k[1], "ACSP"), Tx(k[2], "ACSP"),
        Tx(k[3], "RJCT", code="AC04", info=["账户已销户"]), Tx(k[4], "RJCT", code="AM04", info=["余额不足"]),
        Tx(k[5], "RJCT", code="NARR", info=["银行系统繁忙，请稍后重试"]),
        Tx(k[6], "RJCT", code="NARR", info=["交易被风控拦截"]), Tx(k[0], "RJCT", code="AC01"),  # a second mention
        Tx("SG20991231M999999", "ACSC"), Tx(k[8], "ACSC"), Tx(k[9], "RJCT", code="AC06", info=["账户已冻结"]),
        Tx(k[11], "ACTC"),
    ])], group_status="PART", original_message=message_id)
    second = pain002([Pmt(pmt_id, txs=[
        Tx(k[1], "ACSC"), Tx(k[2], "PDNG"), Tx(k[0], "RJCT", code="AC04"),  # paid, now "rejected": a conflict
        Tx(k[3], "ACSC"), Tx(k[10], "ACSC"), Tx(k[11], "ACSC"), Tx(k[8], "ACSC"),  # k8: already paid, agrees
    ])], group_status="PART", original_message=message_id)
    return first, second


def run(url: str, vault: Vault, tmp_path: Path, name: str) -> tuple[Any, ...]:
    engine = open_engine(url)
    (tmp_path / name).mkdir()
    try:
        ds = make_payouts(engine, vault, tmp_path / name, [100_000 + 1_000 * i for i in range(12)])
        cfg = BatchConfig(initiating_party="某某收单有限公司", debtor=PLATFORM)
        res = files.export_pain001(engine, vault, cfg, tmp_path / name / "batch.xml", as_of=VALUE_DAY, now=NOW)
        a = t.payout_attempts
        with engine.connect() as conn:
            (ref,) = {r for (r,) in conn.execute(select(a.c.batch_ref).where(a.c.batch_ref.is_not(None)))}
        first, second = reports([d.key for d in ds], ref.split("|", 1)[1], res.message_id)
        summaries = []
        for i, body in enumerate((first, second)):
            path = tmp_path / name / f"report{i}.xml"
            path.write_text(body, encoding="utf-8")
            s = files.import_report(engine, path, now=NOW + timedelta(hours=3 + i), cases=CASES)
            summaries.append((s.statuses, s.applied, s.ignored, s.conflicts, s.send.succeeded, s.send.succeeded_fen,
                              s.send.held, s.send.held_fen, s.send.unknown, s.send.retry_scheduled,
                              s.send.needs_review, dict(s.send.reasons), dict(s.send.categories)))
        return (summaries, *state(engine))
    finally:
        engine.dispose()


def state(engine: Any) -> tuple[Any, ...]:
    p, ev, a, e, lp, al = (t.payouts, t.payout_events, t.payout_attempts, t.ledger_entries, t.ledger_postings,
                           t.ops_alerts)
    with engine.connect() as conn:
        assert ledger_repo.check(conn) == []
        payouts = [tuple(r) for r in conn.execute(select(p).order_by(p.c.id))]
        events = [tuple(r) for r in conn.execute(select(ev.c.payout_id, ev.c.from_status, ev.c.to_status, ev.c.reason,
                                                        ev.c.created_at).order_by(ev.c.payout_id, ev.c.id))]
        attempts = [tuple(r) for r in conn.execute(select(*[c for c in a.c if c.name != "id"])
                                                   .order_by(a.c.payout_id, a.c.attempt_no))]
        postings: dict[int, list[tuple[Any, ...]]] = {}
        for eid, acct, mid, amt in conn.execute(select(lp.c.entry_id, lp.c.account, lp.c.merchant_id, lp.c.amount_fen)):
            postings.setdefault(eid, []).append((acct, mid, amt))
        entries = [(pid, kind, mid, memo, created, sorted(postings[eid])) for eid, pid, kind, mid, memo, created
                   in conn.execute(select(e.c.id, e.c.payout_id, e.c.kind, e.c.merchant_id, e.c.memo, e.c.created_at)
                                   .order_by(e.c.payout_id, e.c.id))]
        alerts = sorted(tuple(r) for r in conn.execute(select(al.c.kind, al.c.dedupe_key, al.c.message)))
        n = t.notifications
        # the two databases' merchants differ in name, number and card (factories): the rest must match
        own = {"card_masked", "merchant_no", "merchant_name", "zh", "en"}
        notices = sorted((mid, kind, key, json.dumps({k: v for k, v in payload.items() if k not in own},
                                                     sort_keys=True, ensure_ascii=False))
                         for mid, kind, key, payload in conn.execute(
                             select(n.c.merchant_id, n.c.kind, n.c.dedupe_key, n.c.payload)))
    return payouts, events, attempts, entries, alerts, notices


def test_bulk_and_one_by_one_leave_the_same_database(db_url: str, second_url: str, vault: Vault, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fast_counts: list[int] = []
    apply_fast = report_repo.apply_fast

    def counting(*args: Any, **kwargs: Any) -> list[report_repo.Applied]:
        done = apply_fast(*args, **kwargs)
        fast_counts.append(sum(d.count for d in done))
        return done

    monkeypatch.setattr(report_repo, "apply_fast", counting)
    bulk = run(db_url, vault, tmp_path, "bulk")
    assert sum(fast_counts) >= 8  # the bulk path did apply most answers

    kind = files._BulkStatuses._kind

    def never_fast(self: files._BulkStatuses, st: Any, sig: Any) -> int:
        kid = kind(self, st, sig)
        self.fast.pop(kid, None)
        return kid

    monkeypatch.setattr(files._BulkStatuses, "_kind", never_fast)
    fast_counts.clear()
    one_by_one = run(second_url, vault, tmp_path, "one_by_one")
    assert sum(fast_counts) == 0

    names = ["summaries", "payouts", "events", "attempts", "ledger entries", "alerts", "merchant notices"]
    for name, got, want in zip(names, bulk, one_by_one, strict=True):
        assert got == want, name
    summaries = bulk[0]
    assert summaries[0][:4] == (12, 10, 2, 0)  # the unknown key and the second mention are ignored
    assert summaries[1][3] == 2  # k0 paid then "rejected", k3 held then "paid": alerts for a person
    statuses = [row[7] for row in bulk[1]]
    assert statuses.count("succeeded") == 5
    assert statuses.count("held") == 3
    assert statuses.count("retry_scheduled") == 2
    assert "result_unknown" in statuses
    assert len(bulk[6]) == 3  # one notice per held payout (notify.outbox)
