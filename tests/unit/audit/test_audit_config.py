"""What of the settings may enter the audit trail: never a secret."""

from __future__ import annotations

from settleguard.audit.service import is_secret, public_settings
from settleguard.config import Settings


def test_secrets_are_left_out_and_a_url_password_is_masked() -> None:
    values = Settings(db="postgresql://sg:hunter2@db.example/sg", key="c2VjcmV0LWtleS1tYXRlcmlhbA==").model_dump()
    values.update({"smtp_password": "pw-123", "webhook_secret": "whs-456", "api_token": "tok-789"})
    out = public_settings(values)
    text = repr(out)
    for secret in ("hunter2", "c2VjcmV0LWtleS1tYXRlcmlhbA==", "pw-123", "whs-456", "tok-789"):
        assert secret not in text
    assert "key" not in out
    assert "smtp_password" not in out
    assert out["db"] == "postgresql://sg:***@db.example/sg"
    assert out["key_file"] is None  # default: beside the SQLite file (cards.custody)
    assert out["timezone"] == "Asia/Shanghai"


def test_secret_names() -> None:
    assert is_secret("key")
    assert is_secret("SMTP_PASSWORD")
    assert is_secret("webhook_secret_cipher")
    assert not is_secret("key_file")
    assert not is_secret("timezone")
