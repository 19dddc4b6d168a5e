"""The webhook signature (HMAC-SHA256 over "<t>.<body>") and the delivery backoff (notify/model.py)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.notify.model import (
    Backoff,
    Channel,
    SignatureError,
    body_bytes,
    channels_in,
    dedupe_key,
    mask_email,
    mask_phone,
    parse_signature,
    sign,
    verify,
)

secrets_ = st.text(min_size=1, max_size=40)
bodies = st.binary(min_size=0, max_size=400)
stamps = st.integers(min_value=1_600_000_000, max_value=2_000_000_000)


@given(secrets_, stamps, bodies)
def test_a_signature_verifies_with_the_same_secret_and_body(secret: str, ts: int, body: bytes) -> None:
    header = sign(secret, ts, body)
    assert verify(secret, header, body, now=ts + 10) == ts
    # independent recomputation: the scheme is HMAC-SHA256(secret, "<t>." + body)
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={ts},v1={expected}"


@given(secrets_, stamps, bodies, st.data())
def test_any_changed_body_byte_is_detected(secret: str, ts: int, body: bytes, data: st.DataObject) -> None:
    header = sign(secret, ts, body)
    if body:
        i = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        tampered = body[:i] + bytes([body[i] ^ flip]) + body[i + 1:]
    else:
        tampered = b"x"
    with pytest.raises(SignatureError) as e:
        verify(secret, header, tampered, now=ts)
    assert e.value.reason == "mismatch"


@given(secrets_, secrets_, stamps, bodies)
def test_another_secret_does_not_verify(secret: str, other: str, ts: int, body: bytes) -> None:
    if secret == other:
        return
    with pytest.raises(SignatureError, match="mismatch"):
        verify(other, sign(secret, ts, body), body, now=ts)


def test_a_changed_timestamp_is_a_mismatch_and_an_old_one_is_stale() -> None:
    body = body_bytes(7, "card_info_error", {"amount_fen": 123456}, "中文", "English")
    header = sign("s3cret", 1_800_000_000, body)
    _, sigs = parse_signature(header)
    forged = f"t=1800000005,v1={sigs[0]}"
    with pytest.raises(SignatureError, match="mismatch"):
        verify("s3cret", forged, body, now=1_800_000_005)
    with pytest.raises(SignatureError, match="stale"):
        verify("s3cret", header, body, now=1_800_000_000 + 301, tolerance=300)
    with pytest.raises(SignatureError, match="stale"):
        verify("s3cret", header, body, now=1_800_000_000 - 301, tolerance=300)
    assert verify("s3cret", header, body, now=1_800_000_000 + 300, tolerance=300) == 1_800_000_000


@pytest.mark.parametrize("header", ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage", "t=1;v1=2"])
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureError, match="malformed"):
        verify("s", header, b"{}", now=1)


def test_the_body_is_utf8_json_with_chinese_unescaped_and_stable() -> None:
    a = body_bytes(1, "returned", {"b": 2, "a": "退票"}, "退票", "returned")
    assert a == body_bytes(1, "returned", {"a": "退票", "b": 2}, "退票", "returned")
    assert "退票".encode() in a


@given(st.integers(1, 30), st.floats(0, 1, exclude_max=True))
def test_backoff_waits_are_jittered_within_an_exponential_capped_ceiling(failed: int, draw: float) -> None:
    b = Backoff(base_seconds=30, cap_seconds=3600, max_attempts=100, floor_seconds=1)
    w = b.delay(failed, draw)
    assert 1 <= w <= b.ceiling(failed) <= 3600
    assert b.ceiling(failed) == min(3600, 30 * 2 ** (failed - 1))


def test_backoff_ceiling_grows_and_full_jitter_spans_it() -> None:
    b = Backoff(base_seconds=10, cap_seconds=100, max_attempts=5, floor_seconds=0)
    assert [b.ceiling(n) for n in range(1, 7)] == [10, 20, 40, 80, 100, 100]
    assert b.delay(3, 0.0) == 0
    assert b.delay(3, 0.5) == 20
    assert b.delay(3, 0.999999) == pytest.approx(40, rel=1e-4)


def test_backoff_gives_up_after_max_attempts() -> None:
    b = Backoff(base_seconds=10, cap_seconds=100, max_attempts=3)
    assert b.next(1, lambda: 0.5) is not None
    assert b.next(2, lambda: 0.5) is not None
    assert b.next(3, lambda: 0.5) is None


@pytest.mark.parametrize("kw", [{"base_seconds": 0}, {"cap_seconds": 1, "base_seconds": 2}, {"max_attempts": 0},
                                {"floor_seconds": 60, "base_seconds": 30}])
def test_bad_backoff_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kw)  # type: ignore[arg-type]


def test_channels_keys_and_masks() -> None:
    assert channels_in(["Email", "webhook", "email", ""]) == [Channel.email, Channel.webhook]
    with pytest.raises(ValueError, match="fax"):
        channels_in(["fax"])
    assert dedupe_key(42, "card_info_error") == "payout:42:card_info_error"
    assert dedupe_key(42, "card_info_error", 2) == "payout:42:card_info_error#2"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_email("zhang@example.com") == "z***@example.com"
