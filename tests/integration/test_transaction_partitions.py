"""transactions partitioned by business day on PostgreSQL (migration 0025, db/partitions.py, ops/partitions.py):
the migration converts a populated table and back without losing a row, the import creates the partitions of
its days (two imports at once too), a settle query of one day reads one partition, and the archive detaches
only settled and reconciled days (audited) and attaches them back. On SQLite the commands say it is a
PostgreSQL feature."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Engine, event, insert, select, text
from typer.testing import CliRunner

from conftest import NOW
from factories import Merchant, Txn, import_rows, make_merchants, ref, write_csv
from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import partitions as parts
from settleguard.db import tables as t
from settleguard.db.engine import alembic_config, create, open_engine
from settleguard.imports.transactions import ImportRejected, import_transactions
from settleguard.settlement.engine import settle
from settleguard.settlement.model import CardType, CutOffs, TxnKind

SHANGHAI = ZoneInfo("Asia/Shanghai")
D1, D2, D3 = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)
CUT = CutOffs(timezone="Asia/Shanghai")


def _at(day: date, hh: int) -> datetime:
    return datetime.combine(day, time(hh), SHANGHAI)


def _sales(m: Merchant, day: date, n: int, base: int = 1_000) -> list[Txn]:
    return [Txn(ref(), m.merchant_no, m.terminal_no, _at(day, 9 + i % 12), TxnKind.SALE, CardType.DEBIT, base + i)
            for i in range(n)]


@pytest.fixture
def pg(pg_url: str) -> Engine:
    eng = open_engine(pg_url)
    yield eng
    eng.dispose()


def _names(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        return {p.name: p.attached for p in parts.listing(conn)}


def _totals(engine: Engine, day: date | None = None) -> tuple[int, int, int]:
    where = "" if day is None else f"WHERE cycle_date = DATE '{day}'"
    with engine.connect() as conn:
        r = conn.execute(text(f"SELECT count(*), coalesce(sum(amount_fen), 0), coalesce(sum(fee_fen), 0) "
                              f"FROM transactions {where}")).one()
    return int(r[0]), int(r[1]), int(r[2])


# --- the migration --------------------------------------------------------------------------------------------

def test_the_migration_converts_a_populated_table_and_back_without_losing_a_row(pg_url: str) -> None:
    engine = create(pg_url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0024")
    rows = [{"cycle_date": D1 + timedelta(days=i % 3), "merchant_id": 1 + i % 7, "external_ref": f"R{i:06d}",
             "terminal_id": None, "kind": 1, "card_type": 1, "amount_fen": 100 + i * 7, "fee_fen": i % 5,
             "occurred_at": datetime(2026, 11, 16, 2, tzinfo=UTC) + timedelta(minutes=i), "import_id": 1,
             "stan": f"{i:06d}", "rrn": None, "auth_code": None, "card_token": None} for i in range(3_000)]
    with engine.begin() as conn:
        conn.execute(insert(t.transactions), rows)
    before = _totals(engine), [_totals(engine, d) for d in (D1, D2, D3)]
    with engine.connect() as conn:
        assert not parts.is_partitioned(conn)

    command.upgrade(cfg, "0025")

    with engine.connect() as conn:
        assert parts.is_partitioned(conn)
    assert _names(engine) == {parts.partition_name(d): True for d in (D1, D2, D3)} | {parts.DEFAULT: True}
    assert (_totals(engine), [_totals(engine, d) for d in (D1, D2, D3)]) == before
    with engine.connect() as conn:
        assert parts.exact_rows(conn, parts.DEFAULT) == 0
        assert parts.exact_rows(conn, parts.partition_name(D2)) == 1_000
        with pytest.raises(Exception, match="duplicate key|unique"):  # the primary key holds across the parent
            conn.execute(insert(t.transactions), rows[:1])

    command.downgrade(cfg, "0024")

    with engine.connect() as conn:
        assert not parts.is_partitioned(conn)
        assert conn.execute(text("SELECT to_regclass('transactions_default')")).scalar() is None
    assert (_totals(engine), [_totals(engine, d) for d in (D1, D2, D3)]) == before
    engine.dispose()


# --- partitions made by the import ----------------------------------------------------------------------------

def test_an_import_of_a_new_day_creates_its_partition(pg: Engine, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    assert parts.partition_name(D1) not in _names(pg)

    import_rows(pg, tmp_path, _sales(m, D1, 5) + _sales(m, D2, 3), now=NOW)

    names = _names(pg)
    assert names[parts.partition_name(D1)]
    assert names[parts.partition_name(D2)]
    with pg.connect() as conn:
        assert parts.exact_rows(conn, parts.partition_name(D1)) == 5
        assert parts.exact_rows(conn, parts.DEFAULT) == 0


def test_two_imports_of_different_new_days_at_once_both_succeed(pg: Engine, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        a, b = make_merchants(conn, vault, 2)
    files = [write_csv(tmp_path / "a.csv", _sales(a, D1, 400)), write_csv(tmp_path / "b.csv", _sales(b, D2, 400))]
    start = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = import_transactions(pg, files[i], cutoffs=CUT, now=NOW)
        except Exception as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)

    assert [getattr(r, "rows", r) for r in results] == [400, 400]
    assert {parts.partition_name(D1), parts.partition_name(D2)} <= set(_names(pg))
    assert _totals(pg, D1)[0] == _totals(pg, D2)[0] == 400


def test_rows_parked_in_the_default_partition_move_into_the_day_partition_when_it_is_made(
        pg: Engine, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
        conn.execute(insert(t.transactions).values(  # a writer other than the import (a recon adjustment)
            cycle_date=D3, merchant_id=m.id, external_ref="ADJ1", terminal_id=None, kind=1, card_type=1,
            amount_fen=500, fee_fen=0, occurred_at=_at(D3, 10), import_id=0))
    with pg.connect() as conn:
        assert parts.exact_rows(conn, parts.DEFAULT) == 1

    import_rows(pg, tmp_path, _sales(m, D3, 2), now=NOW)

    with pg.connect() as conn:
        assert parts.exact_rows(conn, parts.DEFAULT) == 0
        assert parts.exact_rows(conn, parts.partition_name(D3)) == 3


# --- pruning --------------------------------------------------------------------------------------------------

def test_the_settle_query_of_one_day_reads_one_partition(pg: Engine, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(pg, tmp_path, _sales(m, D1, 3) + _sales(m, D2, 3) + _sales(m, D3, 3), now=NOW)
    seen: list[str] = []

    @event.listens_for(pg, "before_cursor_execute")
    def _log(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    settle(pg, D2, NOW)
    event.remove(pg, "before_cursor_execute", _log)
    agg = next(s for s in seen if "CREATE TEMPORARY TABLE settle_agg AS" in s)
    with pg.connect() as conn:
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(
            "EXPLAIN " + agg.split(" AS ", 1)[1]))
        # a bound parameter (statements, risk, history) prunes too
        bound = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT count(*) FROM transactions WHERE cycle_date = :d AND merchant_id = :m"),
            {"d": D2, "m": m.id}))
    for p in (plan, bound):
        assert parts.partition_name(D2) in p, p
        for other in (parts.partition_name(D1), parts.partition_name(D3), parts.DEFAULT):
            assert other not in p, p


# --- archive: detach and attach -------------------------------------------------------------------------------

def _reconciled(engine: Engine, day: date) -> None:
    """The day's clearing reconciliation finished (what ``recon clearing --date D`` records)."""
    with engine.begin() as conn:
        conn.execute(insert(t.clearing_runs).values(clearing_date=day, started_at=NOW, finished_at=NOW))


