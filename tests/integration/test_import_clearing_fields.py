"""The transaction import's optional clearing fields: 系统跟踪号 stan, 检索参考号 rrn, 授权码 auth_code and the card
number (卡号), stored only as a keyed token, on SQLite and PostgreSQL. Old files keep importing unchanged."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from settleguard.cards.vault import Vault
from settleguard.cli.main import app as cli
from settleguard.db import tables as t
from settleguard.imports.card_token import card_token, token_key
from settleguard.imports.transactions import ImportRejected, import_transactions
from settleguard.merchants import repository as merchants_repo
from settleguard.merchants.model import MerchantKind, NewMerchant
from settleguard.settlement.model import CutOffs, Cycle

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
CUT = CutOffs(timezone="Asia/Shanghai")
PAN = "6222021234567890128"
PAN2 = "6258101234567893"
BASE = "external_ref,merchant_no,terminal_no,occurred_at,kind,card_type,amount_fen"
OLD = (f"{BASE}\n"
       "R001,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,12345\n"
       "R002,898330154990001,10000001,2026-11-20 10:15:00,sale,credit,2000\n")


@pytest.fixture
def shop(engine: Engine, vault: Vault) -> Engine:
    with engine.begin() as conn:
        merchants_repo.add_merchants(conn, [NewMerchant(
            "898330154990001", MerchantKind.PERSONAL, "王五水果店", "王五", "水果店", "5499", "杭州", Cycle.T1, "standard",
            "王五", "personal", "6222021234567890128", "ICBC", "中国工商银行", "DC", ("10000001",))], vault, NOW)
    return engine


def _write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "tx.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def _rows(engine: Engine) -> dict[str, dict[str, object]]:
    with engine.connect() as c:
        return {r.external_ref: dict(r._mapping) for r in c.execute(select(t.transactions))}


def _count(engine: Engine) -> int:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(t.transactions)).scalar_one())


def test_an_old_file_imports_as_before_with_the_new_columns_empty(shop: Engine, tmp_path: Path) -> None:
    res = import_transactions(shop, _write(tmp_path, OLD), cutoffs=CUT, now=NOW)
    assert res.rows == 2
    for row in _rows(shop).values():
        assert (row["stan"], row["rrn"], row["auth_code"], row["card_token"]) == (None, None, None, None)


def test_the_optional_fields_are_stored_and_the_card_only_as_its_token(shop: Engine, vault: Vault,
                                                                         tmp_path: Path) -> None:
    text = (f"{BASE},stan,rrn,auth_code,card_no\n"
            f"R001,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,12345,000123,632409000123,A1B2C3,{PAN}\n"
            f"R002,898330154990001,10000001,2026-11-20 10:15:00,sale,credit,2000, 000124 ,,,{PAN[:6]}*********0128\n"
            f"R003,898330154990001,10000001,2026-11-20 11:15:00,sale,debit,3000,000125,632409000125,123456,\n"
            f"R004,898330154990001,10000001,2026-11-20 12:15:00,void,debit,3000,000126,,,{PAN[:4]} {PAN[4:]}\n"
            f"R005,898330154990001,10000001,2026-11-20 13:15:00,sale,credit,700,000127,,,{PAN2}\n")
    key = token_key(vault)
    import_transactions(shop, _write(tmp_path, text), cutoffs=CUT, now=NOW, card_key=lambda: key)
    rows = _rows(shop)
    assert (rows["R001"]["stan"], rows["R001"]["rrn"], rows["R001"]["auth_code"]) == ("000123", "632409000123", "A1B2C3")
    assert (rows["R002"]["stan"], rows["R002"]["rrn"], rows["R002"]["auth_code"]) == ("000124", None, None)
    expected = hmac.new(key, PAN.encode(), hashlib.sha256).hexdigest()[:32]
    assert rows["R001"]["card_token"] == expected == card_token(PAN, key)
    assert rows["R004"]["card_token"] == expected  # spaces inside the number do not matter
    assert rows["R002"]["card_token"] == card_token(f"{PAN[:6]}*********0128", key) != expected  # masked: its own
    assert rows["R003"]["card_token"] is None
    assert rows["R005"]["card_token"] not in (None, expected)
    with shop.connect() as c:  # the card number is nowhere in the table
        dumped = " ".join(str(v) for r in c.execute(select(t.transactions)) for v in r)
    assert PAN not in dumped
    assert PAN2 not in dumped
    assert PAN[-8:] not in dumped
    assert len(str(rows["R001"]["card_token"])) == 32
    assert token_key(vault) == key  # the key is derived, stable for one vault ...
    assert key not in (b"", vault.keyed_hash("x").encode())  # ... and not the vault's own hash key


def test_rrn_alias_stays_the_reference_alone_and_becomes_the_rrn_beside_another(shop: Engine, tmp_path: Path) -> None:
    alone = ("检索参考号,商户编号,终端编号,交易时间,交易类型,卡类型,金额分\n"
             "632409000123,898330154990001,10000001,2026-11-20 09:15:00,消费,借记卡,100\n"
             "R-LONG-REF-2,898330154990001,10000001,2026-11-20 09:16:00,消费,借记卡,100\n")
    import_transactions(shop, _write(tmp_path, alone, "gbk", "a.csv"), cutoffs=CUT, now=NOW)
    rows = _rows(shop)
    assert rows["632409000123"]["rrn"] == "632409000123"  # a real RRN: also kept as the rrn
    assert rows["R-LONG-REF-2"]["rrn"] is None  # an old-style reference is not an RRN, still imports
    both = ("参考号,检索参考号,商户编号,终端编号,交易时间,交易类型,卡类型,金额分,系统跟踪号,授权码\n"
            "R100,632409000200,898330154990001,10000001,2026-11-20 10:15:00,消费,借记卡,100,000200,654321\n")
    import_transactions(shop, _write(tmp_path, both, "gbk", "b.csv"), cutoffs=CUT, now=NOW)
    row = _rows(shop)["R100"]
    assert (row["rrn"], row["stan"], row["auth_code"]) == ("632409000200", "000200", "654321")


BAD = [  # (column, value, what the message says)
    ("stan", "12345", "6 位数字"),
    ("stan", "00012a", "6 位数字"),
    ("rrn", "63240900012", "12 位"),
    ("auth_code", "12-456", "6 位"),
    ("card_no", "62220212345678901234", "卡号"),  # 20 digits
    ("card_no", "6222A21234567890128", "卡号"),
    ("card_no", "622202*0128", "卡号"),
]


def test_bad_optional_values_reject_the_file_each_at_its_line(shop: Engine, vault: Vault, tmp_path: Path) -> None:
    good = {"stan": "000001", "rrn": "632409000001", "auth_code": "123456", "card_no": PAN}
    lines = [f"{BASE},stan,rrn,auth_code,card_no",
             f"R000,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,100,{','.join(good.values())}"]
    for i, (column, value, _) in enumerate(BAD, 1):
        bad = {**good, column: value}
        lines.append(f"R{i:03d},898330154990001,10000001,2026-11-20 09:16:00,sale,debit,100,{','.join(bad.values())}")
    with pytest.raises(ImportRejected) as exc:
        import_transactions(shop, _write(tmp_path, "\n".join(lines) + "\n"), cutoffs=CUT, now=NOW,
                            card_key=token_key(vault))
    problems = dict(exc.value.problems)
    assert exc.value.rows == len(BAD)
    for i, (column, _, zh) in enumerate(BAD, 3):
        assert column in str(problems[i])
        assert zh in str(problems[i])
    assert PAN not in str(exc.value)
    assert "62220212345678901234" not in str(exc.value)  # echoed masked
    assert _count(shop) == 0


def test_a_card_column_without_the_card_key_is_refused(shop: Engine, tmp_path: Path) -> None:
    text = f"{BASE},卡号\nR001,898330154990001,10000001,2026-11-20 09:15:00,sale,debit,100,{PAN}\n"
    with pytest.raises(ImportRejected) as exc:
        import_transactions(shop, _write(tmp_path, text), cutoffs=CUT, now=NOW)
    assert "卡号" in exc.value.reason
    assert "card key" in exc.value.reason
    assert _count(shop) == 0


def test_the_cli_computes_tokens_with_the_databases_card_key(shop: Engine, db_url: str, vault: Vault,
                                                              tmp_path: Path) -> None:
    text = ("参考号,商户编号,终端编号,交易时间,交易类型,卡类型,金额分,系统跟踪号,卡号\n"
            f"R001,898330154990001,10000001,2026-11-20 09:15:00,消费,借记卡,100,000001,{PAN}\n")
    path = _write(tmp_path, text, "gbk")
    key_line = (tmp_path / "test.key").read_text().split()[-1].split(":", 1)[1]
    out = CliRunner().invoke(cli, ["--db", db_url, "import", "transactions", str(path)],
                             env={"SETTLEGUARD_KEY": key_line})
    assert out.exit_code == 0, out.output
    assert PAN not in out.output
    assert _rows(shop)["R001"]["card_token"] == card_token(PAN, token_key(vault))
