"""Staff accounts: roles, argon2 password hashes, bearer API tokens, and changing them over a person's time.

Roles are ordered agent < manager < admin; a route names the least role it needs. API tokens are
256 random bits shown once; only their SHA-256 is stored (a slow hash adds nothing for secrets that
cannot be guessed, and a fast one keeps every API request cheap). A deactivated user keeps their
history but can no longer log in, use a token or act from Slack, and holds no claims.
"""
from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, aliased

from monitor.core import queue
from monitor.core.enums import Role
from monitor.core.storage.db import affected
from monitor.core.storage.schema import ApiToken, FlaggedPost, User, WebSession

ROLES = tuple(Role)  # each allowed what the ones before it are
TOKEN_PREFIX = "fw_"
MIN_PASSWORD, MAX_PASSWORD = 8, 1000  # the login form takes up to 1000 characters
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,49}")  # users.slack_user_id holds 50
_USE_RESOLUTION = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A bad account request (unknown role, short password, bad Slack id), phrased for people."""


class AccountNotFound(AccountError):
    """No such user, or no such token of theirs."""


class AccountConflict(AccountError):
    """The request clashes with another account: a taken name or Slack id, or the last active admin."""


class Keep(enum.Enum):
    KEEP = "keep"


KEEP = Keep.KEEP  # `update_user`'s default: leave this field as it is


@dataclass(frozen=True)
class UserUpdate:
    user: User
    released: list[int]  # posts whose claims were given back because the user was deactivated


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never the token or its hash."""

    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None


def has_role(role: str, needed: str) -> bool:
    """Whether `role` is at least `needed` in agent < manager < admin."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(session: Session, name: str, role: str, password: str | None, now: datetime) -> User:
    name = name.strip()
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; expected one of: {', '.join(ROLES)}")
    if not name or len(name) > 200 or any(c.isspace() or not c.isprintable() for c in name):
        raise AccountError("a user name is 1-200 printable characters without spaces")
    if get_user(session, name) is not None:
        raise AccountConflict(f"user {name!r} already exists")
    # Names differing only in case would be two people to the eye ("Alex" and "alex"): one is refused.
    same = session.scalar(select(User.name).where(func.lower(User.name) == name.lower()))
    if same is not None:
        raise AccountConflict(f"user {same!r} already exists; user names are unique regardless of case")
    if password is not None:
        _check_password(password)
    user = User(name=name, role=role, password_hash=hash_password(password) if password else None,
                active=True, created_at=now)
    session.add(user)
    session.flush()
    return user


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def get_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def _existing(session: Session, name: str) -> User:
    user = get_user(session, name)
    if user is None:
        raise AccountNotFound(f"no user named {name!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (also for users without a password)."""
    user = get_user(session, name)
    stored = user.password_hash if user is not None and user.active and user.password_hash else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if stored is None or user is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = hash_password(password)
    return user


def end_sessions(session: Session, user_id: int) -> int:
    """End every browser session of a user, on every replica (in the caller's transaction)."""
    result = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return affected(result)


def login_fingerprint(user: User) -> str:
    """Kept in a page login's cookie; it changes with the password, so a password reset (or turning
    page login off) ends every browser session that was opened with the old one."""
    return hashlib.sha256((user.password_hash or "").encode("utf-8")).hexdigest()[:16]


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, label: str, now: datetime) -> str:
    """A new API token for `user`; the caller shows it once, only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), label=label[:200], created_at=now))
    session.flush()
    return token


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    """The active user a bearer token belongs to (None for unknown tokens); notes when it was used."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _token_digest(token))
    ).first()
    if row is None or not row.User.active:
        return None
    last = row.ApiToken.last_used_at
    if last is None or now - last > _USE_RESOLUTION:  # one write a minute, not one per request
        row.ApiToken.last_used_at = now
    user: User = row.User
    return user


