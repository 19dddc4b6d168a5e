"""A return (退票) read from a camt.054 file holds the payout and writes the merchant's ``returned`` notice
in the same import transaction, once, even when the return comes again (payouts/files.py hook)."""

from __future__ import annotations

from pathlib import Path

from notify_helpers import deliveries, payout_notices, set_prefs
from sqlalchemy import Engine
from test_payout_files import ExportResult, apply, batch, write  # noqa: F401  (batch is a fixture)

from conftest import NOW
from payout_helpers import Due
from settleguard.cards.vault import Vault
from settleguard.diagnosis import classify
from unit.channels.samples import Detail, Pmt, Tx, camt054, pain002
from unit.channels.samples import Entry as NtryEntry


def test_a_return_after_success_tells_the_merchant_once(
    engine: Engine, vault: Vault, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],  # noqa: F811
) -> None:
    ds, res, by_key = batch
    d = ds[0]
    apply(engine, write(tmp_path / "ok.xml", pain002([Pmt(by_key[d.key], txs=[Tx(d.key, "ACSC")])],
                                                     original_message=res.message_id)))
    assert payout_notices(engine, d.payout_id) == []  # a plain success is not a notice
    set_prefs(engine, vault, d.merchant.id, NOW, email="m@example.com")
    amount = f"{d.amount // 100}.{d.amount % 100:02d}"
    ntf = write(tmp_path / "rtn.xml", camt054([NtryEntry(amount, details=[
        Detail(d.key, amount, "AC04", ["账户已销户，退回"])])]))
    assert apply(engine, ntf).returned == 1
    [n] = payout_notices(engine, d.payout_id)
    assert n["kind"] == "returned"
    assert n["dedupe_key"] == f"payout:{d.payout_id}:returned"
    diag = classify("iso20022_return", "AC04", "账户已销户，退回")
    zh = n["payload"]["zh"]
    assert "退票" in zh
    assert diag.meaning_zh in zh
    assert all(step in zh for step in diag.merchant_zh)
    assert f"{amount} 元" in zh
    assert n["payload"]["bank_code"] == "AC04"
    assert [x["channel"] for x in deliveries(engine, n["id"])] == ["email"]
    copy = write(tmp_path / "rtn2.xml", ntf.read_text(encoding="utf-8").replace("BANK-NTF-0001", "BANK-NTF-0002"))
    apply(engine, copy)
    assert len(payout_notices(engine, d.payout_id)) == 1
