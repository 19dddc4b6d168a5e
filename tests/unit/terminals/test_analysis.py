"""Each finding kind is named from a simulated log that injects it, with evidence, time and guidance; a clean
log yields none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from settleguard.sim.terminal_logs import SCENARIOS, LogWriter, clean_log, demo_log, scenario_log
from settleguard.terminals.analysis import KINDS, RESPONSE_CODES, analyze
from settleguard.terminals.log_reader import parse_lines
from settleguard.terminals.model import Finding


def findings(lines: list[str], timeout: timedelta = timedelta(seconds=60)) -> list[Finding]:
    read = parse_lines(lines)
    assert read.bad == []
    return analyze(read.messages, timeout)


def test_a_clean_log_has_no_finding() -> None:
    assert findings(clean_log()) == []


def test_every_kind_but_the_reader_s_has_a_scenario() -> None:
    # undecodable comes from the reader, import_mismatch from comparing with the database
    assert set(SCENARIOS) == set(KINDS) - {"undecodable", "import_mismatch"}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_the_injected_fault_is_named_with_evidence_time_and_guidance(kind: str) -> None:
    found = [f for f in findings(scenario_log(kind, terminal="20000009")) if f.kind == kind]
    assert len(found) == 1
    f = found[0]
    assert f.terminal == "20000009"
    assert f.evidence
    assert f.at is not None
    assert f.at.utcoffset() == timedelta(hours=8)
    assert f.at in {m.at for m in f.evidence}
    assert f.title_zh
    assert f.title_en
    assert f.merchant_zh
    assert f.merchant_en
    assert f.ops_zh
    assert f.ops_en
    assert f.severity in ("high", "medium", "low")
    d = f.as_dict()
    assert d["code"] == kind
    assert d["at"].endswith("+08:00")
    assert d["evidence"][0]["line"] >= 1


def test_a_mac_error_at_sign_in_says_re_sign_in_and_sales_after_it_were_not_signed_in() -> None:
    w = LogWriter()
    w.sign_in("A0")
    w.sale(1_000)
    fs = findings(w.lines)
    assert [f.kind for f in fs] == ["sign_in_failed", "no_sign_in"]
    assert "A0" in fs[0].detail_zh
    assert "MAC" in fs[0].detail_zh
    assert "重新签到" in fs[0].merchant_zh
    assert [m.mti for m in fs[1].evidence] == ["0800", "0810", "0200"]


def test_a_timed_out_sale_carries_its_reversal_and_the_reversal_s_answer() -> None:
    f = next(f for f in findings(scenario_log("sale_timeout")) if f.kind == "sale_timeout")
    assert [m.mti for m in f.evidence] == ["0200", "0400", "0410"]
    assert f.evidence[0].trace == f.evidence[1].trace
    assert f.at == f.evidence[0].at
    assert f.detail_en == "a reversal followed"


def test_an_answer_after_the_timeout_is_a_timeout_too() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000, answer_after=90)
    assert [f.kind for f in findings(w.lines)] == ["sale_timeout"]
    assert findings(w.lines, timeout=timedelta(seconds=120)) == []


def test_a_request_at_the_end_of_the_log_is_not_a_timeout_before_the_timeout_ran_out() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000, answer=None)
    assert findings(w.lines) == []


@pytest.mark.parametrize(("code", "kind"), [(c, k) for c, (k, _, _) in sorted(RESPONSE_CODES.items())])
def test_each_response_code_is_named_by_its_meaning(code: str, kind: str) -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(1_000, answer=code)
    (f,) = findings(w.lines)
    assert f.kind == kind
    assert f"应答码 {code}" in f.detail_zh
    assert f"response code {code}" in f.detail_en


def test_an_unbalanced_batch_with_a_full_upload_lists_the_uploads_and_is_not_interrupted() -> None:
    fs = findings(scenario_log("settlement_unbalanced"))
    assert [f.kind for f in fs] == ["sale_timeout", "settlement_unbalanced"]  # the late answer the host approved
    f = fs[1]
    # 0500/0510, the two uploaded sales and the batch end, then the host's sale the terminal did not count
    assert [m.mti for m in f.evidence] == ["0500", "0510", "0320", "0330", "0320", "0330", "0320", "0330",
                                           "0200", "0210"]
    assert f.detail_en.startswith("domestic cards not balanced, foreign cards balanced; batch 000001: terminal 2 "
                                  "sale(s) ¥300.00")


def test_an_unbalanced_batch_without_upload_is_an_interrupted_upload() -> None:
    w = LogWriter()
    w.sign_in()
    w.sale(100)
    w.settle([100], result="2", upload="none")
    fs = findings(w.lines)
    assert [f.kind for f in fs] == ["settlement_unbalanced", "batch_upload_incomplete"]
    assert fs[1].detail_en == "no batch upload after the unbalanced settlement"


def test_repeated_echo_failures_are_one_finding_of_high_severity() -> None:
    (f,) = findings(scenario_log("echo_failed"))
    assert f.kind == "echo_failed"
    assert f.severity == "high"
    assert f.detail_en == "2 failed echo test(s)"


def test_findings_are_per_terminal() -> None:
    fs = findings(demo_log())
    assert [(f.terminal, f.kind) for f in fs] == [("10000002", "sign_in_failed"), ("10000002", "sale_timeout"),
                                                  ("10000003", "settlement_unbalanced")]
