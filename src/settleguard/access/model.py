"""Who may do what through the API, the console and the portal. Pure (no I/O, no clock).

Roles 角色:

- ``operator`` 运营: everything (read, diagnose, metrics, cases, notes, bind cards, release and cancel payouts).
- ``support`` 客服: read everything, diagnose, metrics, work cases and write notes; no money or card actions.
- ``auditor`` 审计: read-only (read, cases, diagnose, metrics, card checks).
- ``merchant`` 商户: read its own merchant's data only (no cases), check cards and re-bind its own card.
  Another merchant's resource is answered as if it did not exist (404), so its existence is not leaked.

:func:`decide` is the one place that says allow, deny (403) or hide (404); :func:`owner_verdict` is the one
owner check of a single merchant's resource, used by the API (web/auth.py) and the console (web/console).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class Role(enum.StrEnum):
    OPERATOR = "operator"
    SUPPORT = "support"
    AUDITOR = "auditor"
    MERCHANT = "merchant"


ROLE_ZH: Mapping[Role, str] = {Role.OPERATOR: "运营", Role.SUPPORT: "客服", Role.AUDITOR: "审计", Role.MERCHANT: "商户"}


class Action(enum.StrEnum):
    READ = "read"  # payouts, merchants, cards, settlements, notices (a merchant: its own only)
    DIAGNOSE = "diagnose"  # run the failure classifier (no stored data)
    METRICS = "metrics"  # system-wide figures (/metrics)
    CASE_READ = "case_read"  # cases, their contacts and notes, evidence bundles (staff only)
    CASE_WORK = "case_work"  # open, assign, change status, resolve, close, record contacts
    CASE_NOTE = "case_note"
    CARD_CHECK = "card_check"  # check a card number (no stored data)
    CARD_BIND = "card_bind"  # bind or re-bind a settlement card (a merchant: its own)
    PAYOUT_RELEASE = "payout_release"
    PAYOUT_CANCEL = "payout_cancel"
    MERCHANT_MANAGE = "merchant_manage"  # register merchants, import merchant files, freeze / unfreeze / close
    TERMINAL_REPORT = "terminal_report"  # post terminal heartbeats / telemetry (operators: a TMS bridge's token)
    RECON_RESOLVE = "recon_resolve"  # propose, approve or reject a reconciliation break's resolution (差错处理)
    RECON_READ = "recon_read"  # reconciliation: summary, breaks with both sides, runs (staff only)
    GUIDANCE_FEEDBACK = "guidance_feedback"  # mark a payout's guidance helpful or not (a merchant: its own payouts)


A = Action
STAFF_READ = frozenset({A.READ, A.DIAGNOSE, A.METRICS, A.CASE_READ, A.CARD_CHECK, A.RECON_READ})
PERMISSIONS: Mapping[Role, frozenset[Action]] = {
    Role.OPERATOR: frozenset(Action),
    Role.SUPPORT: STAFF_READ | {A.CASE_WORK, A.CASE_NOTE, A.GUIDANCE_FEEDBACK},
    Role.AUDITOR: STAFF_READ,
    Role.MERCHANT: frozenset({A.READ, A.CARD_CHECK, A.CARD_BIND, A.GUIDANCE_FEEDBACK}),
}


class Verdict(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"  # 403: the role may not do this at all
    HIDE = "hide"  # 404: a merchant user asking about another merchant's resource


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    username: str
    role: Role
    merchant_id: int | None  # set exactly for merchant users
    via: str  # "token" | "session"
    display_name: str = ""
    csrf_token: str | None = None  # the session's CSRF token (sessions only)

    @property
    def merchant_scope(self) -> int | None:
        """The merchant every listing must be limited to (None: no limit)."""
        return self.merchant_id if self.role is Role.MERCHANT else None

    def list_scope(self, asked: int | None) -> tuple[bool, int | None]:
        """(anything to show, the merchant to filter by) for a listing filtered by ``asked``: staff get what
        they asked for; a merchant user its own merchant, and nothing when it asked for another one."""
        scope = self.merchant_scope
        if scope is None:
            return True, asked
        return asked is None or asked == scope, scope


def may(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]


def decide(role: Role, action: Action, *, user_merchant_id: int | None, owner_merchant_id: int | None,
           scoped: bool) -> Verdict:
    """May a user of ``role`` (of merchant ``user_merchant_id``) do ``action``?

    ``scoped`` is True when the request is about one merchant's resource, owned by
    ``owner_merchant_id`` (None: no such resource, e.g. an unknown id); False for a request that is
    not about one merchant (a listing, which is then limited to the caller's merchant scope, or a
    diagnosis). A role without the action is denied whatever the resource; a merchant user is
    allowed only its own merchant's resources, and anything else is hidden.
    """
    if not may(role, action):
        return Verdict.DENY
    if role is Role.MERCHANT:
        if user_merchant_id is None:
            return Verdict.DENY  # a merchant user without a merchant cannot exist (a CHECK); refuse anyway
        if scoped and owner_merchant_id != user_merchant_id:
            return Verdict.HIDE
    return Verdict.ALLOW


def owner_verdict(principal: Principal, action: Action, owner_merchant_id: int | None) -> Verdict:
    """The owner check of one merchant's resource, owned by ``owner_merchant_id`` (None: no such resource):
    DENY (403) when the caller's role may not do ``action`` at all; HIDE (404) when the resource does not
    exist or belongs to another merchant than a merchant caller's; else ALLOW."""
    verdict = decide(principal.role, action, user_merchant_id=principal.merchant_id,
                     owner_merchant_id=owner_merchant_id, scoped=True)
    if verdict is Verdict.ALLOW and owner_merchant_id is None:
        return Verdict.HIDE
    return verdict


