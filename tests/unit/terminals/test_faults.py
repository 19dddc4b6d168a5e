"""Issue 21 item 2 and 6: each fault the simulator injects is named with the right finding, guidance and
evidence; an unbalanced batch lists the missing, extra and different transactions by trace number and RRN;
data that disagrees between terminal and host is a finding; the JSON has what the issue asks for."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.sim.terminal_logs import (
    FAULTS,
    TIMEOUT_SECONDS,
    LogWriter,
    Sale,
    clean_log,
    demo_log,
    fault_log,
)
from settleguard.terminals.analysis import KINDS, analyze, bad_line_finding, totals_from_48
from settleguard.terminals.log_reader import parse_lines
from settleguard.terminals.model import Finding, Totals


def findings(lines: list[str]) -> list[Finding]:
    read = parse_lines(lines)
    assert read.bad == []
    return analyze(read.messages)


def kinds(lines: list[str]) -> list[str]:
    return [f.kind for f in findings(lines)]


# what the guidance of each fault's finding must say (zh for the merchant, en for ops)
GUIDANCE = {
    "key_error": ("重新签到", "master key"),
    "sale_timeout": ("不要重复刷卡", "reversal"),
    "settlement_unbalanced": ("批上送", "missing, extra and different"),
    "batch_upload_incomplete": ("重新结算", "whole batch upload"),
    "duplicate": ("不要重复刷卡", "trace or batch numbers"),
    "data_mismatch": ("凭证校验码", "authorisation code"),
    "unknown_message": ("无需处理", "message type"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_injected_fault_is_named_with_its_finding_guidance_and_evidence(fault: str) -> None:
    expected = FAULTS[fault][1]
    found = [f for f in findings(fault_log(fault, terminal="30000007")) if f.kind == expected]
    assert len(found) == 1, [f.kind for f in findings(fault_log(fault))]
    f = found[0]
    assert f.terminal == "30000007"
    assert f.category == KINDS[expected].category
    merchant, ops = GUIDANCE[expected]
    assert merchant in f.merchant_zh
    assert ops in f.ops_en
    assert f.evidence
    assert f.at is not None
    assert f.at in {m.at for m in f.evidence}


def test_a_clean_log_and_a_clean_day_of_many_batches_yield_nothing() -> None:
    assert findings(clean_log()) == []
    w = LogWriter()
    w.sign_in()
    for batch in range(3):
        for i in range(5):
            w.sale(1_000 * (batch + 1) + i)
        w.settle()
    assert findings(w.lines) == []


def test_a_mac_error_after_a_key_change_is_one_key_error_and_the_re_sign_in_mends_it() -> None:
    fs = findings(fault_log("mac_error_after_key_change"))
    assert [f.kind for f in fs] == ["key_error"]
    assert "A0" in fs[0].detail_zh
    assert [m.mti for m in fs[0].evidence] == ["0200", "0210"]


def test_an_unbalanced_batch_lists_the_host_s_extra_sale_by_trace_and_rrn_with_both_totals() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(10_000)
    late = w.sale(15_000, answer_after=TIMEOUT_SECONDS + 30)
    w.settle()
    f = next(f for f in findings(w.lines) if f.kind == "settlement_unbalanced")
    assert f.batch == "000001"
    assert f.terminal_totals == Totals(10_000, 1, 0, 0)
    assert f.host_totals == Totals(25_000, 2, 0, 0)
    (d,) = f.differences
    assert (d.kind, d.trace, d.host_amount_fen, d.probable) == ("extra", late, 15_000, False)
    assert d.rrn.endswith(late)
    assert {m.line for m in f.evidence} >= set(d.lines)
    assert f.at == f.evidence[1].at  # the 0510
    data = f.as_dict()
    assert data["totals"] == {"batch": "000001",
                              "terminal": {"debit_fen": 10_000, "debit_count": 1, "credit_fen": 0, "credit_count": 0},
                              "host": {"debit_fen": 25_000, "debit_count": 2, "credit_fen": 0, "credit_count": 0}}
    assert data["differences"][0]["kind"] == "extra"
    assert "¥100.00" in f.detail_zh
    assert "¥250.00" in f.detail_zh


def test_a_sale_the_terminal_counts_and_the_host_never_saw_is_missing() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(10_000)
    ghost = w.journal_only(6_600)
    w.settle()
    f = next(f for f in findings(w.lines) if f.kind == "settlement_unbalanced")
    assert [(d.kind, d.trace, d.terminal_amount_fen) for d in f.differences] == [("missing", ghost, 6_600)]


def test_without_an_upload_the_gap_names_the_reversed_sale_the_terminal_still_counts_as_probable() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000)
    reversed_ = w.sale(2_345)
    kept = w.host[reversed_]
    w.reversal(reversed_, 2_345)  # the host reverses it ...
    w.journal[reversed_] = Sale(reversed_, 2_345, kept.rrn, kept.auth)  # ... the terminal still counts it
    w.settle(upload="none")
    fs = findings(w.lines)
    f = next(f for f in fs if f.kind == "settlement_unbalanced")
    assert [(d.kind, d.trace, d.probable) for d in f.differences] == [("missing", reversed_, True)]
    assert "可能主机缺失 1 笔" in f.detail_zh
    assert "batch_upload_incomplete" in [x.kind for x in fs]


def test_without_an_upload_the_gap_names_the_host_s_sale_of_that_amount_as_probable() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000)
    late = w.sale(4_321, answer_after=TIMEOUT_SECONDS + 5)
    w.settle(upload="none")
    f = next(f for f in findings(w.lines) if f.kind == "settlement_unbalanced")
    assert [(d.kind, d.trace, d.probable) for d in f.differences] == [("extra", late, True)]


def test_the_host_saying_balanced_while_a_whole_batch_in_the_log_disagrees_is_a_finding_a_partial_log_not() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000)
    w.journal_only(500)
    w.settle(result="1")
    fs = findings(w.lines)
    assert [f.kind for f in fs] == ["settlement_unbalanced"]
    assert fs[0].detail_en.startswith("the host says balanced, but the log's transactions disagree")
    partial = LogWriter()  # the log starts after the batch began: its transactions cannot stand for the host's
    partial.sign_in()
    partial.lines.clear()
    partial.sale(1_000)
    partial.journal_only(500)
    partial.settle(result="1")
    assert "settlement_unbalanced" not in kinds(partial.lines)


def test_the_next_batch_is_covered_by_the_previous_settlement() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000)
    w.settle()
    w.sale(2_000)
    w.journal_only(300)
    w.settle(result="1")
    (f,) = findings(w.lines)
    assert (f.kind, f.batch) == ("settlement_unbalanced", "000002")


def test_an_answer_with_another_amount_or_trace_is_a_data_mismatch() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(10_000, host_amount=1_000)
    w.sale(500, host_trace="999999")
    fs = [f for f in findings(w.lines) if f.kind == "data_mismatch"]
    assert [f.differences[0].fields for f in fs] == [("amount",), ("trace",)]
    assert "金额 终端 ¥100.00 / 主机 ¥10.00" in fs[0].detail_zh
    assert "trace terminal" in fs[1].detail_en
    assert "999999" in fs[1].detail_en


def test_an_authorisation_code_the_terminal_kept_differently_is_a_data_mismatch_and_a_batch_difference() -> None:
    w = LogWriter()
    w.sign_in()
    trace = w.sale(10_000, receipt_auth="B12345")
    w.journal_only(500)  # makes the batch unbalanced, so that the terminal uploads it
    w.settle()
    fs = findings(w.lines)
    mismatch = next(f for f in fs if f.kind == "data_mismatch")
    assert mismatch.differences[0].fields == ("auth_code",)
    assert "授权码（凭证校验码） 终端 B12345" in mismatch.detail_zh
    assert [m.mti for m in mismatch.evidence] == ["0200", "0210", "0320"]
    unbalanced = next(f for f in fs if f.kind == "settlement_unbalanced")
    assert [(d.kind, d.trace) for d in unbalanced.differences][0] == ("different", trace)


def test_a_trace_number_approved_twice_in_a_batch_is_a_duplicate_and_counted_once() -> None:
    fs = findings(fault_log("duplicate_trace"))
    (f,) = fs
    assert f.kind == "duplicate"
    assert [m.mti for m in f.evidence] == ["0200", "0210", "0200", "0210"]
    assert f.evidence[0].trace == f.evidence[2].trace


def test_an_unknown_message_type_is_reported_and_never_waits_for_an_answer() -> None:
    w = LogWriter()
    w.sign_in()
    w.other("0100")
    w.sale(100)
    w.sale(200)  # the log runs on past the timeout
    assert kinds(w.lines) == ["unknown_message"]


def test_field_48_totals_add_domestic_and_foreign_and_refuse_a_short_field() -> None:
    f48 = "000000010000002" "000000000500001" "0" "000000002000001" "000000000000000" "0"
    assert totals_from_48(f48) == Totals(12_000, 3, 500, 1)
    assert totals_from_48(f48[:40]) is None
    assert totals_from_48("x" * 62) is None


def test_the_json_of_every_finding_has_terminal_code_category_at_with_offset_and_evidence() -> None:
    lines = [*demo_log(), *fault_log("data_mismatch", "30000001"), *fault_log("unbalanced_batch", "30000002"),
             "2026-12-07T09:00:00+08:00 TX 30000003 6000", "garbage"]
    read = parse_lines(lines)
    out = [f.as_dict() for f in [*analyze(read.messages), *(bad_line_finding(b) for b in read.bad)]]
    data = json.loads(json.dumps(out, ensure_ascii=False))
    assert isinstance(data, list)
    assert {d["code"] for d in data} >= {"sign_in_failed", "data_mismatch", "settlement_unbalanced", "undecodable"}
    for d in data:
        assert {"terminal", "code", "category", "at", "evidence"} <= set(d)
        assert d["code"] in KINDS
        assert d["category"] == KINDS[d["code"]].category
        assert d["evidence"]
        assert all(isinstance(e["line"], int) for e in d["evidence"])
        if d["at"] is not None:
            assert datetime.fromisoformat(d["at"]).utcoffset() is not None
            assert d["at"][-6:] in ("+08:00",)
    undecodable = [d for d in data if d["code"] == "undecodable"]
    assert undecodable[0]["terminal"] == "30000003"
    assert undecodable[0]["at"] == "2026-12-07T09:00:00+08:00"
    assert undecodable[1]["at"] is None  # no time could be read on that line


OPS = st.sampled_from(["sale", "late", "lost", "declined", "reverse", "ghost", "settle", "sign_in", "echo_lost",
                       "mismatch", "reuse"])


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(OPS, max_size=25))
def test_any_day_of_faults_is_analysed_without_a_crash_and_every_finding_shows_its_evidence(ops: list[str]) -> None:
    w = LogWriter()
    last = ""
    for op in ops:
        if op == "sale":
            last = w.sale(1_000)
        elif op == "late":
            last = w.sale(2_000, answer_after=TIMEOUT_SECONDS + 1)
        elif op == "lost":
            last = w.sale(3_000, answer=None)
        elif op == "declined":
            w.sale(4_000, answer="51")
        elif op == "reverse" and last:
            w.reversal(last, 1_000)
        elif op == "ghost":
            w.journal_only(700)
        elif op == "settle":
            w.settle()
        elif op == "sign_in":
            w.sign_in()
        elif op == "echo_lost":
            w.echo(None)
        elif op == "mismatch":
            w.sale(5_000, host_amount=5_001)
        elif op == "reuse" and last:
            w.sale(6_000, trace=last)
    for f in findings(w.lines):
        assert f.evidence
        assert f.at is not None
        assert f.at in {m.at for m in f.evidence}
        assert f.at.utcoffset() == timedelta(hours=8)
        assert json.dumps(f.as_dict(), ensure_ascii=False)


def test_the_log_against_the_imported_transactions_lists_missing_extra_and_different() -> None:
    from settleguard.terminals.analysis import compare_with_imported
    from settleguard.terminals.model import ImportedTxn

    w = LogWriter()
    w.sign_in()
    a = w.sale(1_000)
    b = w.sale(2_000)
    c = w.sale(3_000)
    reversed_ = w.sale(4_000)
    w.reversal(reversed_, 4_000)  # reversed: not the host's any more
    messages = parse_lines(w.lines).messages
    host = dict(w.host)
    agree = [ImportedTxn(f"R{t}", s.amount, stan=t, rrn=s.rrn, auth_code=s.auth) for t, s in host.items()]
    assert compare_with_imported("10000001", messages, agree) == []
    imported = [ImportedTxn("R1", 1_000, stan=a, rrn=host[a].rrn, auth_code=host[a].auth),
                ImportedTxn("R2", 2_000, stan=b, rrn=None, auth_code="ZZZZZZ"),  # matched by stan, other auth
                ImportedTxn("R9", 9_900, stan="000900", rrn="RRN000000900"),  # only in the import
                ImportedTxn("R0", 5_000)]  # no stan, no RRN (before migration 0016): not compared
    (f,) = compare_with_imported("10000001", messages, imported)
    assert f.kind == "import_mismatch"
    assert f.category == "transaction_data_error"
    got = sorted((d.kind, d.trace, d.fields) for d in f.differences)
    assert got == [("different", b, ("auth_code",)), ("extra", "000900", ()), ("missing", c, ())]
    assert "导入缺失 1 笔、仅导入有 1 笔、数据不同 1 笔" in f.detail_zh
    assert f.at is not None
    assert compare_with_imported("99999999", messages, imported) == []


@pytest.mark.parametrize(("code", "kind"), [("A0", "sign_in_failed"), ("99", "sign_in_failed"),
                                            ("Q7", "sign_in_failed"), (None, "sign_in_failed"),
                                            ("97", "terminal_not_registered"), ("03", "terminal_not_registered"),
                                            ("90", "cut_over"), ("96", "switch_fault"), ("98", "issuer_timeout")])
def test_a_failed_sign_in_is_named_by_what_its_code_means(code: str | None, kind: str) -> None:
    w = LogWriter()
    w.sign_in(code)
    w.sale(100)  # not signed in
    w.sale(200)  # the log runs on past the timeout
    fs = findings(w.lines)
    assert [f.kind for f in fs] == [kind, "no_sign_in"]
    assert [m.mti for m in fs[0].evidence] == (["0800"] if code is None else ["0800", "0810"])
    if kind != "sign_in_failed":
        assert fs[0].detail_zh.startswith("签到失败，应答码 ")
    assert [m.mti for m in fs[1].evidence][-1] == "0200"


def test_every_finding_code_is_in_the_docs_table_with_its_words() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "terminals.md").read_text(encoding="utf-8")
    for code, k in KINDS.items():
        assert f"| `{code}` | {k.title_zh} | {k.title_en} | {k.severity} | `{k.category}` |" in doc, code


def test_every_kind_has_an_owner_and_steps_of_the_terminal_checks_vocabulary() -> None:
    from settleguard.terminals.analysis import OWNER_STEPS
    from settleguard.terminals.checks import OWNERS, STEPS

    assert set(OWNER_STEPS) == set(KINDS)
    for owner, steps in OWNER_STEPS.values():
        assert owner in OWNERS
        assert set(steps) <= set(STEPS)
    (f,) = [f for f in findings(fault_log("mac_error_after_key_change"))]
    assert f.as_dict()["owner"] == "merchant"
    assert f.as_dict()["steps"] == ["re_sign_in", "contact_service"]


def test_every_category_is_one_of_the_failure_taxonomy() -> None:
    from settleguard.diagnosis.model import Category

    assert {k.category for k in KINDS.values()} <= {c.value for c in Category}
