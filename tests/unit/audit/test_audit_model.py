"""The audit chain: canonical JSON, hashing, and the verifier naming the first bad event."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settleguard.audit.model import (
    GENESIS,
    Event,
    Fault,
    Recomputed,
    canonical,
    cover,
    event_hash,
    id_ranges,
    make_event,
    verify,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def build(n: int, payloads: list[dict[str, object]] | None = None) -> list[Event]:
    out: list[Event] = []
    for i in range(n):
        payload = payloads[i] if payloads else {"n": i, "text": f"事件 {i}"}
        out.append(make_event(out[-1] if out else None, at=T0 + timedelta(seconds=i, microseconds=i),
                              actor="op", kind="payout.status", subject_type="payout", subject_id=str(i),
                              payload=payload))
    return out


def test_canonical_json_is_sorted_compact_and_unicode() -> None:
    assert canonical({"b": 1, "a": "户名不符"}) == '{"a":"户名不符","b":1}'
    assert canonical({"a": "户名不符", "b": 1}) == canonical({"b": 1, "a": "户名不符"})
    assert canonical({"x": {"z": [1, 2], "y": None}}) == '{"x":{"y":null,"z":[1,2]}}'


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=10), st.none()), max_size=6))
def test_canonical_json_independent_of_key_order(d: dict[str, object]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert canonical(d) == canonical(reversed_d)
    assert json.loads(canonical(d)) == d


def test_hash_formula() -> None:
    e = build(1)[0]
    body = canonical({"id": 1, "at": "2026-11-20T08:00:00.000000Z", "actor": "op", "kind": "payout.status",
                      "subject_type": "payout", "subject_id": "0", "payload": {"n": 0, "text": "事件 0"}})
    assert e.prev_hash == GENESIS
    assert e.hash == hashlib.sha256(("0" * 64 + "\n" + body).encode()).hexdigest()
    assert e.payload == '{"n":0,"text":"事件 0"}'


def test_hash_depends_on_every_field() -> None:
    base = dict(id=1, at=T0, actor="a", kind="k", subject_type="s", subject_id="1", payload={"x": 1})
    h = event_hash(GENESIS, **base)  # type: ignore[arg-type]
    for field, other in [("id", 2), ("at", T0 + timedelta(microseconds=1)), ("actor", "b"), ("kind", "j"),
                         ("subject_type", None), ("subject_id", "2"), ("payload", {"x": 2})]:
        assert event_hash(GENESIS, **{**base, field: other}) != h, field  # type: ignore[arg-type]
    assert event_hash("1" * 64, **base) != h  # type: ignore[arg-type]


def test_intact_chain_verifies() -> None:
    chain = build(6)
    v = verify(chain)
    assert v.ok
    assert v.checked == 6
    assert v.head_id == 6
    assert v.head_hash == chain[-1].hash
    assert verify([]).ok


def test_edit_is_found() -> None:
    chain = build(6)
    chain[3] = replace(chain[3], payload='{"n":99,"text":"事件 3"}')
    v = verify(chain)
    assert v.problem is not None
    assert v.problem.event_id == 4
    assert v.problem.fault is Fault.EDITED
    assert "被修改" in v.problem.zh
    assert "edited" in v.problem.en


def test_non_canonical_payload_is_an_edit() -> None:
    chain = build(3)
    chain[1] = replace(chain[1], payload='{"text":"事件 1", "n":1}')
    v = verify(chain)
    assert v.problem is not None
    assert v.problem.event_id == 2
    assert v.problem.fault is Fault.EDITED


def test_delete_is_found() -> None:
    chain = build(6)
    del chain[2]
    v = verify(chain)
    assert v.problem is not None
    assert v.problem.event_id == 4
    assert v.problem.fault is Fault.DELETED
    first = build(3)[1:]
    v = verify(first)
    assert v.problem is not None
    assert v.problem.event_id == 2
    assert v.problem.fault is Fault.DELETED


def test_swap_is_reported_as_reordered() -> None:
    chain = build(6)
    a, b = chain[1], chain[4]
    chain[1], chain[4] = replace(b, id=2), replace(a, id=5)
    v = verify(chain)
    assert v.problem is not None
    assert v.problem.event_id == 2
    assert v.problem.fault is Fault.REORDERED


def test_insert_in_the_middle_is_found() -> None:
    chain = build(6)
    forged = make_event(chain[2], at=T0, actor="mallory", kind="payout.status", subject_type=None, subject_id=None,
                        payload={"forged": True})
    tampered = [*chain[:3], forged, *(replace(e, id=e.id + 1) for e in chain[3:])]
    v = verify(tampered)
    assert v.problem is not None
    assert v.problem.event_id == 5
    assert v.problem.fault is Fault.INSERTED


def test_covered_rows_checked() -> None:
    chain = build(3, [{"a": 1}, {"covers": cover("payout_events", [(1, 3)], 3, "d" * 64)}, {"a": 2}])
    assert verify(chain, {2: Recomputed(3, "d" * 64)}).ok
    for now in ({2: Recomputed(3, "e" * 64)}, {2: Recomputed(2, "d" * 64)}, {}):
        v = verify(chain, now)
        assert v.problem is not None
        assert v.problem.event_id == 2
        assert v.problem.fault is Fault.COVERED_ROWS


def test_id_ranges() -> None:
    assert id_ranges([3, 1, 2, 7, 9, 8, 12]) == [(1, 3), (7, 9), (12, 12)]
    assert id_ranges([]) == []


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        make_event(None, at=datetime(2026, 1, 1), actor="a", kind="k", subject_type=None,  # noqa: DTZ001
                   subject_id=None, payload={})


MUTATIONS = ("edit_payload", "edit_actor", "edit_hash", "delete", "swap", "insert", "edit_prev")


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=2, max_value=25), data=st.data())
def test_any_single_mutation_is_found_at_the_right_event(n: int, data: st.DataObject) -> None:
    chain = build(n)
    kind = data.draw(st.sampled_from(MUTATIONS))
    if kind == "delete":
        i = data.draw(st.integers(0, n - 2))  # the last one is only found against an exported head
        expected = chain[i + 1].id
        del chain[i]
    elif kind == "swap":
        i = data.draw(st.integers(0, n - 2))
        j = data.draw(st.integers(i + 1, n - 1))
        a, b = chain[i], chain[j]
        chain[i], chain[j] = replace(b, id=a.id), replace(a, id=b.id)
        expected = a.id
    elif kind == "insert":
        i = data.draw(st.integers(0, n - 1))  # insert before chain[i]
        forged = make_event(chain[i - 1] if i else None, at=T0, actor="x", kind="k", subject_type=None,
                            subject_id=None, payload={"forged": True})
        chain = [*chain[:i], forged, *(replace(e, id=e.id + 1) for e in chain[i:])]
        expected = i + 2
    else:
        i = data.draw(st.integers(0, n - 1))
        e = chain[i]
        if kind == "edit_payload":
            chain[i] = replace(e, payload=canonical({**json.loads(e.payload), "n": -1}))
        elif kind == "edit_actor":
            chain[i] = replace(e, actor=e.actor + "x")
        elif kind == "edit_hash":
            chain[i] = replace(e, hash="f" * 64)  # recomputing it shows the mismatch at the event itself
        else:
            chain[i] = replace(e, prev_hash="a" * 64)
        expected = e.id
    v = verify(chain)
    assert v.problem is not None, kind
    assert v.problem.event_id == expected, (kind, v.problem)
