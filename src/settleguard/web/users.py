"""Managing users and API tokens (``settleguard users ...``): checks, hashing, audit events.

A token is ``sgt_`` + 43 URL-safe characters (256 random bits); it is shown once and only its SHA-256
and its first 12 characters (to tell tokens apart) are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from settleguard.audit import service as audit
from settleguard.cards import repository as card_repo
from settleguard.web import model, passwords
from settleguard.web import repository as repo

TOKEN_PREFIX = "sgt_"
VISIBLE = 12


class UserError(ValueError):
    """A user command that cannot be carried out; nothing changed."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en


def digest(secret: str) -> str:
    """SHA-256 (hex) of a token or session id: what the database keeps."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _refuse(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise UserError("；".join(zh for zh, _ in problems), "; ".join(en for _, en in problems))


def add_user(engine: Engine, *, username: str, password: str, role: model.Role, merchant_no: str | None,
             display_name: str, now: datetime, actor: str) -> repo.UserRow:
    """Create a user with an argon2id hash of ``password``; a merchant user names its merchant."""
    _refuse(model.user_problems(username, role, merchant_no is not None)
            + model.password_problems(password, username))
    hashed = passwords.hash_password(password)  # slow on purpose: outside the transaction
    with engine.begin() as conn:
        merchant_id = None
        if merchant_no is not None:
            m = card_repo.merchant_by_no(conn, merchant_no)
            if m is None:
                raise UserError(f"商户 {merchant_no} 不存在", f"no merchant {merchant_no}")
            merchant_id = m.id
        if repo.user_by_username(conn, username) is not None:
            raise UserError(f"用户 {username} 已存在", f"user {username} already exists")
        try:
            uid = repo.add_user(conn, username=username, password_hash=hashed, role=str(role), merchant_id=merchant_id,
                                display_name=display_name or username, now=now)
        except IntegrityError:  # a concurrent add of the same name
            raise UserError(f"用户 {username} 已存在", f"user {username} already exists") from None
        audit.record(conn, actor, "user.add", ("user", uid),
                     {"username": username, "role": str(role), "merchant_id": merchant_id}, now)
        row = repo.user_by_username(conn, username)
    assert row is not None
    return row


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    prefix: str
    token_id: int


def issue_token(engine: Engine, *, username: str, name: str, now: datetime, actor: str) -> IssuedToken:
    """A new API token for ``username``; only its digest and prefix are stored."""
    if not name.strip() or len(name) > 64:
        raise UserError("令牌名称须为 1-64 个字符", "a token name has 1-64 characters")
    token = new_token()
    with engine.begin() as conn:
        user = repo.user_by_username(conn, username)
        if user is None:
            raise UserError(f"用户 {username} 不存在", f"no user {username}")
        if user.disabled:
            raise UserError(f"用户 {username} 已停用", f"user {username} is disabled")
        tid = repo.add_token(conn, user_id=user.id, name=name, token_sha256=digest(token), prefix=token[:VISIBLE],
                             now=now)
        audit.record(conn, actor, "user.token", ("user", user.id),
                     {"username": username, "token_id": tid, "name": name, "prefix": token[:VISIBLE]}, now)
    return IssuedToken(token, token[:VISIBLE], tid)


def disable_user(engine: Engine, *, username: str, now: datetime, actor: str) -> repo.UserRow:
    """Disable a user: its sessions end and its tokens are revoked, at once."""
    with engine.begin() as conn:
        user = repo.user_by_username(conn, username)
        if user is None:
            raise UserError(f"用户 {username} 不存在", f"no user {username}")
        repo.set_disabled(conn, username, True)
        sessions = repo.delete_sessions_of(conn, user.id)
        tokens = repo.revoke_tokens(conn, user.id, now)
        audit.record(conn, actor, "user.disable", ("user", user.id),
                     {"username": username, "sessions_ended": sessions, "tokens_revoked": tokens}, now)
        row = repo.user_by_username(conn, username)
    assert row is not None
    return row


def list_users(engine: Engine) -> list[tuple[repo.UserRow, int]]:
    """Every user with its number of live tokens."""
    with engine.connect() as conn:
        counts = repo.token_counts(conn)
        return [(u, counts.get(u.id, 0)) for u in repo.users(conn)]
