"""A payout's evidence manifest (``payout_id`` instead of ``case_id``) and its check, and the masking of a
notice's delivery target (evidence/model.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settleguard.evidence.model import MANIFEST, build_manifest, check, safe_target

FILES = {"payout.json": b"{}", "attempts.csv": b"id\n1\n"}
AT = "2026-11-20T10:00:00+00:00"


def test_a_payouts_manifest_names_the_payout_and_not_a_case() -> None:
    doc = json.loads(build_manifest(FILES, payout_id=42, created_at=AT, generator="settleguard 0"))
    assert doc["payout_id"] == 42
    assert "case_id" not in doc
    rep = check(build_manifest(FILES, payout_id=42, created_at=AT, generator="g"), [*FILES, MANIFEST],
                FILES.__getitem__)
    assert (rep.ok, rep.payout_id, rep.case_id, rep.subject_zh_en) == (True, 42, None, "出款 payout 42")
    assert rep.to_dict()["payout_id"] == 42
    case = check(build_manifest(FILES, case_id=7, created_at=AT, generator="g"), list(FILES), FILES.__getitem__)
    assert (case.case_id, case.payout_id, case.subject_zh_en) == (7, None, "工单 case 7")


def test_a_bundle_is_about_exactly_one_case_or_payout() -> None:
    with pytest.raises(ValueError, match="one case or one payout"):
        build_manifest(FILES, created_at=AT, generator="g")
    with pytest.raises(ValueError, match="one case or one payout"):
        build_manifest(FILES, case_id=1, payout_id=2, created_at=AT, generator="g")
    doc = json.loads(build_manifest(FILES, payout_id=2, created_at=AT, generator="g"))
    for broken in ({**doc, "case_id": 1}, {k: v for k, v in doc.items() if k != "payout_id"},
                   {**doc, "payout_id": "two"}):
        rep = check(json.dumps(broken).encode(), list(FILES), FILES.__getitem__)
        assert not rep.ok
        assert rep.errors


def test_a_webhook_target_loses_user_password_query_and_fragment() -> None:
    assert safe_target("webhook", "https://u:p@hooks.example.com:8443/a/b?token=s3cret#x") == (
        "https://hooks.example.com:8443/a/b")
    assert safe_target("webhook", "http://[::1]:9000/hook?k=v") == "http://[::1]:9000/hook"
    assert safe_target("webhook", "http://[bad") == "***"
    assert safe_target("sms", "139****1111") == "139****1111"
    assert safe_target("email", "ops@example.com") == "ops@example.com"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=6, max_size=30),
       st.sampled_from(["?token=", "?a=1&sig=", "#", "?"]), st.booleans())
def test_no_query_or_credential_survives(secret: str, how: str, with_user: bool) -> None:
    user = f"{secret}:{secret}@" if with_user else ""
    got = safe_target("webhook", f"https://{user}hooks.example.com/settle{how}{secret}")
    assert got == "https://hooks.example.com/settle"
