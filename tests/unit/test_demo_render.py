"""The demo summary explains a negative "still payable" (issue 18, item 4)."""

from __future__ import annotations

from settleguard.cli.commands_demo import render
from settleguard.cli.output import console
from settleguard.demo import DemoSummary


def _rendered(s: DemoSummary) -> str:
    with console.capture() as cap:
        render(s, 1.0)
    return " ".join(cap.get().split())  # as read, whatever the terminal's width


def test_a_negative_still_payable_is_explained_as_refunds_carried_to_the_next_settlement() -> None:
    s = DemoSummary(merchants=2000, account_totals={"merchant_payable": -21736}, carried_negative=(23, -21736))
    out = _rendered(s)
    assert "-¥217.36" in out
    assert "其中 23 个商户退款多于消费，净额为负（合计 -¥217.36），结转到下一结算日抵扣" in out
    assert "23 merchant(s) refunded more than they sold" in out


def test_no_note_when_no_balance_is_negative() -> None:
    out = _rendered(DemoSummary(merchants=10, account_totals={"merchant_payable": 500}))
    assert "退款多于消费" not in out
