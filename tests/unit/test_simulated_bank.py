"""The simulated Allinpay-style bank: deterministic faults, timeouts, inquiries, never paying twice."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from settleguard.cards.bins import luhn_complete
from settleguard.cards.vault import mask_pan
from settleguard.channels.base import BankChannel, BankOutcome, OutcomeStatus, PayoutInstruction
from settleguard.channels.simulator import (
    PERSONAL_LIMIT_FEN,
    PERSONAL_LOW_LIMIT_FEN,
    SimulatedBank,
)

SEED = 2026
CARD_CODES = {"3031", "3039", "3017", "3004"}


def account(i: int) -> str:
    return luhn_complete(f"622202{i:012d}")


def instruction(key: str, acct: str, amount_fen: int = 1_234_56, *, kind: str = "personal",
                bank: str = "ICBC", currency: str = "CNY") -> PayoutInstruction:
    return PayoutInstruction(idempotency_key=key, amount_fen=amount_fen, currency=currency, creditor_name="张三",
                             account_number=acct, bank_code=bank, account_kind=kind, value_date=date(2026, 11, 20))


def clean_key(bank: SimulatedBank, stem: str, attempt: int = 1) -> str:
    """A key whose ``attempt``-th send hits no blip."""
    n = 0
    while bank.attempt_fault(f"{stem}-{n}", attempt) is not None:
        n += 1
    return f"{stem}-{n}"


def healthy_account(bank: SimulatedBank, start: int = 0) -> str:
    i = start
    while bank.card_fault(account(i)) is not None or bank.single_limit_fen(account(i)) < PERSONAL_LIMIT_FEN:
        i += 1
    return account(i)


def key_with_blip(bank: SimulatedBank, blip: str, stem: str = "K") -> str:
    n = 0
    while bank.attempt_fault(f"{stem}-{n}", 1) != blip:
        n += 1
    return f"{stem}-{n}"


@pytest.fixture(scope="module")
def twenty_thousand() -> tuple[SimulatedBank, list[PayoutInstruction], list[BankOutcome]]:
    bank = SimulatedBank(SEED)
    sent = [instruction(f"P{i:06d}", account(i)) for i in range(20_000)]
    return bank, sent, [bank.send(x) for x in sent]


def test_the_simulator_is_a_bank_channel_named_simulator() -> None:
    bank = SimulatedBank(SEED)
    assert isinstance(bank, BankChannel)
    assert bank.name == "simulator"


def test_the_same_seed_answers_the_same_way_and_another_seed_does_not() -> None:
    sent = [instruction(f"D{i}", account(i)) for i in range(3000)]
    first = [SimulatedBank(1).send(x) for x in sent]
    again_bank = SimulatedBank(1)
    assert [again_bank.send(x) for x in sent] == first
    other_bank = SimulatedBank(2)
    assert [other_bank.send(x) for x in sent] != first


def test_rates_over_twenty_thousand_keys_are_roughly_as_specified(
        twenty_thousand: tuple[SimulatedBank, list[PayoutInstruction], list[BankOutcome]]) -> None:
    _, _, outcomes = twenty_thousand
    codes = Counter(o.code for o in outcomes)
    assert 80 <= codes["3031"] <= 160  # 0.6% 账号户名不符
    assert 35 <= codes["3039"] <= 90  # 0.3% 账户已关户
    assert 35 <= codes["3017"] <= 90  # 0.3% 账户已冻结
    assert 6 <= codes["3004"] <= 40  # 0.1% 无效卡号
    assert 150 <= codes["3028"] <= 250  # 1% 系统忙
    assert 35 <= codes["3024"] <= 90  # 0.3% 日期切换
    assert 100 <= codes["TIMEOUT"] <= 180  # 0.7% timeouts
    assert codes["0000"] >= 19_300
    assert set(codes) <= CARD_CODES | {"0000", "3028", "3024", "TIMEOUT"}


def test_about_four_percent_of_personal_cards_have_the_low_single_payment_limit() -> None:
    bank = SimulatedBank(SEED)
    low = sum(bank.single_limit_fen(account(i)) == PERSONAL_LOW_LIMIT_FEN for i in range(20_000))
    assert 650 <= low <= 950
    assert bank.single_limit_fen(account(1), "corporate") > PERSONAL_LIMIT_FEN


def test_a_payment_above_the_cards_limit_fails_with_3013_and_is_not_retryable() -> None:
    bank = SimulatedBank(SEED)
    i = 0
    while bank.card_fault(account(i)) is not None or bank.single_limit_fen(account(i)) != PERSONAL_LOW_LIMIT_FEN:
        i += 1
    over = bank.send(instruction(clean_key(bank, "L1"), account(i), PERSONAL_LOW_LIMIT_FEN + 1))
    assert (over.status, over.code, over.message, over.retryable) == (OutcomeStatus.FAILED, "3013", "超出提款限额",
                                                                       False)
    under = bank.send(instruction(clean_key(bank, "L2"), account(i), PERSONAL_LOW_LIMIT_FEN))
    assert under.status is OutcomeStatus.SUCCEEDED


def test_card_problems_repeat_every_day_until_the_merchant_rebinds(
        twenty_thousand: tuple[SimulatedBank, list[PayoutInstruction], list[BankOutcome]]) -> None:
    _, sent, outcomes = twenty_thousand
    failed = [(x, o) for x, o in zip(sent, outcomes, strict=True) if o.code in CARD_CODES]
    assert failed
    tomorrow = SimulatedBank(SEED)  # a new process, the next day, new keys
    for x, o in failed:
        again = tomorrow.send(instruction(clean_key(tomorrow, "next-" + x.idempotency_key), x.account_number))
        assert (again.status, again.code, again.retryable) == (OutcomeStatus.FAILED, o.code, False)
        assert tomorrow.card_fault(x.account_number) == o.code
    rebound = healthy_account(tomorrow, 50_000)
    assert tomorrow.send(instruction(clean_key(tomorrow, "rebound"), rebound)).status is OutcomeStatus.SUCCEEDED


def test_card_problems_carry_the_genuine_allinpay_messages() -> None:
    bank = SimulatedBank(SEED)
    messages = {}
    for i in range(20_000):
        code = bank.card_fault(account(i))
        if code and code not in messages:
            messages[code] = bank.send(instruction(clean_key(bank, f"M{i}"), account(i))).message
    assert messages == {"3031": "账号户名不符", "3039": "账户已关户", "3017": "账户已冻结", "3004": "无效卡号"}


def test_system_busy_and_cut_over_are_retryable_and_a_resend_can_succeed() -> None:
    bank = SimulatedBank(SEED)
    acct = healthy_account(bank)
    for blip, message in (("3028", "系统忙，请稍后再提交"), ("3024", "日期切换正在处理")):
        key = key_with_blip(bank, blip, stem=blip)
        first = bank.send(instruction(key, acct))
        assert (first.status, first.code, first.message, first.retryable) == (OutcomeStatus.FAILED, blip, message,
                                                                              True)
        assert bank.paid_total_fen(key) == 0
        while True:  # resend with the same key until the blip passes
            again = bank.send(instruction(key, acct))
            if again.code not in ("3028", "3024", "TIMEOUT"):
                break
        assert again.status is OutcomeStatus.SUCCEEDED
        assert bank.paid_total_fen(key) == 1_234_56


def test_a_timeout_is_unknown_and_the_inquiry_tells_what_really_happened(
        twenty_thousand: tuple[SimulatedBank, list[PayoutInstruction], list[BankOutcome]]) -> None:
    bank, sent, outcomes = twenty_thousand
    executed = lost = 0
    for x, o in zip(sent, outcomes, strict=True):
        if o.code != "TIMEOUT":
            continue
        assert (o.status, o.message, o.retryable) == (OutcomeStatus.UNKNOWN, "交易通讯超时，请发起查询交易", False)
        answer = bank.inquire(x.idempotency_key)
        if bank.paid_total_fen(x.idempotency_key) == x.amount_fen:
            executed += 1
            assert (answer.status, answer.code, answer.message) == (OutcomeStatus.SUCCEEDED, "0000", "交易成功")
        else:
            assert answer.status is OutcomeStatus.FAILED
            if answer.code == "1002":
                lost += 1
                assert answer.retryable
                assert answer.message == "无法查询到该交易，可以重发"
            else:
                assert answer.code in CARD_CODES
                assert bank.card_fault(x.account_number) == answer.code
    assert executed + lost > 100
    assert 0.65 <= executed / (executed + lost) <= 0.92


def test_resending_a_key_that_was_paid_during_a_timeout_is_a_duplicate_and_pays_nothing() -> None:
    bank = SimulatedBank(SEED)
    acct = healthy_account(bank)
    n = 0
    while True:
        key = key_with_blip(bank, "TIMEOUT", stem=f"T{n}")
        assert bank.send(instruction(key, acct)).status is OutcomeStatus.UNKNOWN
        if bank.paid_total_fen(key):
            break
        n += 1
    resend = bank.send(instruction(key, acct))
    assert (resend.status, resend.code, resend.message, resend.retryable) == (OutcomeStatus.FAILED, "3051",
                                                                              "重复业务", False)
    assert bank.paid_total_fen(key) == 1_234_56
    assert bank.inquire(key).status is OutcomeStatus.SUCCEEDED


def test_a_key_lost_in_a_timeout_is_paid_once_when_resent() -> None:
    bank = SimulatedBank(SEED)
    acct = healthy_account(bank)
    n = 0
    while True:
        key = key_with_blip(bank, "TIMEOUT", stem=f"X{n}")
        bank.send(instruction(key, acct))
        if not bank.paid_total_fen(key):
            break
        n += 1
    assert bank.inquire(key).code == "1002"
    while bank.send(instruction(key, acct)).status is not OutcomeStatus.SUCCEEDED:
        pass
    assert bank.paid_total_fen(key) == 1_234_56
    assert bank.send(instruction(key, acct)).code == "3051"
    assert bank.paid_total_fen(key) == 1_234_56


def test_no_key_is_ever_paid_twice_however_often_it_is_sent() -> None:
    bank = SimulatedBank(SEED)
    sent = [instruction(f"R{i}", account(i), 10_000 + i) for i in range(3000)]
    for _ in range(4):
        for x in sent:
            bank.send(x)
    for x in sent:
        assert bank.paid_total_fen(x.idempotency_key) in (0, x.amount_fen)
        assert bank.attempts(x.idempotency_key) == 4
    assert bank.executed_keys() == {x.idempotency_key for x in sent if bank.paid_total_fen(x.idempotency_key)}
    assert len(bank.executed_keys()) >= 2900


def test_concurrent_sends_of_the_same_keys_pay_each_key_once() -> None:
    bank = SimulatedBank(SEED)
    sent = [instruction(f"C{i}", account(i)) for i in range(500)]

    def worker() -> None:
        for x in sent:
            bank.send(x)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(bank.paid_total_fen(x.idempotency_key) in (0, x.amount_fen) for x in sent)


def test_inquiring_about_a_key_never_sent_says_it_cannot_be_found() -> None:
    answer = SimulatedBank(SEED).inquire("never-sent")
    assert (answer.status, answer.code, answer.message, answer.retryable) == (
        OutcomeStatus.FAILED, "1002", "无法查询到该交易，可以重发", True)
    assert json.loads(answer.raw)["INFO"]["RET_CODE"] == "1002"


def test_inquiring_after_a_definitive_failure_repeats_the_failure() -> None:
    bank = SimulatedBank(SEED, card_faults={account(7): "3039"})
    key = clean_key(bank, "F")
    bank.send(instruction(key, account(7)))
    answer = bank.inquire(key)
    assert (answer.status, answer.code, answer.message, answer.retryable) == (OutcomeStatus.FAILED, "3039",
                                                                              "账户已关户", False)


def test_format_problems_are_rejected_without_paying() -> None:
    bank = SimulatedBank(SEED)
    acct = healthy_account(bank)
    assert bank.send(instruction(clean_key(bank, "Z"), acct, 0)).code == "3040"
    assert bank.send(instruction(clean_key(bank, "U"), acct, currency="USD")).code == "3036"
    assert bank.send(instruction(clean_key(bank, "A"), "6222-0200")).code == "3030"
    assert not bank.executed_keys()


def test_an_outage_makes_one_bank_answer_system_busy_until_it_ends() -> None:
    bank = SimulatedBank(SEED, outage_banks={"CCB"})
    acct = healthy_account(bank)
    key = clean_key(bank, "O")
    assert bank.send(instruction(key, acct, bank="CCB")).code == "3028"
    bank.set_outage("CCB", down=False)
    assert bank.send(instruction(clean_key(bank, "O", attempt=2), acct, bank="CCB")).code in ("0000", "3028",
                                                                                               "3024", "TIMEOUT")
    assert bank.send(instruction(clean_key(bank, "Q"), acct, bank="ICBC")).code == "0000"


def test_forcing_an_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown response code"):
        SimulatedBank(SEED, card_faults={account(1): "9999"})


def test_raw_responses_look_like_aipg_and_mask_the_account(
        twenty_thousand: tuple[SimulatedBank, list[PayoutInstruction], list[BankOutcome]]) -> None:
    bank, sent, outcomes = twenty_thousand
    for x, o in zip(sent[:2000], outcomes[:2000], strict=True):
        body = json.loads(o.raw)
        assert body["INFO"]["REQ_SN"] == x.idempotency_key
        assert x.account_number not in o.raw
        assert x.account_number not in repr(o)
        if o.code != "TIMEOUT":
            assert body["INFO"]["RET_CODE"] == "0000"
            (detail,) = body["RET_DETAILS"]
            assert detail["ACCOUNT_NO"] == mask_pan(x.account_number)
            assert (detail["AMOUNT"], detail["RET_CODE"], detail["ERR_MSG"]) == (str(x.amount_fen), o.code, o.message)
        answer = bank.inquire(x.idempotency_key)
        assert x.account_number not in answer.raw
        assert answer.scheme == o.scheme == "allinpay"


def test_a_state_file_lets_a_new_process_answer_inquiries_consistently(tmp_path: Path) -> None:
    state = tmp_path / "bank.jsonl"
    sent = [instruction(f"S{i}", account(i)) for i in range(3000)]
    with SimulatedBank(SEED, state) as first:
        for x in sent:
            first.send(x)
        answers = [first.inquire(x.idempotency_key) for x in sent]
        paid = first.executed_keys()
    with SimulatedBank(SEED, state) as later:
        assert later.executed_keys() == paid
        assert [later.inquire(x.idempotency_key) for x in sent] == answers
        resent = [later.send(x) for x in sent[:300]]
    assert all(o.code == "3051" for x, o in zip(sent, resent, strict=False) if x.idempotency_key in paid)
    # the later process carries on exactly where a single long-lived bank would have
    single = SimulatedBank(SEED)
    for x in sent[:300]:
        single.send(x)
    assert [single.send(x) for x in sent[:300]] == resent
    reread = SimulatedBank(SEED, state)
    for x in sent[:300]:
        assert reread.attempts(x.idempotency_key) == 2
        assert reread.paid_total_fen(x.idempotency_key) == single.paid_total_fen(x.idempotency_key)


def test_the_state_file_never_stores_a_card_number(tmp_path: Path) -> None:
    state = tmp_path / "bank.jsonl"
    sent = [instruction(f"N{i}", account(i)) for i in range(300)]
    with SimulatedBank(SEED, state) as bank:
        for x in sent:
            bank.send(x)
    text = state.read_text(encoding="utf-8")
    assert all(x.account_number not in text for x in sent)
    assert len(text.splitlines()) == 300


def test_a_state_file_cut_short_by_a_crash_is_still_read(tmp_path: Path) -> None:
    state = tmp_path / "bank.jsonl"
    with SimulatedBank(SEED, state) as bank:
        for i in range(50):
            bank.send(instruction(f"W{i}", account(i)))
        paid = bank.executed_keys()
    state.write_text(state.read_text(encoding="utf-8") + '{"key":"W99","att', encoding="utf-8")
    assert SimulatedBank(SEED, state).executed_keys() == paid
    state.write_text('garbage\n{"key":"W1"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not a simulator state record"):
        SimulatedBank(SEED, state)


def test_the_banks_repr_shows_no_account_numbers() -> None:
    bank = SimulatedBank(SEED)
    bank.send(instruction("K", account(1)))
    assert account(1) not in repr(bank)
