"""How payouts.files cuts a report's statuses into chunks: a small first chunk (the database starts
while the rest is parsed), then full ones; exactly one chunk, the last, is flagged final (it is the one
applied together with the implied statuses)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from settleguard.payouts.files import _final_chunks


@given(n=st.integers(0, 60), size=st.integers(1, 9), first=st.integers(1, 9))
def test_final_chunks_keep_every_item_in_order_and_flag_only_the_last(n: int, size: int, first: int) -> None:
    chunks = list(_final_chunks(range(n), size, first))
    assert [x for chunk, _ in chunks for x in chunk] == list(range(n))
    assert [final for _, final in chunks] == [False] * (len(chunks) - 1) + [True]
    sizes = [len(chunk) for chunk, _ in chunks]
    assert all(s == (first if i == 0 else size) for i, s in enumerate(sizes[:-1]))
    assert sizes[-1] < (first if len(chunks) == 1 else size)  # the final chunk is short (empty on a full end)