def test_detach_refuses_an_unsettled_day_and_detaches_a_settled_one_then_attaches_it_back(
        pg: Engine, pg_url: str, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        m, late = make_merchants(conn, vault, 2)
    import_rows(pg, tmp_path, _sales(m, D1, 4) + _sales(m, D2, 6), now=NOW)
    settle(pg, D1, NOW)
    _reconciled(pg, D1)
    run = CliRunner()
    d1_before = _totals(pg, D1)

    refused = run.invoke(cli, ["--db", pg_url, "db", "partitions", "detach", "--before", "2026-11-18", "--yes"])
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.output.split())  # the console wraps long lines
    assert "2026-11-17 尚未完成结算" in said
    assert "2026-11-17 has no finished settlement run" in said
    assert "2026-11-16" not in said  # the settled, reconciled day is not a reason
    assert all(_names(pg).values())  # nothing detached

    plan = run.invoke(cli, ["--db", pg_url, "db", "partitions", "detach", "--before", "2026-11-17"])
    assert plan.exit_code == 0
    assert "2026-11-16" in plan.output
    assert "--yes" in plan.output
    assert _names(pg)[parts.partition_name(D1)]

    done = run.invoke(cli, ["--db", pg_url, "db", "partitions", "detach", "--before", "2026-11-17", "--yes"])
    assert done.exit_code == 0, done.output
    name = parts.partition_name(D1)
    assert _names(pg)[name] is False
    assert _names(pg)[parts.partition_name(D2)] is True
    said = " ".join(done.output.split())
    assert "pg_dump --dbname=" in said
    assert f'"{name}"\' --file={name}.dump' in said
    assert "DROP TABLE" in said
    assert "attach --date 2026-11-16" in said
    assert _totals(pg, D1) == (0, 0, 0)  # no longer in transactions, still a plain table
    with pg.connect() as conn:
        assert parts.exact_rows(conn, name) == 4
        event_ = conn.execute(select(t.audit_events).where(t.audit_events.c.kind == "db.partition_detached")).one()
    assert event_.subject_id == name
    assert json.loads(event_.payload)["rows"] == 4

    listed = run.invoke(cli, ["--db", pg_url, "db", "partitions", "--json"])
    got = {p["name"]: p for p in json.loads(listed.output)["partitions"]}
    assert got[name]["attached"] is False
    assert got[name]["range"] == ["2026-11-16", "2026-11-17"]

    with pytest.raises(ImportRejected, match="已归档.*attach --date 2026-11-16"):  # an archived day takes no rows
        import_rows(pg, tmp_path, _sales(late, D1, 1), now=NOW)  # (a merchant the day's run did not settle)

    back = run.invoke(cli, ["--db", pg_url, "db", "partitions", "attach", "--date", "2026-11-16"])
    assert back.exit_code == 0, back.output
    assert _names(pg)[name] is True
    assert _totals(pg, D1) == d1_before
    with pg.connect() as conn:
        assert conn.execute(select(t.audit_events.c.kind).where(
            t.audit_events.c.kind == "db.partition_attached")).scalar() == "db.partition_attached"