def update_user(
    session: Session, name: str, now: datetime, *, actor: str, role: str | Keep = KEEP,
    password: str | None | Keep = KEEP, active: bool | Keep = KEEP, slack_user_id: str | None | Keep = KEEP,
) -> UserUpdate:
    """Change what is given (KEEP leaves a field alone); a refused change (AccountError) changes nothing.

    `password=None` turns page login off (API tokens only); `slack_user_id` None or "" clears it.
    Deactivating gives the user's claimed posts back to the queue at once, recorded as released by
    `actor`. Demoting or deactivating the last active admin is refused: nobody could manage accounts.
    """
    user = _existing(session, name)
    new_role = user.role if role is KEEP else role
    new_active = user.active if active is KEEP else active
    if new_role not in ROLES:
        raise AccountError(f"unknown role {new_role!r}; expected one of: {', '.join(ROLES)}")
    if isinstance(password, str):
        _check_password(password)
    slack = user.slack_user_id if slack_user_id is KEEP else (slack_user_id or "").strip() or None
    if slack is not None and slack != user.slack_user_id:
        _check_slack_id(session, user, slack)
    if user.role == Role.ADMIN and user.active and not (new_role == Role.ADMIN and new_active):
        _demote_unless_last_admin(session, user, new_role, new_active)
    deactivating = user.active and not new_active
    user.role, user.active, user.slack_user_id = new_role, new_active, slack
    if password is not KEEP:
        user.password_hash = hash_password(password) if password is not None else None
    session.flush()
    if password is not KEEP or deactivating:  # whoever had the old password (or a copied cookie) is out
        end_sessions(session, user.id)
    released = _release_claims(session, user.name, actor, now) if deactivating else []
    return UserUpdate(user, released)


def _check_slack_id(session: Session, user: User, slack: str) -> None:
    if not SLACK_USER_ID.fullmatch(slack):
        raise AccountError(f"{slack!r} is not a Slack user id: U or W, then capital letters and digits (U012AB3CD)")
    holder = session.scalar(select(User.name).where(User.slack_user_id == slack, User.id != user.id))
    if holder is not None:
        raise AccountConflict(f"Slack id {slack} already belongs to {holder}")


def _demote_unless_last_admin(session: Session, admin: User, role: str, active: bool) -> None:
    """One UPDATE, conditional on another active admin remaining, so two admins demoting each other at
    once cannot both succeed. SQLite evaluates it under its single write lock; PostgreSQL first locks the
    active admins' rows, so the second waits and its UPDATE then sees what the first committed."""
    session.scalars(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
                    .order_by(User.id).with_for_update()).all()
    other = aliased(User)
    another_admin = select(other.id).where(other.role == Role.ADMIN, other.active.is_(True), other.id != admin.id)
    result = session.execute(
        update(User).where(User.id == admin.id, another_admin.exists()).values(role=role, active=active)
        .execution_options(synchronize_session=False)
    )
    if affected(result) != 1:
        raise AccountConflict(f"{admin.name} is the last active admin; make someone else admin first")


def _release_claims(session: Session, holder: str, actor: str, now: datetime) -> list[int]:
    """Give back every post `holder` has claimed (lapsed claims too, so none waits for the lapse job)."""
    post_ids = session.scalars(select(FlaggedPost.post_id).where(
        FlaggedPost.state == "claimed", FlaggedPost.claimed_by == holder).order_by(FlaggedPost.post_id)).all()
    released = []
    for post_id in post_ids:
        try:
            queue.release(session, post_id, actor, now, force=True)
        except queue.QueueError:
            continue  # answered, dismissed or re-claimed since the select: not theirs to give back any more
        released.append(post_id)
    return released


def token_counts(session: Session) -> dict[int, int]:
    """How many API tokens each user id has (users without any are left out)."""
    rows = session.execute(select(ApiToken.user_id, func.count()).group_by(ApiToken.user_id))
    return {user_id: count for user_id, count in rows}


def list_tokens(session: Session, name: str) -> list[TokenInfo]:
    """A user's API tokens, oldest first."""
    user = _existing(session, name)
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    return [TokenInfo(t.id, t.label, t.created_at, t.last_used_at) for t in rows]


def revoke_token(session: Session, name: str, token_id: int) -> None:
    """Delete one of a user's tokens; requests carrying it are refused from now on."""
    user = _existing(session, name)
    token = session.get(ApiToken, token_id) if 1 <= token_id < 2**63 else None  # larger ids overflow bigint
    if token is None or token.user_id != user.id:
        raise AccountNotFound(f"{name} has no API token {token_id}")
    session.delete(token)
    session.flush()


def revoke_all_tokens(session: Session, name: str) -> int:
    """Delete every token of a user; returns how many there were."""
    user = _existing(session, name)
    tokens = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    for token in tokens:
        session.delete(token)
    session.flush()
    return len(tokens)
