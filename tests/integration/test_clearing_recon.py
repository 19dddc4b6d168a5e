"""Clearing reconciliation: UnionPay 全渠道 INN detail and RD summary files in (``recon import``), compared with
our POS transactions (``recon clearing --date D``): 长款, 短款, amount, fee and summary differences, on SQLite and
PostgreSQL; hostile lines rejected whole, naming the line (zh, en)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, func, select
from typer.testing import CliRunner

from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.imports.transactions import import_transactions
from settleguard.merchants import repository as merchants_repo
from settleguard.merchants.model import MerchantKind, NewMerchant
from settleguard.reconciliation import clearing_matching as cm
from settleguard.reconciliation import clearing_repository as crepo
from settleguard.reconciliation.breaks import list_breaks
from settleguard.reconciliation.breaks import run as bank_run
from settleguard.reconciliation.clearing import (
    INN_LINE,
    NoClearingFile,
    clearing_kind,
    day_window,
    import_clearing_file,
    read_inn,
    run_clearing,
)
from settleguard.reconciliation.model import StatementRejected
from settleguard.settlement.model import CutOffs, Cycle
from settleguard.sim import clearing_file as sim

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
CUT = CutOffs(timezone=TZ)
PAN = "6222021234567890128"
M1, M2 = "898330154990001", "898330154990002"


def _merchant(no: str, terminals: tuple[str, ...]) -> NewMerchant:
    return NewMerchant(no, MerchantKind.PERSONAL, "王五水果店", "王五", "水果店", "5499", "杭州", Cycle.T1, "standard",
                       "王五", "personal", PAN, "ICBC", "中国工商银行", "DC", terminals)


@pytest.fixture
def shop(engine: Engine, vault: Vault, tmp_path: Path) -> Engine:
    """Two merchants and a day of card transactions (one without a STAN, one QR that the network never clears)."""
    with engine.begin() as conn:
        merchants_repo.add_merchants(conn, [_merchant(M1, ("10000001", "10000002")), _merchant(M2, ("20000001",))],
                                     vault, NOW)
    rows = ["external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen,stan"]
    for i in range(12):
        m, term = (M1, "10000001") if i % 3 == 0 else (M1, "10000002") if i % 3 == 1 else (M2, "20000001")
        rows.append(f"R{i:03d},{m},{term},2026-11-20 {9 + i:02d}:0{i % 10}:00,sale,{'debit' if i % 2 else 'credit'},"
                    f"{1000 + 37 * i},{i + 1:06d}")
    rows.append(f"R900,{M1},10000001,2026-11-20 08:30:00,void,debit,500,")  # no STAN: the fallback pairs it
    rows.append(f"R901,{M2},20000001,2026-11-20 08:40:00,sale,qr,800,000999")  # QR: not in the card network
    rows.append(f"R902,{M2},20000001,2026-11-20 23:30:00,sale,debit,800,000998")  # after 日切: the next day
    p = tmp_path / "tx.csv"
    p.write_text("\n".join(rows) + "\n")
    import_transactions(engine, p, cutoffs=CUT, now=NOW)
    return engine


def _ours(engine: Engine, day: date = DAY) -> list[cm.OurTxn]:
    with engine.connect() as conn:
        return crepo.card_transactions(conn, *day_window(day, TZ, 23))


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


def _open(engine: Engine, prefix: str = "clearing_") -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for b in list_breaks(engine, status="open"):
        if str(b["type"]).startswith(prefix):
            out.setdefault(str(b["type"]), []).append(b)
    return out


def test_the_clearing_day_finds_exactly_the_injected_breaks_and_reruns_idempotently(shop: Engine,
                                                                                   tmp_path: Path) -> None:
    ours = _ours(shop)
    assert len(ours) == 13  # 12 keyed + the one without STAN; not the QR, not the one after the cut-off
    inn, rd, inj = sim.clearing_day(tmp_path, DAY, ours, long=1, short=1, amount_off=1, fee_off=1)
    assert clearing_kind(inn) == "inn"
    assert clearing_kind(rd) == "rd"
    assert import_clearing_file(shop, inn, now=NOW, tz=TZ).new_lines == 13
    assert import_clearing_file(shop, rd, now=NOW, tz=TZ).new_lines == 2
    res = run_clearing(shop, DAY, now=NOW, tz=TZ)
    assert res.breaks_by_type == {"clearing_long": 1, "clearing_short": 1, "clearing_amount_mismatch": 1,
                                  "clearing_fee_mismatch": 1, "clearing_total_mismatch": 0}
    assert res.matched == 12
    assert res.summaries == 2
    found = _open(shop)
    assert found["clearing_short"][0]["end_to_end_id"] == inj.short[0].external_ref
    assert found["clearing_long"][0]["amount_fen"] == inj.long[0].amount_fen
    assert found["clearing_long"][0]["bank_ref"] == f"{inj.long[0].merchant_code}/{inj.long[0].terminal_no}/900000"
    assert found["clearing_amount_mismatch"][0]["amount_fen"] == 1
    assert found["clearing_fee_mismatch"][0]["amount_fen"] == 1
    again = run_clearing(shop, DAY, now=NOW + timedelta(hours=1), tz=TZ)
    assert (again.opened, again.cleared, again.breaks) == (0, 0, 4)
    assert len(list_breaks(shop)) == 4
    # a bank reconciliation run leaves the clearing breaks alone
    bank_run(shop, DAY, now=NOW + timedelta(hours=2))
    assert sum(len(v) for v in _open(shop).values()) == 4
    # the network re-sends the day with the missing line: the 短款 clears itself, the rest stays
    (tmp_path / "resent").mkdir()
    fixed = sim.write_inn(tmp_path / "resent", DAY, sim.from_ours(inj.short))
    assert import_clearing_file(shop, fixed, now=NOW, tz=TZ).new_lines == 1
    after = run_clearing(shop, DAY, now=NOW + timedelta(hours=3), tz=TZ)
    assert after.cleared == 1
    assert "clearing_short" not in _open(shop)
    assert after.breaks_by_type["clearing_total_mismatch"] >= 1  # the RD no longer covers the re-sent line


def test_a_summary_that_disagrees_with_the_detail_is_a_break(shop: Engine, tmp_path: Path) -> None:
    inn, rd, _ = sim.clearing_day(tmp_path, DAY, _ours(shop), long=0, short=0, total_off={M2: 5})
    import_clearing_file(shop, inn, now=NOW, tz=TZ)
    import_clearing_file(shop, rd, now=NOW, tz=TZ)
    res = run_clearing(shop, DAY, now=NOW, tz=TZ)
    assert res.breaks_by_type["clearing_total_mismatch"] == 1
    assert res.breaks == 1
    brk = _open(shop)["clearing_total_mismatch"][0]
    assert brk["bank_ref"] == M2
    assert brk["amount_fen"] == 5
    net: dict[str, int] = brk["detail"]["differences"]["net_fen"]  # type: ignore[index]
    assert net["summary"] - net["detail"] == 5


def test_a_summary_under_the_files_own_merchant_id_covers_the_whole_file(shop: Engine, tmp_path: Path) -> None:
    ours = _ours(shop)
    lines = sim.from_ours(ours)
    inn = sim.write_inn(tmp_path, DAY, lines)
    rd = sim.write_rd(tmp_path, DAY, lines, by_merchant=False, encoding="utf-8-sig")  # one section: the ACP owner
    import_clearing_file(shop, inn, now=NOW, tz=TZ)
    import_clearing_file(shop, rd, now=NOW, tz=TZ)
    res = run_clearing(shop, DAY, now=NOW, tz=TZ)
    assert res.breaks == 0
    assert res.matched == len(ours)
    assert res.summaries == 1


def test_an_import_is_atomic_and_idempotent(shop: Engine, tmp_path: Path) -> None:
    inn, rd, _ = sim.clearing_day(tmp_path, DAY, _ours(shop))

    def crash(stored: int) -> None:
        raise RuntimeError("crash half-way")

    with pytest.raises(RuntimeError):
        import_clearing_file(shop, inn, now=NOW, tz=TZ, after_chunk=crash, chunk=2)
    assert (_count(shop, t.clearing_lines), _count(shop, t.clearing_files)) == (0, 0)
    assert import_clearing_file(shop, inn, now=NOW, tz=TZ).new_lines == 13
    again = import_clearing_file(shop, inn, now=NOW, tz=TZ)
    assert again.already_imported
    assert _count(shop, t.clearing_lines) == 13
    renamed = tmp_path / "copy" / inn.name
    renamed.parent.mkdir()
    renamed.write_bytes(inn.read_bytes() + b"\r\n")  # the same lines in another file: nothing new
    assert import_clearing_file(shop, renamed, now=NOW, tz=TZ).new_lines == 0
    assert _count(shop, t.clearing_lines) == 13
    import_clearing_file(shop, rd, now=NOW, tz=TZ)
    other = tmp_path / "rd2"
    other.write_bytes(sim.rd_text(DAY, sim.from_ours(_ours(shop)[:3])).encode("gbk"))
    with pytest.raises(StatementRejected) as exc:  # a different summary for a merchant and day already stored
        import_clearing_file(shop, other, now=NOW, tz=TZ)
    assert "已导入过不同的汇总" in exc.value.zh
    assert "different summary" in exc.value.en


def test_the_account_is_stored_masked_and_amounts_signed(shop: Engine, tmp_path: Path) -> None:
    x = sim.ClearingTxn(M1, "10000001", "000777", datetime(2026, 11, 20, 9, 0, tzinfo=ZoneInfo(TZ)), 476800, 2861,
                        account=PAN)
    inn = sim.write_inn(tmp_path, DAY, [x])
    raw = inn.read_bytes()
    assert len(raw.split(b"\r\n")[0]) == INN_LINE
    assert b"D000000002861" in raw
    assert b"C000000473939" in raw
    import_clearing_file(shop, inn, now=NOW, tz=TZ)
    with shop.connect() as c:
        row = c.execute(select(t.clearing_lines)).one()
    assert row.account_masked == "622202*********0128"
    assert (row.amount_fen, row.fee_fen, row.settle_fen, row.net_fen) == (476800, 2861, 476800, 473939)
    assert row.sent_at == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    assert row.txn_date == DAY


def _good_line() -> str:
    x = sim.ClearingTxn(M1, "10000001", "000001", datetime(2026, 11, 20, 9, 0, tzinfo=ZoneInfo(TZ)), 100, 1)
    return sim.inn_line(x)


def _at(line: str, start: int, value: str) -> str:
    return line[:start] + value + line[start + len(value):]


HOSTILE: dict[str, tuple[Callable[[str], str], str, str]] = {
    "separator": (lambda g: _at(g, 3, "X"), "分隔空格", "separating space"),
    "non_ascii": (lambda g: g[:50] + "卡" + g[51:], "ASCII", "ASCII"),
    "too_long": (lambda g: g + "0" * 5000, "行长超过", "longer than"),
    "dc_sign": (lambda g: _at(g, 178, "X"), "D 或 C", "D or C"),
    "time": (lambda g: _at(g, 35, "1332"), "真实的日期", "real date"),
    "stan": (lambda g: _at(g, 28, "12a456"), "6 位数字", "6 digits"),
    "control": (lambda g: _at(g, 60, "\x07"), "控制字符", "control"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_inn_line_rejects_the_whole_file_naming_it(engine: Engine, tmp_path: Path, case: str) -> None:
    spoil, zh, en = HOSTILE[case]
    good = _good_line()
    body = good + "\r\n" + spoil(_at(good, 28, "000002")) + "\r\n"
    path = tmp_path / sim.inn_name(DAY)
    path.write_bytes(body.encode("utf-8"))
    with pytest.raises(StatementRejected) as exc:
        import_clearing_file(engine, path, now=NOW, tz=TZ)
    assert "第 2 行" in exc.value.where
    assert "line 2" in exc.value.where
    assert zh in exc.value.zh + exc.value.where
    assert en in exc.value.en + exc.value.where
    assert _count(engine, t.clearing_lines) == 0
    assert _count(engine, t.clearing_files) == 0


def test_other_hostile_inn_files(engine: Engine, tmp_path: Path) -> None:
    good = _good_line()
    dup = tmp_path / sim.inn_name(DAY)
    dup.write_text(good + "\r\n" + good + "\r\n", newline="")
    with pytest.raises(StatementRejected, match="重复"):
        import_clearing_file(engine, dup, now=NOW, tz=TZ)
    unnamed = tmp_path / "clearing.txt"
    unnamed.write_text(good + "\r\n", newline="")
    with pytest.raises(StatementRejected) as exc:  # the clearing date comes from the INN<yymmdd> name
        read_inn(unnamed)
    assert "INN<yymmdd>" in exc.value.zh
    binary = tmp_path / sim.inn_name(DAY).replace("INN", "INN", 1)
    binary.write_bytes(b"\x00" * 700)
    with pytest.raises(StatementRejected):
        import_clearing_file(engine, binary, now=NOW, tz=TZ)
    assert _count(engine, t.clearing_files) == 0


def test_hostile_rd_summaries(shop: Engine, tmp_path: Path) -> None:
    lines = sim.from_ours(_ours(shop))
    text = sim.rd_text(DAY, lines)
    bad_sum = tmp_path / "rd_sum"
    rows = text.split("\r\n")
    i = next(n for n, r in enumerate(rows) if r.startswith("消费"))
    rows[i] = rows[i].replace(rows[i].split()[2], str(int(rows[i].split()[2]) + 1), 1)  # a type row's count off
    bad_sum.write_bytes("\r\n".join(rows).encode("gbk"))
    with pytest.raises(StatementRejected) as exc:
        import_clearing_file(shop, bad_sum, now=NOW, tz=TZ)
    assert "合计" in exc.value.where
    assert "add up" in exc.value.en
    bad_amount = tmp_path / "rd_amount"
    bad_amount.write_bytes(text.replace(".", ",", 1).encode("gbk"))  # 0,00 is not an amount
    with pytest.raises(StatementRejected) as exc:
        import_clearing_file(shop, bad_amount, now=NOW, tz=TZ)
    assert "金额格式错误" in exc.value.zh
    assert "bad amount" in exc.value.en
    bad_day = tmp_path / "rd_day"
    bad_day.write_bytes(text.replace(f"{DAY:%Y%m%d}", "20261340").encode("gbk"))
    with pytest.raises(StatementRejected) as exc:
        import_clearing_file(shop, bad_day, now=NOW, tz=TZ)
    assert "清算日期" in exc.value.zh
    huge = tmp_path / "rd_huge"
    huge.write_bytes(text.encode("gbk") + b"x" * 5000 + b"\r\n")
    with pytest.raises(StatementRejected, match="4096"):
        import_clearing_file(shop, huge, now=NOW, tz=TZ)
    assert _count(shop, t.clearing_summaries) == 0
    assert _count(shop, t.clearing_files) == 0


def test_the_cli_imports_runs_and_lists_clearing_breaks(shop: Engine, db_url: str, tmp_path: Path) -> None:
    inn, rd, inj = sim.clearing_day(tmp_path, DAY, _ours(shop), long=1, short=1)
    run = CliRunner()
    out = run.invoke(cli, ["--db", db_url, "recon", "clearing", "--date", "2026-11-20"])
    assert out.exit_code == 2
    assert "请先导入" in out.output
    assert "import it first" in out.output
    out = run.invoke(cli, ["--db", db_url, "recon", "import", str(inn)])
    assert out.exit_code == 0, out.output
    assert "银联清算明细" in out.output
    assert "明细 lines 13" in out.output
    out = run.invoke(cli, ["--db", db_url, "recon", "import", str(rd)])
    assert out.exit_code == 0, out.output
    assert "汇总表" in out.output
    out = run.invoke(cli, ["--db", db_url, "recon", "clearing", "--date", "2026-11-20"])
    assert out.exit_code == 0, out.output
    assert out.output.index("长款") < out.output.index("clearing long")
    assert "汇总表核对" in out.output
    out = run.invoke(cli, ["--db", db_url, "recon", "breaks", "--type", "短款（我方有、银联无）", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert [b["end_to_end_id"] for b in got] == [inj.short[0].external_ref]
    assert got[0]["type"] == "clearing_short"
    assert got[0]["booking_date"] == "2026-11-20"
    assert PAN not in out.output
    out = run.invoke(cli, ["--db", db_url, "recon", "show", str(got[0]["id"])])
    assert out.exit_code == 0, out.output
    assert "短款" in out.output
    assert inj.short[0].external_ref in out.output


# --- the pure matcher: random days with injected breaks of every kind ---------------------------------------

BASE_TIME = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


@st.composite
def days(draw: st.DrawFn) -> tuple[list[cm.NetworkLine], list[cm.OurTxn], dict[str, set[str]]]:
    n = draw(st.integers(1, 30))
    ours: list[cm.OurTxn] = []
    lines: list[cm.NetworkLine] = []
    want: dict[str, set[str]] = {"long": set(), "short": set(), "amount": set(), "fee": set()}
    for i in range(n):
        merchant, terminal = f"M{i % 3}", f"T{i % 2}"
        amount, fee = draw(st.integers(200, 10**9)), draw(st.integers(-10**6, 10**6))
        keyed = draw(st.booleans())  # without a STAN the fallback pairs by amount and time
        txn = cm.OurTxn(merchant, terminal, f"R{i}", f"{i:06d}" if keyed else None, None,
                        BASE_TIME + timedelta(minutes=10 * i), amount, fee, 1, i % 3)
        fate = draw(st.sampled_from(["ok", "ok", "short", "amount", "fee", "both"]))
        sent = txn.occurred_at + timedelta(seconds=draw(st.integers(-120, 120)))
        if fate == "short":
            want["short"].add(txn.external_ref)
        else:
            ln = cm.NetworkLine(i, merchant, terminal, f"{i:06d}", sent, amount, fee, amount, amount - fee)
            if fate in ("amount", "both"):
                ln = replace(ln, amount_fen=amount + draw(st.sampled_from([-1, 1, 100])))
                if keyed:
                    want["amount"].add(str(i))
                else:  # no key and another amount: nothing pairs them
                    want["short"].add(txn.external_ref)
                    want["long"].add(str(i))
            if fate in ("fee", "both") and (keyed or fate == "fee"):
                ln = replace(ln, fee_fen=fee + 1)
                want["fee"].add(str(i))
            lines.append(ln)
        ours.append(txn)
    for k in range(draw(st.integers(0, 4))):
        lines.append(cm.NetworkLine(1000 + k, f"M{k % 3}", "T0", f"9{k:05d}", BASE_TIME, 5, 0, 5, 5))
        want["long"].add(str(1000 + k))
    return lines, ours, want


@given(days())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_injected_break_is_found_with_its_type_and_no_other(
        day: tuple[list[cm.NetworkLine], list[cm.OurTxn], dict[str, set[str]]]) -> None:
    lines, ours, want = day
    plan = cm.plan(DAY, lines, ours)
    got: dict[str, set[str]] = {"long": set(), "short": set(), "amount": set(), "fee": set()}
    for b in plan.breaks:
        kind, subject = b.key.split(":")[2], b.key.split(":")[-1]
        got[kind].add(subject)
    assert got == want
    assert plan.matched == len(ours) - len(want["short"])
    assert len(plan.breaks) == sum(len(v) for v in want.values())


def test_no_clearing_file_for_the_day_is_refused(shop: Engine) -> None:
    with pytest.raises(NoClearingFile):
        run_clearing(shop, DAY, now=NOW, tz=TZ)