def test_detach_refuses_a_settled_day_without_its_clearing_reconciliation(
        pg: Engine, pg_url: str, vault: Vault, tmp_path: Path) -> None:
    with pg.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(pg, tmp_path, _sales(m, D1, 2), now=NOW)
    settle(pg, D1, NOW)
    out = CliRunner().invoke(cli, ["--db", pg_url, "db", "partitions", "detach", "--before", "2026-11-17", "--yes"])
    assert out.exit_code == 2
    said = " ".join(out.output.split())
    assert "2026-11-16 尚未完成清算对账" in said
    assert "recon clearing --date 2026-11-16" in said
    assert _names(pg)[parts.partition_name(D1)] is True


def test_on_sqlite_the_partition_commands_say_it_is_a_postgresql_feature(sqlite_url: str) -> None:
    run = CliRunner()
    for args in (["db", "partitions"], ["db", "partitions", "detach", "--before", "2026-11-17"],
                 ["db", "partitions", "attach", "--date", "2026-11-16"]):
        out = run.invoke(cli, ["--db", sqlite_url, *args])
        assert out.exit_code == 2, out.output
        said = " ".join(out.output.split())
        assert "PostgreSQL 的功能" in said
        assert "PostgreSQL feature" in said


def test_without_a_default_partition_detach_runs_concurrently(pg: Engine, vault: Vault, tmp_path: Path) -> None:
    from settleguard.ops import partitions as svc

    with pg.begin() as conn:
        (m,) = make_merchants(conn, vault, 1)
    import_rows(pg, tmp_path, _sales(m, D1, 3), now=NOW)
    settle(pg, D1, NOW)
    _reconciled(pg, D1)
    with pg.begin() as conn:  # an operator who chose to run without the default partition
        conn.execute(text(f"DROP TABLE {parts.DEFAULT}"))

    res = svc.detach_before(pg, D2, now=NOW, actor="test", execute=True)

    assert [(x.name, x.rows, x.method) for x in res.detached] == [(parts.partition_name(D1), 3, "concurrently")]
    assert _names(pg) == {parts.partition_name(D1): False}
