"""Access use cases: add users, issue API tokens, disable users (``settleguard users ...``); who a token or a
session belongs to; log in (rate-limited, argon2id) and out. Each in one transaction with its audit event;
a refusal raises :class:`UserError` or :class:`LoginRefused` and changes nothing (a failed login is counted).

A token is ``sgt_`` + 43 URL-safe characters (256 random bits); it is shown once and only its SHA-256
and its first 12 characters (to tell tokens apart) are stored. Session ids are kept as SHA-256 too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from settleguard.access import model, passwords
from settleguard.access import repository as repo
from settleguard.access.model import LoginLimit, Principal, Role, retry_after
from settleguard.audit import service as audit
from settleguard.merchants import repository as merchant_repo

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
            m = merchant_repo.merchant_by_no(conn, merchant_no)
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


# --- who is calling ------------------------------------------------------------------------------


def principal(user: repo.UserRow, via: str, csrf: str | None = None) -> Principal:
    return Principal(user.id, user.username, Role(user.role), user.merchant_id, via, user.display_name, csrf)


def token_principal(engine: Engine, token: str, now: datetime, touch_every: timedelta) -> Principal | None:
    """The caller holding ``token`` (a live token of an enabled user), or None; records its use at most
    once per ``touch_every`` (no write on most requests)."""
    with engine.connect() as conn:
        found = repo.user_for_token(conn, digest(token))
    if found is None:
        return None
    user, token_id, last_used = found
    if last_used is None or last_used < now - touch_every:
        with engine.begin() as conn:
            repo.touch_token(conn, token_id, now, touch_every)
    return principal(user, "token")


def session_principal(engine: Engine, session_id: str, now: datetime) -> Principal | None:
    """The caller of an unexpired session of an enabled user (with the session's CSRF token), or None."""
    with engine.connect() as conn:
        found = repo.user_for_session(conn, digest(session_id), now)
    if found is None:
        return None
    user, csrf = found
    return principal(user, "session", csrf)


# --- login and logout ---------------------------------------------------------------------------


class LoginRefused(Exception):
    """A refused login: too many recent failures (``retry_after`` seconds to wait) or a wrong username or
    password (``retry_after`` None; the failure was counted)."""

    def __init__(self, retry_after: int | None) -> None:
        super().__init__("too many failed logins" if retry_after is not None else "wrong username or password")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Login:
    principal: Principal
    session_id: str  # for the cookie; the database keeps its SHA-256
    csrf_token: str


def login(engine: Engine, *, username: str, password: str, client: str, now: datetime, limit: LoginLimit,
          session_ttl: timedelta) -> Login:
    """Check a username and password (rate-limited) and open a session."""
    since = now - limit.window
    with engine.connect() as conn:
        by_user = repo.recent_failures(conn, username=username, since=since, limit=limit.per_username)
        by_client = repo.recent_failures(conn, client=client, since=since, limit=limit.per_client)
        found = repo.password_hash_of(conn, username)
    waits = [w for w in (retry_after(by_user, limit.per_username, limit.window, now),
                         retry_after(by_client, limit.per_client, limit.window, now)) if w is not None]
    if waits:
        raise LoginRefused(max(waits))
    if found is None:
        passwords.check_dummy(password)  # the same time as for a real user
        ok = False
    else:
        ok = passwords.verify(found[1], password) and not found[0].disabled
    if not ok or found is None:
        with engine.begin() as conn:
            repo.add_login_failure(conn, username=username, client=client, now=now)
            repo.purge_failures(conn, now - 2 * limit.window)
        raise LoginRefused(None)
    user, stored = found
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    rehash = passwords.hash_password(password) if passwords.needs_rehash(stored) else None
    with engine.begin() as conn:
        repo.clear_failures(conn, username)
        repo.delete_expired_sessions(conn, now)
        repo.add_session(conn, session_sha256=digest(session_id), user_id=user.id, csrf_token=csrf, now=now,
                         expires_at=now + session_ttl)
        if rehash is not None:
            repo.set_password_hash(conn, user.id, rehash)
        audit.record(conn, user.username, "user.login", ("user", user.id), {"client": client}, now)
    return Login(principal(user, "session", csrf), session_id, csrf)


def logout(engine: Engine, session_id: str) -> bool:
    """End a session; False when there was none."""
    with engine.begin() as conn:
        return repo.delete_session(conn, digest(session_id))
