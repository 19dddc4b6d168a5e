"""The portal's guidance for merchants (web/console/portal_guidance.py): the merchant's own steps, the
platform's steps in neutral words, no operations instruction, and one group per set of steps (issue 18)."""

from __future__ import annotations

from settleguard.diagnosis import classify, knowledge_base
from settleguard.web.console.portal_guidance import NOTHING_TO_DO, groups, merchant_steps, step_ids


def test_operations_steps_never_reach_the_merchant() -> None:
    ids = step_ids()
    steps = knowledge_base().steps
    for sid in ("keep_evidence", "inquire_first", "manual_review", "fix_instruction_data", "compliance_review"):
        for lang in ("zh", "en"):
            text = steps[sid].en if lang == "en" else steps[sid].zh
            shown, _ = merchant_steps([text], ids, lang)
            assert text not in shown, sid
    shown, act = merchant_steps([steps["keep_evidence"].zh], ids, "zh")
    assert (shown, act) == ((NOTHING_TO_DO[0],), False)
    shown, act = merchant_steps([steps["rebind_card"].zh, steps["keep_evidence"].zh], ids, "zh")
    assert (shown, act) == ((steps["rebind_card"].zh,), True)


def test_payouts_with_the_same_steps_are_one_group_the_merchants_first() -> None:
    ids = step_ids()
    mismatch = classify("allinpay", "3031", "账号户名不符").to_dict("zh")
    busy = classify("allinpay", "3028", "系统忙，请稍后再提交").to_dict("zh")
    trouble = [{"id": 1, "status": "retry_scheduled", "diagnosis": busy},
               {"id": 2, "status": "held", "diagnosis": mismatch},
               {"id": 3, "status": "held", "diagnosis": mismatch},
               {"id": 4, "status": "result_unknown", "diagnosis": None}]
    got = groups(trouble, ids, "zh")
    assert [[p["id"] for p in g["payouts"]] for g in got] == [[2, 3], [1], [4]]
    assert [g["act"] for g in got] == [True, False, False]
    assert got[0]["reasons"] == [mismatch["meaning"]]
    assert all("保留银行返回原文" not in s for g in got for s in g["steps"])
