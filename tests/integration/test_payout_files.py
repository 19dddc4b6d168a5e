"""Payouts over bank files on SQLite and PostgreSQL: a pain.001.001.09 batch out (validated against the
official XSD), pain.002 status reports and camt.054 notifications back, applied once, atomically, in any
order (payouts/files.py)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, func, select

from payout_helpers import (
    SEND_AT,
    VALUE_DAY,
    Due,
    alerts,
    assert_families,
    attempts,
    balances,
    entries,
    events,
    make_payouts,
    payout,
    status,
)
from settleguard.cards.vault import Vault
from settleguard.cases.service import SystemCases
from settleguard.channels.iso20022.pain001 import Agent, BatchConfig, DebtorAccount
from settleguard.channels.iso20022.reports import ReportRejected
from settleguard.db import tables as t
from settleguard.ledger.model import Account
from settleguard.payouts.files import ExportResult, ImportSummary, export_pain001, import_report
from settleguard.payouts.model import PayoutStatus
from settleguard.payouts.policy import DEFAULT_POLICY, on_business_day
from unit.channels.samples import Detail, Pmt, Tx, camt054, pain002
from unit.channels.samples import Entry as NtryEntry

CASES = SystemCases("Asia/Shanghai")  # cases opened by an import, in the business time zone (as the CLI does)

S = PayoutStatus
XSD = Path(str(importlib.metadata.distribution("sepaxml").locate_file("sepaxml/schemas/pain.001.001.09.xsd")))
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
PLATFORM = DebtorAccount("某某收单有限公司备付金户", "110060123456789", Agent(cnaps="102100099996", name="中国工商银行"))
CORPORATE = DebtorAccount("某某收单有限公司对公户", "310066000000001", Agent(bank_code="BOCOM"))
NOW = SEND_AT.astimezone(UTC)


def config(second_debtor_keys: Sequence[str] = ()) -> BatchConfig:
    keys = set(second_debtor_keys)
    return BatchConfig(initiating_party="某某收单有限公司", debtor=PLATFORM,
                       debtor_for=lambda ins: CORPORATE if ins.idempotency_key in keys else PLATFORM)


def export(engine: Engine, vault: Vault, out: Path, cfg: BatchConfig | None = None,
           now: datetime = NOW) -> ExportResult:
    res = export_pain001(engine, vault, cfg or config(), out, as_of=VALUE_DAY, now=now)
    assert_families(engine)
    return res


def groups(engine: Engine, message_id: str) -> dict[str, str]:
    """EndToEndId -> PmtInfId, from the attempts recorded at export."""
    a = t.payout_attempts
    with engine.connect() as conn:
        return {k: ref.split("|", 1)[1] for k, ref in conn.execute(
            select(a.c.idempotency_key, a.c.batch_ref).where(a.c.batch_ref.like(f"{message_id}|%")))}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def apply(engine: Engine, path: Path, now: datetime = NOW + timedelta(hours=3)) -> ImportSummary:
    s = import_report(engine, path, now=now, cases=CASES)
    assert_families(engine)
    return s


def state(engine: Engine) -> tuple[Any, ...]:
    """Everything an import could change."""
    with engine.connect() as conn:
        return tuple(
            [tuple(r) for r in conn.execute(select(t.payouts).order_by(t.payouts.c.id))]
            + [conn.execute(select(func.count()).select_from(tbl)).scalar_one()
               for tbl in (t.payout_events, t.payout_attempts, t.ledger_entries, t.ledger_postings, t.ops_alerts,
                           t.report_imports)])


@pytest.fixture
def batch(engine: Engine, vault: Vault, tmp_path: Path) -> tuple[list[Due], ExportResult, dict[str, str]]:
    ds = make_payouts(engine, vault, tmp_path, [100_000 + 1_000 * i for i in range(7)])
    (tmp_path / "out").mkdir()
    res = export(engine, vault, tmp_path / "out" / "batch.xml", config([ds[5].key, ds[6].key]))
    return ds, res, groups(engine, res.message_id)


# --- export -----------------------------------------------------------------------------------------------------

def test_export_claims_due_payouts_and_writes_a_valid_private_pain001(
    engine: Engine, vault: Vault, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, by_key = batch
    assert res.path is not None
    assert (res.count, res.total_fen) == (7, sum(d.amount for d in ds))
    assert res.path.stat().st_mode & 0o777 == 0o600
    assert not list(res.path.parent.glob(".*staged*"))
    doc = etree.parse(str(res.path))
    root = doc.getroot()
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    assert root.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == res.message_id
    assert root.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "7"
    assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == f"{res.total_fen // 100}.{res.total_fen % 100:02d}"
    txs = root.findall(".//p:CdtTrfTxInf", namespaces=NS)
    got = {tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS): (
        tx.findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=NS), tx.findtext("p:Amt/p:InstdAmt", namespaces=NS))
        for tx in txs}
    assert got == {d.key: (d.merchant.pan, f"{d.amount // 100}.{d.amount % 100:02d}") for d in ds}
    pmt_infs = {p.findtext("p:PmtInfId", namespaces=NS): {
        tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS) for tx in p.findall("p:CdtTrfTxInf", namespaces=NS)}
        for p in root.findall(".//p:PmtInf", namespaces=NS)}
    assert len(pmt_infs) == 2
    assert {k: pid for pid, keys in pmt_infs.items() for k in keys} == by_key
    for d in ds:
        p = payout(engine, d.payout_id)
        assert (p["status"], p["attempt_count"]) == ("submitted", 1)
        (a,) = attempts(engine, d.payout_id)
        assert (a["kind"], a["idempotency_key"], a["channel"], a["batch_ref"], a["outcome"]) == (
            "send", d.key, "pain.001", f"{res.message_id}|{by_key[d.key]}", None)
        assert entries(engine, d.payout_id) == ["payout_submit"]

    again = export(engine, vault, tmp_path / "out" / "again.xml")
    assert (again.path, again.count) == (None, 0)
    assert not (tmp_path / "out" / "again.xml").exists()


def test_a_card_that_does_not_decrypt_goes_to_review_and_the_others_are_exported(
        engine: Engine, vault: Vault, tmp_path: Path) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000, 200_000, 300_000])
    with engine.begin() as conn:  # a card sealed under a key this database does not hold
        conn.execute(t.settlement_accounts.update().where(t.settlement_accounts.c.merchant_id == ds[1].merchant.id)
                     .values(pan_cipher=b"\x00" * 40))
    res = export(engine, vault, tmp_path / "batch.xml")
    assert (res.count, res.unreadable) == (2, 1)
    assert [status(engine, d.payout_id) for d in ds] == [S.SUBMITTED, S.NEEDS_REVIEW, S.SUBMITTED]
    assert attempts(engine, ds[1].payout_id) == []  # never reached the bank: no attempt counted
    assert payout(engine, ds[1].payout_id)["attempt_count"] == 0


def test_an_export_that_cannot_write_its_file_claims_nothing(engine: Engine, vault: Vault, tmp_path: Path) -> None:
    ds = make_payouts(engine, vault, tmp_path, [100_000, 200_000])
    with pytest.raises(FileNotFoundError):
        export_pain001(engine, vault, config(), tmp_path / "missing-dir" / "batch.xml", as_of=VALUE_DAY, now=NOW)
    assert [status(engine, d.payout_id) for d in ds] == [S.CREATED, S.CREATED]
    assert [attempts(engine, d.payout_id) for d in ds] == [[], []]
    assert_families(engine)


# --- pain.002 ---------------------------------------------------------------------------------------------------

def test_a_pain002_with_transaction_payment_information_and_implied_statuses_is_applied_once(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, by_key = batch
    first_pmt, second_pmt = by_key[ds[0].key], by_key[ds[5].key]
    report = write(tmp_path / "rpt.xml", pain002([
        Pmt(first_pmt, txs=[Tx(ds[0].key, "ACSC"), Tx(ds[1].key, "ACCC"),
                            Tx(ds[2].key, "RJCT", "AC04", info=["账户已销户"]),
                            Tx(ds[3].key, "RJCT", "AM04", info=["付款账户余额不足"]), Tx(ds[4].key, "ACSP")]),
        Pmt(second_pmt, status="RJCT", code="AC01", info=["收款账号有误"]),  # no transactions listed: implied
    ], group_status="PART", original_message=res.message_id))
    at = NOW + timedelta(hours=3)

    s = apply(engine, report, at)

    assert [status(engine, d.payout_id) for d in ds] == [
        S.SUCCEEDED, S.SUCCEEDED, S.HELD, S.RETRY_SCHEDULED, S.RESULT_UNKNOWN, S.HELD, S.HELD]
    assert (s.kind, s.statuses, s.already_imported, s.conflicts) == ("pain.002", 5, False, 0)
    assert s.applied == 7  # ACSP (accepted, settlement in process) is not final: result_unknown
    held = payout(engine, ds[2].payout_id)
    assert (held["category"], held["last_code"], held["last_message"]) == ("card_status_abnormal", "AC04", "账户已销户")
    assert [(p["category"], p["last_code"]) for p in (payout(engine, ds[5].payout_id), payout(engine, ds[6].payout_id))
            ] == [("card_info_error", "AC01")] * 2
    short = payout(engine, ds[3].payout_id)
    assert (short["category"], short["next_attempt_at"]) == (
        "insufficient_funds", on_business_day(at + DEFAULT_POLICY.funding_delay))
    assert len(alerts(engine, "insufficient_funds")) == 1
    assert entries(engine, ds[0].payout_id) == ["payout_submit", "payout_confirm"]
    assert entries(engine, ds[2].payout_id) == ["payout_submit", "payout_hold"]
    # each answer is recorded on the send attempt it answers (no attempt row of its own): bulk (AC04,
    # ACSC, the implied AC01) and one by one (AM04, a retry) alike
    (rep,) = attempts(engine, ds[2].payout_id)
    assert (rep["kind"], rep["batch_ref"], rep["outcome"], rep["code"], rep["category"], rep["rule_id"],
            rep["decision"], rep["responded_at"]) == (
        "send", f"{res.message_id}|{first_pmt}", "failed", "AC04", "card_status_abnormal", "iso20022.AC04", "hold", at)
    (retry,) = attempts(engine, ds[3].payout_id)
    assert (retry["kind"], retry["outcome"], retry["code"], retry["category"], retry["decision"]) == (
        "send", "failed", "AM04", "insufficient_funds", "retry")
    assert [[(a["kind"], a["outcome"], a["code"]) for a in attempts(engine, d.payout_id)] for d in ds] == [
        [("send", "succeeded", "ACSC")], [("send", "succeeded", "ACCC")], [("send", "failed", "AC04")],
        [("send", "failed", "AM04")], [("send", "unknown", "ACSP")], [("send", "failed", "AC01")],
        [("send", "failed", "AC01")]]
    bal = balances(engine, ds[0].merchant.id)
    assert (bal[Account.BANK_PROVISIONS], bal[Account.PAYOUT_IN_TRANSIT]) == (ds[0].amount, 0)

    before = state(engine)
    again = apply(engine, report, at + timedelta(minutes=5))
    assert again.already_imported
    assert state(engine) == before


def test_a_group_rejection_applies_to_every_transaction_of_the_original_message(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, _ = batch
    report = write(tmp_path / "grp.xml", pain002([], group_status="RJCT", group_code="FF01",
                                                 group_info=["文件格式错误"], original_message=res.message_id))
    s = apply(engine, report)
    assert s.applied == 7
    assert {status(engine, d.payout_id) for d in ds} == {S.NEEDS_REVIEW}
    assert {payout(engine, d.payout_id)["category"] for d in ds} == {"transaction_data_error"}
    other = write(tmp_path / "other.xml", pain002([], group_status="RJCT", group_code="FF01",
                                                  original_message="SGB-NOT-OURS"))
    before = state(engine)
    with pytest.raises(ReportRejected, match="SGB-NOT-OURS"):  # an OrgnlMsgId we never sent refuses the file
        apply(engine, other)
    assert state(engine) == before  # nothing applied, nothing recorded


def test_duplicated_and_reordered_reports_change_nothing_and_a_contradiction_raises_an_alert(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, by_key = batch
    pmt = by_key[ds[0].key]
    apply(engine, write(tmp_path / "1.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSC"), Tx(ds[1].key, "ACSP")])],
                                                    original_message=res.message_id)))
    assert (status(engine, ds[0].payout_id), status(engine, ds[1].payout_id)) == (S.SUCCEEDED, S.RESULT_UNKNOWN)
    before = state(engine)

    late = apply(engine, write(tmp_path / "2.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSP")])],
                                                           original_message=res.message_id)))
    dup = apply(engine, write(tmp_path / "3.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSC")])],
                                                          original_message=res.message_id, version="10")))
    assert (late.applied, dup.applied, late.conflicts, dup.conflicts) == (0, 0, 0, 0)
    assert state(engine)[:-1] == before[:-1]

    rjct = write(tmp_path / "4.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "RJCT", "AC04")])],
                                             original_message=res.message_id))
    s = apply(engine, rjct)
    assert (s.applied, s.conflicts) == (0, 1)
    assert status(engine, ds[0].payout_id) is S.SUCCEEDED
    assert entries(engine, ds[0].payout_id) == ["payout_submit", "payout_confirm"]
    (alert,) = alerts(engine, "conflicting_report")
    assert str(ds[0].payout_id) in alert["message"]
    assert alert["message"].index("矛盾") < alert["message"].index("contradicts")

    # the same answer twice in one file: acted on once
    twice = apply(engine, write(tmp_path / "5.xml", pain002([Pmt(pmt, txs=[Tx(ds[1].key, "ACSC"),
                                                                           Tx(ds[1].key, "ACSC")])],
                                                           original_message=res.message_id)))
    assert twice.applied == 1
    assert entries(engine, ds[1].payout_id) == ["payout_submit", "payout_confirm"]
    # the first answer (ACSP) stays on the send attempt; the later one gets a row of its own: nothing lost
    assert [(a["attempt_no"], a["kind"], a["outcome"], a["code"]) for a in attempts(engine, ds[1].payout_id)] == [
        (1, "send", "unknown", "ACSP"), (2, "report", "succeeded", "ACSC")]


def test_an_answer_about_another_file_is_not_recorded_on_this_files_send_attempt(
    engine: Engine, vault: Vault, tmp_path: Path,
) -> None:
    from payout_helpers import set_bank

    ds = make_payouts(engine, vault, tmp_path, [100_000, 101_000, 102_000])
    set_bank(engine, [ds[2].merchant.id], "CCB")
    first = export_pain001(engine, vault, config(), tmp_path / "a.xml", as_of=VALUE_DAY, now=NOW, exclude_banks=["CCB"])
    another = export(engine, vault, tmp_path / "b.xml", now=NOW + timedelta(minutes=1))  # only ds[2]
    assert (first.count, another.count) == (2, 1)
    pmt = groups(engine, first.message_id)[ds[0].key]
    s = apply(engine, write(tmp_path / "1.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSC"),
                                                                       Tx(ds[1].key, "RJCT", "AM04")])],
                                                        original_message=another.message_id)))
    assert s.applied == 2
    assert (status(engine, ds[0].payout_id), status(engine, ds[1].payout_id)) == (S.SUCCEEDED, S.RETRY_SCHEDULED)
    for d, outcome, code in ((ds[0], "succeeded", "ACSC"), (ds[1], "failed", "AM04")):
        assert [(a["kind"], a["outcome"], a["code"]) for a in attempts(engine, d.payout_id)] == [
            ("send", None, None), ("report", outcome, code)]


def test_a_report_for_an_old_instruction_key_does_not_touch_the_new_instruction(
    engine: Engine, vault: Vault, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    from settleguard.payouts.release import release

    ds, res, by_key = batch
    pmt = by_key[ds[0].key]
    apply(engine, write(tmp_path / "1.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "RJCT", "AC04")])],
                                                    original_message=res.message_id)))
    release(engine, ds[0].payout_id, "ops", NOW + timedelta(hours=4), override=True, reason="银行确认账户正常")
    second = export(engine, vault, tmp_path / "out" / "second.xml", now=NOW + timedelta(hours=5))
    assert second.count == 1
    assert attempts(engine, ds[0].payout_id)[-1]["idempotency_key"] == f"{ds[0].key}R1"

    stale = apply(engine, write(tmp_path / "2.xml", pain002([Pmt(pmt, txs=[Tx(ds[0].key, "ACSC")])],
                                                            original_message=res.message_id)))
    assert stale.applied == 0
    assert status(engine, ds[0].payout_id) is S.SUBMITTED


def test_payouts_awaiting_a_file_report_are_not_inquired_about_or_resent_through_the_api_channel(
    engine: Engine, vault: Vault, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    """The bank has the file; the API channel knows nothing of its keys ("1002 not found, may resend").
    Taking that answer would pay every payout of the file a second time."""
    from payout_helpers import ScriptedBank
    from settleguard.payouts.service import send_due

    ds, res, by_key = batch
    apply(engine, write(tmp_path / "acsp.xml", pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSP")])],
                                                       original_message=res.message_id)))
    api = ScriptedBank()
    for minutes in (10, 60, 24 * 60):
        send_due(engine, api, vault, as_of=VALUE_DAY, now=NOW + timedelta(minutes=minutes))
        api.new_run()
    assert [what for what, _ in api.calls] == []
    assert status(engine, ds[0].payout_id) is S.RESULT_UNKNOWN
    assert {status(engine, d.payout_id) for d in ds[1:]} == {S.SUBMITTED}
    assert_families(engine)


# --- camt.054 ---------------------------------------------------------------------------------------------------

def test_a_camt054_return_after_success_holds_the_money_with_a_return_entry(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, by_key = batch
    apply(engine, write(tmp_path / "ok.xml", pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSC")])],
                                                     original_message=res.message_id)))
    amount = f"{ds[0].amount // 100}.{ds[0].amount % 100:02d}"
    ntf = write(tmp_path / "rtn.xml", camt054([NtryEntry(amount, details=[
        Detail(ds[0].key, amount, "AC04", ["账户已销户，退回"])])]))

    s = apply(engine, ntf)

    assert (s.kind, s.returned, s.returned_fen) == ("camt.054", 1, ds[0].amount)
    p = payout(engine, ds[0].payout_id)
    assert (p["status"], p["category"], p["last_code"]) == ("held", "card_status_abnormal", "AC04")
    assert [e[1] for e in events(engine, ds[0].payout_id)][-3:] == ["succeeded", "returned", "held"]
    assert entries(engine, ds[0].payout_id) == ["payout_submit", "payout_confirm", "payout_return"]
    rep = attempts(engine, ds[0].payout_id)[-1]
    assert (rep["kind"], rep["outcome"], rep["code"], rep["rule_id"]) == (
        "report", "returned", "AC04", "iso20022_return.AC04")
    bal = balances(engine, ds[0].merchant.id)
    assert (bal[Account.MERCHANT_HELD], bal[Account.BANK_PROVISIONS]) == (ds[0].amount, 0)

    before = state(engine)
    assert apply(engine, ntf).already_imported
    copy = write(tmp_path / "rtn2.xml", ntf.read_text(encoding="utf-8").replace("BANK-NTF-0001", "BANK-NTF-0002"))
    assert apply(engine, copy).returned == 0  # the same return in another file: already held
    assert state(engine)[:-1] == before[:-1]


# --- hostile and malformed files ----------------------------------------------------------------------------------

def _valid(res: ExportResult, ds: list[Due], by_key: dict[str, str]) -> str:
    return pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSC"), Tx(ds[1].key, "ACSC")])],
                   original_message=res.message_id)


@pytest.mark.parametrize("kind", ["xxe", "billion-laughs", "truncated", "bad-status-last", "negative-amount",
                                  "wrong-message"])
def test_a_hostile_or_malformed_report_is_rejected_whole_and_changes_nothing(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]], kind: str,
) -> None:
    ds, res, by_key = batch
    good = _valid(res, ds, by_key)
    secret = tmp_path / "secret.txt"
    secret.write_text("ACSC", encoding="utf-8")
    head, body = good.split("\n", 1)
    text = {
        "xxe": f'{head}\n<!DOCTYPE Document [<!ENTITY x SYSTEM "file://{secret}">]>\n{body}',
        "billion-laughs": (f'{head}\n<!DOCTYPE Document [<!ENTITY a "ACSC"><!ENTITY b "&a;&a;&a;&a;">]>\n'
                           + body.replace("<TxSts>ACSC</TxSts>", "<TxSts>&b;</TxSts>")),
        "truncated": good[: good.rindex("</TxInfAndSts>")],
        "bad-status-last": good.replace(f"<OrgnlEndToEndId>{ds[1].key}</OrgnlEndToEndId><TxSts>ACSC",
                                        f"<OrgnlEndToEndId>{ds[1].key}</OrgnlEndToEndId><TxSts>PAID"),
        "wrong-message": good.replace("CstmrPmtStsRpt", "CstmrCdtTrfInitn"),
        "negative-amount": pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSC"),
                                                                Tx(ds[1].key, "ACSC", amount="-1.00")])],
                                   original_message=res.message_id),
    }[kind]
    path = write(tmp_path / f"{kind}.xml", text)
    before = state(engine)

    with pytest.raises(ReportRejected) as exc:
        import_report(engine, path, now=NOW + timedelta(hours=3), cases=CASES)

    assert str(path) in str(exc.value)
    assert state(engine) == before
    assert {status(engine, d.payout_id) for d in ds} == {S.SUBMITTED}
    ok = apply(engine, write(tmp_path / "good.xml", good))  # the genuine file still applies afterwards
    assert ok.applied == 2


def test_a_gbk_encoded_report_is_read(engine: Engine, tmp_path: Path,
                                      batch: tuple[list[Due], ExportResult, dict[str, str]]) -> None:
    ds, res, by_key = batch
    text = pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "RJCT", "AC04", info=["账户已冻结"])])],
                   original_message=res.message_id, encoding="GBK")
    apply(engine, write(tmp_path / "gbk.xml", text, "gbk"))
    p = payout(engine, ds[0].payout_id)
    assert (p["status"], p["last_message"]) == ("held", "账户已冻结")


def test_a_report_file_named_after_a_card_number_is_recorded_masked(
    engine: Engine, tmp_path: Path, batch: tuple[list[Due], ExportResult, dict[str, str]],
) -> None:
    ds, res, by_key = batch
    pan = "6217000000000008009"
    report = write(tmp_path / f"回执-{pan}.xml", pain002([Pmt(by_key[ds[0].key], txs=[Tx(ds[0].key, "ACSC")])],
                                                        group_status="PART", original_message=res.message_id))
    apply(engine, report, NOW + timedelta(hours=3))
    with engine.connect() as conn:
        (name,) = conn.execute(select(t.report_imports.c.filename)).one()
    assert pan not in name
    assert name == "回执-621700*********8009.xml"