# --- users -------------------------------------------------------------------------------------

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")
MIN_PASSWORD = 10


def user_problems(username: str, role: Role, has_merchant: bool) -> list[tuple[str, str]]:
    """What is wrong with a new user, as (zh, en) pairs; empty when fine."""
    out = []
    if not USERNAME.match(username):
        out.append(("用户名须为 3-64 位字母、数字或 . _ @ -，以字母或数字开头",
                    "a username is 3-64 letters, digits or . _ @ -, starting with a letter or digit"))
    if role is Role.MERCHANT and not has_merchant:
        out.append(("商户用户必须指定商户编号 (--merchant-no)", "a merchant user needs a merchant (--merchant-no)"))
    if role is not Role.MERCHANT and has_merchant:
        out.append(("只有商户用户可以指定商户", "only merchant users belong to a merchant"))
    return out


def password_problems(password: str, username: str = "") -> list[tuple[str, str]]:
    """What is wrong with a new password, as (zh, en) pairs; empty when fine."""
    out = []
    if len(password) < MIN_PASSWORD:
        out.append((f"密码至少 {MIN_PASSWORD} 个字符", f"a password has at least {MIN_PASSWORD} characters"))
    if username and password.lower() == username.lower():
        out.append(("密码不能与用户名相同", "the password must differ from the username"))
    if password != password.strip():
        out.append(("密码首尾不能有空白", "no spaces at the start or end of a password"))
    return out


# --- login rate limit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimit:
    """At most ``per_username`` failed logins for one username, and ``per_client`` from one client
    address, within ``window``; beyond that logins are refused (429) until the oldest counted
    failure leaves the window."""

    per_username: int = 5
    per_client: int = 20
    window: timedelta = timedelta(minutes=15)


def retry_after(recent: list[datetime], limit: int, window: timedelta, now: datetime) -> int | None:
    """Seconds until another login may be tried, or None when not blocked.

    ``recent`` are the times of the latest failures (newest first, at least ``limit`` of them when
    there are that many); blocked while ``limit`` of them lie within ``window`` before ``now``.
    """
    inside = [at for at in recent if at > now - window]
    if len(inside) < limit:
        return None
    inside.sort(reverse=True)
    free_at = inside[limit - 1] + window  # when the limit-th newest failure leaves the window
    return max(1, int((free_at - now).total_seconds() + 0.999))
