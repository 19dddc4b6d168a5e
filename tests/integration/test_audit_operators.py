"""Card binding, verification attempts, BIN import, key rotation and payout release/cancel each leave
audit events (masked cards only, never key material); the chain verifies on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from test_payout_send import NOW, make_payouts

from payout_helpers import new_pan, rebind
from settleguard.audit import service as audit
from settleguard.cards.bin_import import import_bins
from settleguard.cards.key_rotation import rotate_keys
from settleguard.cards.vault import Vault, load_vault
from settleguard.db import tables as t
from settleguard.payouts import release
from settleguard.payouts import repository as repo
from settleguard.payouts.model import PayoutStatus

A = t.audit_events


def test_operator_and_card_actions_are_audited(engine: Engine, tmp_path: Path) -> None:
    key_file = tmp_path / "ops.key"
    vault: Vault = load_vault(None, key_file)
    dues = make_payouts(engine, vault, tmp_path, [5_000, 6_000])
    pan = new_pan()
    res = rebind(engine, vault, dues[0].merchant.merchant_no, pan, NOW + timedelta(minutes=1))
    assert res.rebound
    bins = tmp_path / "bins.csv"
    bins.write_text("bin,bank_code,bank_name_zh,bank_name_en,card_type,length\n"
                    "622202,TESTBK,测试银行,Test Bank,DC,19\n", encoding="utf-8")
    import_bins(engine, bins, now=NOW, actor="bob")
    import_bins(engine, bins, now=NOW, actor="bob")  # the same content: no change, no event
    rotate_keys(engine, key_file, actor="carol", now=NOW)
    with engine.begin() as conn:
        for to in (PayoutStatus.SUBMITTED, PayoutStatus.FAILED, PayoutStatus.HELD):
            repo.change_status(conn, [repo.StatusChange(dues[1].payout_id, to, str(to))], NOW)
    release.release(engine, dues[1].payout_id, "alice", NOW + timedelta(minutes=3), note="复核通过")

    with engine.connect() as conn:
        rows = conn.execute(select(A.c.kind, A.c.actor, A.c.subject_type, A.c.subject_id, A.c.payload)
                            .order_by(A.c.id)).all()
    kinds = [r.kind for r in rows]
    assert "card.card_rebound" in kinds
    assert "card.verification.four_elements" in kinds
    assert "card.verification.four_elements.result" in kinds
    assert kinds.count("operator.bins_import") == 1
    assert ("operator.keys_rotate", "carol") in [(r.kind, r.actor) for r in rows]
    released = [r for r in rows if r.kind == "operator.payout_release"]
    assert len(released) == 1
    assert released[0].actor == "alice"
    assert (released[0].subject_type, released[0].subject_id) == ("payout", str(dues[1].payout_id))
    assert json.loads(released[0].payload)["to"] == "released"
    everything = "".join(r.payload for r in rows)
    assert pan not in everything  # masked only
    assert key_file.read_text().split(":", 1)[1].strip() not in everything  # never key material
    assert audit.verify(engine).ok
