"""The evidence manifest and its check (evidence/model.py), and card-number redaction."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from settleguard.cards.model import luhn_complete
from settleguard.evidence.model import MANIFEST, build_manifest, check, redact_pans

FILES = {"b.csv": b"x,y\n1,2\n", "a/summary.html": "<p>证据</p>".encode(), "c.json": b"{}"}


def manifest(files: dict[str, bytes]) -> bytes:
    return build_manifest(files, case_id=7, created_at="2026-11-20T10:00:00+00:00", generator="settleguard 0")


def test_manifest_lists_every_file_in_name_order_with_hash_and_size() -> None:
    doc = json.loads(manifest(FILES))
    assert doc["case_id"] == 7
    assert [f["name"] for f in doc["files"]] == sorted(FILES)
    assert {f["name"]: f["size"] for f in doc["files"]} == {n: len(d) for n, d in FILES.items()}
    assert manifest(FILES) == manifest(dict(reversed(FILES.items())))  # deterministic


def test_check_names_missing_extra_and_changed() -> None:
    m = manifest(FILES)
    ok = check(m, [*FILES, MANIFEST], FILES.__getitem__)
    assert ok.ok
    assert ok.checked == 3
    tampered = {**FILES, "b.csv": b"x,y\n1,3\n", "new.txt": b"!"}
    del tampered["c.json"]
    rep = check(m, [*tampered, MANIFEST], tampered.__getitem__)
    assert (rep.changed, rep.missing, rep.extra, rep.ok) == (["b.csv"], ["c.json"], ["new.txt"], False)


def test_unreadable_member_counts_as_changed() -> None:
    def read(name: str) -> bytes:
        if name == "c.json":
            raise OSError("Bad CRC-32")
        return FILES[name]

    rep = check(manifest(FILES), [*FILES, MANIFEST], read)
    assert rep.changed == ["c.json"]
    assert rep.errors
    assert not rep.ok


def test_broken_manifest_is_an_error() -> None:
    assert not check(b"{not json", list(FILES), FILES.__getitem__).ok


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=10_000), st.integers(0, 255))
def test_any_single_byte_change_is_detected(data: bytes, where: int, flip: int) -> None:
    files = {"f.bin": data}
    m = manifest(files)
    changed = bytearray(data)
    changed[where % len(data)] ^= (flip % 255) + 1
    assert check(m, ["f.bin"], lambda _n: bytes(changed)).changed == ["f.bin"]


def test_redaction_masks_card_numbers_only() -> None:
    pan = luhn_complete("622202000000000001")
    text = f"卡号 {pan}，时间 20261119090000，金额 123456"
    out, n = redact_pans(text, lambda d: d == pan)
    assert n == 1
    assert pan not in out
    assert f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}" in out
    assert "20261119090000" in out
    assert "123456" in out
