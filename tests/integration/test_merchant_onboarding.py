"""Merchant onboarding against a database (SQLite and PostgreSQL): bad files change nothing, good files register
everything once, the file's encodings and .xlsx are read, duplicates and changed merchants are reported."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from merchant_files import (
    HEADER_EN,
    credit_card,
    debit_card,
    enterprise,
    individual,
    micro,
    resident_id,
    uscc,
    write_csv,
    write_xlsx,
)
from settleguard.cards.vault import Vault
from settleguard.db import tables as t
from settleguard.merchants.checks import Rules
from settleguard.merchants.onboarding import OnboardingRejected, add_merchant, import_merchants

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TABLES = (t.merchants, t.settlement_accounts, t.terminals, t.imports, t.fee_schedules, t.fee_rates, t.audit_events)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {tb.name: int(c.execute(select(func.count()).select_from(tb)).scalar_one()) for tb in TABLES}


def _good_rows() -> list[dict[str, str]]:
    return [micro(1), micro(1, terminal_sn="SN0000001B", terminal_no="10000011"), enterprise(2), individual(3),
            micro(4), micro(5), micro(6), micro(7)]


def _bad_rows() -> list[dict[str, str]]:
    """Every kind of bad row, one per line (lines 2-9), beside good ones."""
    rows = _good_rows()
    bad_id = resident_id(4)[:-1] + ("0" if resident_id(4)[-1] != "0" else "1")
    rows[2] = enterprise(2, uscc=uscc(2)[:-1] + ("0" if uscc(2)[-1] != "0" else "1"))  # line 4: USCC
    rows[4] = micro(4, legal_person_id=bad_id)  # line 6: the legal person's ID
    rows[5] = micro(5, card_no=debit_card(5)[:-1] + str((int(debit_card(5)[-1]) + 3) % 10))  # line 7: card number
    rows[6] = micro(6, mcc="9999")  # line 8: MCC
    rows[7] = micro(7, holder_name="赵六")  # line 9: the holder is not the legal person
    rows.append(micro(8, card_no=debit_card(1)))  # line 10: the card of line 2's merchant
    rows.append(micro(9, card_no=credit_card(9)))  # line 11: not a debit card
    return rows


def test_a_file_with_every_kind_of_bad_row_reports_each_line_and_changes_nothing(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    before = _counts(engine)
    path = write_csv(tmp_path / "bad.csv", _bad_rows())
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, path, vault=vault, now=NOW)
    found = {(p.line, p.field, p.code) for p in exc.value.problems}
    assert found == {
        (4, "uscc", "uscc_invalid"), (6, "legal_person_id", "id_invalid"), (7, "card_no", "luhn_failed"),
        (8, "mcc", "mcc_unknown"), (9, "holder_name", "third_party_account"), (10, "card_no", "duplicate"),
        (11, "card_no", "not_debit_card"),
    }
    text = "\n".join(exc.value.lines())
    assert "第 10 行" in text
    assert "line 10" in text
    assert micro(1)["merchant_no"] in text
    for r in _bad_rows():
        assert r["card_no"] not in text
        assert r["legal_person_id"] not in text
    assert _counts(engine) == before


def test_the_corrected_file_registers_everything_and_reimporting_changes_nothing(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "good.csv", _good_rows())
    res = import_merchants(engine, path, vault=vault, now=NOW)
    assert res.registered == [r["merchant_no"] for r in (micro(1), enterprise(2), individual(3), micro(4), micro(5),
                                                         micro(6), micro(7))]
    after = _counts(engine)
    assert after["merchants"] == 7
    assert after["terminals"] == 8
    assert after["settlement_accounts"] == 7

    again = import_merchants(engine, path, vault=vault, now=NOW)
    assert again.already_imported
    assert again.registered == []
    gbk = import_merchants(engine, write_csv(tmp_path / "gbk.csv", _good_rows(), encoding="gbk"), vault=vault,
                           now=NOW)
    assert gbk.registered == []
    assert len(gbk.unchanged) == 7
    assert gbk.encoding == "gbk"
    assert _counts(engine) == {**after, "imports": after["imports"] + 1, "audit_events": after["audit_events"] + 1}

    with engine.connect() as c:
        m = c.execute(select(t.merchants).where(t.merchants.c.merchant_no == micro(1)["merchant_no"])).one()
        acc = c.execute(select(t.settlement_accounts).where(t.settlement_accounts.c.merchant_id == m.id)).one()
        ent = c.execute(select(t.merchants).where(t.merchants.c.merchant_no == enterprise(2)["merchant_no"])).one()
    assert m.legal_person_id_masked == micro(1)["legal_person_id"][:6] + "********" + micro(1)["legal_person_id"][-4:]
    assert m.legal_person_id_hash == vault.keyed_hash(micro(1)["legal_person_id"])
    assert micro(1)["legal_person_id"] not in str(tuple(m))  # the ID number is never stored in clear
    assert vault.open(acc.pan_cipher, acc.pan_nonce, acc.key_version) == micro(1)["card_no"]
    assert micro(1)["card_no"] not in str(tuple(acc))
    assert acc.account_kind == "personal"
    assert (ent.entity_kind, ent.kind, ent.uscc, str(ent.fee_effective_from)) == (
        "enterprise", "corporate", enterprise(2)["uscc"], "2026-11-01")


def test_a_changed_row_of_a_registered_merchant_is_reported_not_overwritten(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    import_merchants(engine, write_csv(tmp_path / "a.csv", [micro(1), micro(2)]), vault=vault, now=NOW)
    before = _counts(engine)
    moved = write_csv(tmp_path / "b.csv", [micro(1), micro(2, city="上海", contact_mobile="13900000000"), micro(3)])
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, moved, vault=vault, now=NOW)
    [p] = exc.value.problems
    assert (p.line, p.code) == (3, "changed")
    assert "城市" in p.zh
    assert "contact mobile" in p.en
    assert _counts(engine) == before


def test_duplicates_in_the_file_and_against_registered_merchants_are_refused(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    import_merchants(engine, write_csv(tmp_path / "a.csv", [micro(1), enterprise(2)]), vault=vault, now=NOW)
    rows = [micro(3, legal_person_id=micro(1)["legal_person_id"], holder_id=micro(1)["legal_person_id"]),
            enterprise(4, uscc=enterprise(2)["uscc"]),
            micro(5, terminal_sn=micro(1)["terminal_sn"]),
            micro(6), micro(7, card_no=micro(6)["card_no"]),
            micro(8), micro(8, city="天津"),
            micro(9), micro(9, terminal_sn="SN0000009B")]  # the same terminal number twice
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, write_csv(tmp_path / "b.csv", rows), vault=vault, now=NOW)
    assert {(p.line, p.field, p.code) for p in exc.value.problems} == {
        (2, "legal_person_id", "duplicate"), (3, "uscc", "duplicate"), (4, "terminal_sn", "duplicate"),
        (6, "card_no", "duplicate"), (8, "city", "rows_differ"), (10, "terminal_no", "duplicate")}


@pytest.mark.parametrize("kind", ["utf-8-sig", "gbk", "xlsx", "english"])
def test_bom_gbk_xlsx_and_english_headers_are_read(engine: Engine, vault: Vault, tmp_path: Path, kind: str) -> None:
    rows = [micro(1), enterprise(2), individual(3)]
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "m.xlsx", rows)
    elif kind == "english":
        path = write_csv(tmp_path / "m.csv", rows, header=HEADER_EN)
    else:
        path = write_csv(tmp_path / "m.csv", rows, encoding=kind)
    res = import_merchants(engine, path, vault=vault, now=NOW)
    assert len(res.registered) == 3
    with engine.connect() as c:
        names = set(c.execute(select(t.merchants.c.registered_name)).scalars())
    assert enterprise(2)["registered_name"] in names  # Chinese text survived the encoding


def test_a_card_number_stored_as_a_number_in_excel_is_refused(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    from openpyxl import Workbook  # type: ignore[import-untyped]

    from merchant_files import HEADER_ZH

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER_ZH)
    row: list[object] = [micro(1).get(c, "") for c in HEADER_EN]
    row[HEADER_EN.index("card_no")] = float(micro(1)["card_no"])  # Excel keeps 15 significant digits
    ws.append(row)
    wb.save(tmp_path / "n.xlsx")
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, tmp_path / "n.xlsx", vault=vault, now=NOW)
    assert [(p.line, p.field, p.code) for p in exc.value.problems] == [(2, "card_no", "excel_number")]


def test_problems_are_limited_and_the_total_kept(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    rows = [micro(i, mcc="0000") for i in range(1, 13)]
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, write_csv(tmp_path / "m.csv", rows), vault=vault, now=NOW, limit=5)
    assert len(exc.value.problems) == 5
    assert exc.value.total == 12
    assert "7" in exc.value.lines()[-1]


def test_a_header_without_required_columns_is_refused_naming_them(engine: Engine, vault: Vault,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("商户编号,商户名称\n898110058100001,某店\n", encoding="utf-8")
    with pytest.raises(OnboardingRejected) as exc:
        import_merchants(engine, path, vault=vault, now=NOW)
    assert exc.value.reason is not None
    assert "MCC" in exc.value.reason[0]
    assert "bank" in exc.value.reason[1]


def test_add_registers_one_merchant_and_the_enterprise_setting_is_honoured(engine: Engine, vault: Vault) -> None:
    row = enterprise(2, holder_name=enterprise(2)["legal_person"], holder_id=resident_id(2), card_no=debit_card(2),
                     bank="ICBC")
    with pytest.raises(OnboardingRejected) as exc:
        add_merchant(engine, [row], vault=vault, now=NOW)
    assert exc.value.problems[0].code == "yiqing_enterprise_own_account"
    res = add_merchant(engine, [row], vault=vault, now=NOW, rules=Rules(enterprise_legal_person_account=True))
    assert res.registered == [row["merchant_no"]]
    assert add_merchant(engine, [row], vault=vault, now=NOW,
                        rules=Rules(enterprise_legal_person_account=True)).unchanged == [row["merchant_no"]]
