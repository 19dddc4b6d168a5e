"""The simulated bank verification service: deterministic by seed and card, realistic shares, bank-like
codes, exact comparisons against a registered book of holders, and no card number in any answer."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from settleguard.cards.bins import luhn_complete
from settleguard.cards.verifier import CardStatus, Element, VerificationOutcome
from settleguard.cards.verifier_sim import STATUS_ANSWERS, Holder, SimulatedVerifier

ID = "11010519491231002X"


def pans(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [luhn_complete("621226" + "".join(rng.choice("0123456789") for _ in range(12))) for _ in range(n)]


def test_answers_depend_only_on_seed_and_card() -> None:
    cards = pans(300)
    a, b, other = SimulatedVerifier(7), SimulatedVerifier(7), SimulatedVerifier(8)
    assert [a.inquire_status(p) for p in cards] == [b.inquire_status(p) for p in cards]
    assert [a.verify_four_elements(p, "张三", ID, "13812345678") for p in cards] == [
        b.verify_four_elements(p, "张三", ID, "13812345678") for p in cards]
    assert [a.status_of(p) for p in cards] != [other.status_of(p) for p in cards]


def test_status_shares_look_like_a_real_book_of_debit_cards() -> None:
    sim = SimulatedVerifier(11)
    counts = Counter(sim.status_of(p) for p in pans(20_000))
    assert 0.91 < counts[CardStatus.NORMAL] / 20_000 < 0.95
    assert set(counts) == set(CardStatus)  # every status occurs
    assert 0.01 < counts[CardStatus.FROZEN] / 20_000 < 0.02


@pytest.mark.parametrize("status", list(CardStatus))
def test_a_bad_status_answers_with_the_banks_code_and_fails_verification(status: CardStatus) -> None:
    pan = pans(1)[0]
    sim = SimulatedVerifier(1, overrides={pan: status})
    answer = sim.inquire_status(pan)
    assert (answer.status, answer.code, answer.message) == (status, *STATUS_ANSWERS[status])
    v = sim.verify_four_elements(pan, "张三", ID, "13812345678")
    if status is CardStatus.NORMAL:
        assert v.ok
    else:
        assert (v.outcome, v.card_status, v.mismatched) == (VerificationOutcome.CARD_PROBLEM, status, (Element.CARD,))
        assert v.code == STATUS_ANSWERS[status][0]


def test_a_registered_book_of_holders_is_compared_exactly() -> None:
    pan, unknown = pans(2)
    sim = SimulatedVerifier(1, holders={pan: Holder("张三", ID, "13812345678")},
                            overrides={pan: CardStatus.NORMAL, unknown: CardStatus.NORMAL})
    assert sim.verify_four_elements(pan, " 张三 ", ID.lower(), "13812345678").ok
    wrong = {
        Element.NAME: sim.verify_four_elements(pan, "张四", ID, "13812345678"),
        Element.ID_NUMBER: sim.verify_four_elements(pan, "张三", "110105194912310011", "13812345678"),
        Element.PHONE: sim.verify_four_elements(pan, "张三", ID, "13900000000"),
    }
    for element, answer in wrong.items():
        assert answer.outcome is VerificationOutcome.MISMATCH
        assert answer.mismatched == (element,)
        assert answer.code == "05"
    missing = sim.verify_four_elements(unknown, "张三", ID, "13812345678")
    assert (missing.outcome, missing.code) == (VerificationOutcome.CARD_PROBLEM, "14")


def test_without_a_book_a_few_cards_mismatch_and_numbers_failing_luhn_do_not_exist() -> None:
    sim = SimulatedVerifier(3)
    normal = [p for p in pans(5000) if sim.status_of(p) is CardStatus.NORMAL]
    outcomes = Counter(sim.verify_four_elements(p, "张三", ID, "13812345678").outcome for p in normal)
    assert 0.85 < outcomes[VerificationOutcome.MATCH] / len(normal) < 0.94
    assert outcomes[VerificationOutcome.MISMATCH] > 0
    broken = [p[:-1] + str((int(p[-1]) + 1) % 10) for p in normal[:500]]
    not_found = sum(sim.verify_four_elements(p, "张三", ID, "13812345678").code == "14" for p in broken)
    assert not_found > 470


def test_an_unavailable_bank_answers_error_at_the_configured_rate() -> None:
    sim = SimulatedVerifier(3, error_rate=0.2)
    answers = [sim.inquire_status(p) for p in pans(2000)]
    unanswered = sum(not a.answered for a in answers)
    assert 300 < unanswered < 500
    assert {a.code for a in answers if not a.answered} == {"96"}
    with pytest.raises(ValueError, match="error_rate"):
        SimulatedVerifier(1, error_rate=1.0)


def test_no_answer_or_repr_contains_the_card_number() -> None:
    cards = pans(200)
    sim = SimulatedVerifier(9, holders={cards[0]: Holder("张三", ID, "13812345678")})
    for p in cards:
        texts = repr(sim.inquire_status(p)) + repr(sim.verify_four_elements(p, "张三", ID, "13812345678"))
        assert p not in texts
        assert p[-10:] not in texts
    assert cards[0] not in repr(sim)
