"""SQL for users, API tokens, browser sessions and login failures: the only module that touches these tables.
No rules here (access/model.py, access/service.py); secrets arrive already hashed (SHA-256 of tokens and
session ids, argon2 of passwords)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, func, insert, or_, select, update

from settleguard.db import tables as t


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    role: str
    merchant_id: int | None
    merchant_no: str | None
    display_name: str
    disabled: bool
    created_at: datetime


def _user_query() -> Select[Any]:
    u, m = t.users, t.merchants
    return (select(u.c.id, u.c.username, u.c.role, u.c.merchant_id, m.c.merchant_no, u.c.display_name,
                   u.c.disabled, u.c.created_at)
            .select_from(u.outerjoin(m, m.c.id == u.c.merchant_id)))


def _user(r: Any) -> UserRow:
    return UserRow(int(r.id), r.username, r.role, r.merchant_id, r.merchant_no, r.display_name, bool(r.disabled),
                   r.created_at)


def add_user(conn: Connection, *, username: str, password_hash: str, role: str, merchant_id: int | None,
             display_name: str, now: datetime) -> int:
    """Insert a user; raises sqlalchemy IntegrityError when the username is taken."""
    pk = conn.execute(insert(t.users).values(
        username=username, password_hash=password_hash, role=role, merchant_id=merchant_id,
        display_name=display_name, disabled=False, created_at=now)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def user_by_username(conn: Connection, username: str) -> UserRow | None:
    r = conn.execute(_user_query().where(t.users.c.username == username)).first()
    return None if r is None else _user(r)


def password_hash_of(conn: Connection, username: str) -> tuple[UserRow, str] | None:
    """The user and its password hash, for a login."""
    r = conn.execute(_user_query().add_columns(t.users.c.password_hash).where(t.users.c.username == username)).first()
    return None if r is None else (_user(r), str(r.password_hash))


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash))


def users(conn: Connection) -> list[UserRow]:
    return [_user(r) for r in conn.execute(_user_query().order_by(t.users.c.id))]


def set_disabled(conn: Connection, username: str, disabled: bool) -> bool:
    """Disable (or enable) a user; False when there is no such user."""
    return conn.execute(update(t.users).where(t.users.c.username == username).values(disabled=disabled)).rowcount > 0


def token_counts(conn: Connection) -> dict[int, int]:
    """Live (not revoked) tokens per user id."""
    k = t.api_tokens
    return {int(uid): int(n) for uid, n in conn.execute(
        select(k.c.user_id, func.count()).where(k.c.revoked_at.is_(None)).group_by(k.c.user_id))}


# --- tokens -------------------------------------------------------------------------------------


def add_token(conn: Connection, *, user_id: int, name: str, token_sha256: str, prefix: str, now: datetime) -> int:
    pk = conn.execute(insert(t.api_tokens).values(user_id=user_id, name=name, token_sha256=token_sha256,
                                                  prefix=prefix, created_at=now)).inserted_primary_key
    assert pk is not None
    return int(pk[0])


def _token_query() -> Select[Any]:
    k = t.api_tokens
    return (_user_query().add_columns(k.c.id.label("token_id"), k.c.last_used_at)
            .join(k, k.c.user_id == t.users.c.id)
            .where(k.c.token_sha256 == bindparam("token_sha256"), k.c.revoked_at.is_(None),
                   t.users.c.disabled.is_(False)))


_TOKEN = _token_query()  # built once: every API request with a token runs it


def user_for_token(conn: Connection, token_sha256: str) -> tuple[UserRow, int, datetime | None] | None:
    """(user, token id, last used) for a live token of an enabled user."""
    r = conn.execute(_TOKEN, {"token_sha256": token_sha256}).first()
    return None if r is None else (_user(r), int(r.token_id), r.last_used_at)


def touch_token(conn: Connection, token_id: int, now: datetime, every: timedelta) -> None:
    """Record that a token was used, at most once per ``every`` (no write on most requests)."""
    k = t.api_tokens
    conn.execute(update(k).where(k.c.id == token_id, or_(k.c.last_used_at.is_(None), k.c.last_used_at < now - every))
                 .values(last_used_at=now))


def revoke_tokens(conn: Connection, user_id: int, now: datetime) -> int:
    k = t.api_tokens
    return conn.execute(update(k).where(k.c.user_id == user_id, k.c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount


# --- sessions -----------------------------------------------------------------------------------


def add_session(conn: Connection, *, session_sha256: str, user_id: int, csrf_token: str, now: datetime,
                expires_at: datetime) -> None:
    conn.execute(insert(t.web_sessions).values(session_sha256=session_sha256, user_id=user_id, csrf_token=csrf_token,
                                               created_at=now, expires_at=expires_at))


def user_for_session(conn: Connection, session_sha256: str, now: datetime) -> tuple[UserRow, str] | None:
    """(user, CSRF token) for an unexpired session of an enabled user."""
    s = t.web_sessions
    r = conn.execute(_user_query().add_columns(s.c.csrf_token).join(s, s.c.user_id == t.users.c.id)
                     .where(s.c.session_sha256 == session_sha256, s.c.expires_at > now,
                            t.users.c.disabled.is_(False))).first()
    return None if r is None else (_user(r), str(r.csrf_token))


def delete_session(conn: Connection, session_sha256: str) -> bool:
    s = t.web_sessions
    return conn.execute(delete(s).where(s.c.session_sha256 == session_sha256)).rowcount > 0


def delete_sessions_of(conn: Connection, user_id: int) -> int:
    s = t.web_sessions
    return conn.execute(delete(s).where(s.c.user_id == user_id)).rowcount


def delete_expired_sessions(conn: Connection, now: datetime) -> int:
    s = t.web_sessions
    return conn.execute(delete(s).where(s.c.expires_at <= now)).rowcount


# --- login failures -----------------------------------------------------------------------------


def add_login_failure(conn: Connection, *, username: str, client: str, now: datetime) -> None:
    conn.execute(insert(t.login_failures).values(username=username[:64], client=client[:64], at=now))


def recent_failures(conn: Connection, *, username: str | None = None, client: str | None = None, since: datetime,
                    limit: int) -> list[datetime]:
    """The newest ``limit`` failure times after ``since`` for one username or one client, newest first."""
    f = t.login_failures
    q = select(f.c.at).where(f.c.at > since).order_by(f.c.at.desc()).limit(limit)
    q = q.where(f.c.username == username[:64]) if username is not None else q.where(f.c.client == (client or "")[:64])
    return [r.at for r in conn.execute(q)]


def clear_failures(conn: Connection, username: str) -> None:
    """Forget a username's failures (after a successful login)."""
    conn.execute(delete(t.login_failures).where(t.login_failures.c.username == username[:64]))


def purge_failures(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(t.login_failures).where(t.login_failures.c.at < before)).rowcount
