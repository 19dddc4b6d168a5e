"""A generated day file with card numbers (sim.generator, cards=True) imports through the real importer with a card
token on every card payment, and the card number itself is never stored (issue 22 item 7: the demo's files)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, select

from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.demo import to_new_merchant
from settleguard.imports.card_token import card_token, token_key
from settleguard.imports.transactions import import_transactions
from settleguard.merchants import repository as merchants_repo
from settleguard.settlement.model import CutOffs
from settleguard.sim import risk_plants
from settleguard.sim.generator import CARD_COLUMN, generate_merchants, write_transactions_csv

DAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)
CUT = CutOffs(timezone="Asia/Shanghai")


def _import(engine: Engine, vault: Vault, tmp_path: Path) -> tuple[dict[str, str | None], dict[str, str]]:
    """(external_ref -> card number in the file, external_ref -> the stored token) of a planted day of 40 merchants."""
    sims = generate_merchants(40, seed=5)
    with engine.begin() as conn:
        merchants_repo.add_merchants(conn, [to_new_merchant(m) for m in sims], vault, NOW)
    plan = risk_plants.plan(sims, [DAY], seed=5)
    table = risk_plants.day_table(plan, sims, DAY, 5, "Asia/Shanghai")
    path = tmp_path / "day.csv"
    write_transactions_csv(table, path, encoding="gbk")
    assert path.read_text(encoding="gbk").splitlines()[0].endswith(f",amount_fen,{CARD_COLUMN}")
    key = token_key(vault)
    res = import_transactions(engine, path, cutoffs=CUT, now=NOW, card_key=lambda: key)
    assert res.rows == table.num_rows
    pans = dict(zip(table["external_ref"].to_pylist(), table[CARD_COLUMN].to_pylist(), strict=True))
    with engine.connect() as conn:
        tokens = {r.external_ref: r.card_token for r in conn.execute(
            select(t.transactions.c.external_ref, t.transactions.c.card_token))}
    assert set(tokens) == set(pans)
    for ref, pan in pans.items():
        assert tokens[ref] == (card_token(pan, key) if pan else None), ref
    return pans, tokens


def test_a_generated_file_imports_with_a_card_token_for_every_card_payment(engine: Engine, vault: Vault,
                                                                          tmp_path: Path) -> None:
    pans, tokens = _import(engine, vault, tmp_path)
    assert sum(1 for p in pans.values() if p) > 100
    assert sum(1 for v in tokens.values() if v is None) == sum(1 for p in pans.values() if not p) > 0  # QR


def test_the_card_numbers_are_nowhere_in_the_database_file(sqlite_engine: Engine, sqlite_url: str, vault: Vault,
                                                          tmp_path: Path) -> None:
    pans, _ = _import(sqlite_engine, vault, tmp_path)
    sqlite_engine.dispose()  # the database file and any WAL left beside it, all read
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    data = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    planted = [p for p in pans.values() if p]
    assert len(planted) > 100
    found = [p for p in planted if p.encode() in data]
    assert found == []
    assert (tmp_path / "day.csv").read_bytes().count(planted[0].encode()) >= 1  # the file itself does carry them
