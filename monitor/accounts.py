"""Staff accounts: roles, argon2 password hashes and bearer API tokens.

Roles are ordered agent < manager < admin; a route names the least role it needs. API tokens are
256 random bits shown once; only their SHA-256 is stored (a slow hash adds nothing for secrets that
cannot be guessed, and a fast one keeps every API request cheap).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.storage.schema import ApiToken, User

ROLES = ("agent", "manager", "admin")
TOKEN_PREFIX = "fw_"
_USE_RESOLUTION = timedelta(minutes=1)
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A bad account request (unknown role, duplicate name, unknown user), phrased for people."""


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
        raise AccountError(f"user {name!r} already exists")
    if password is not None and len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    user = User(name=name, role=role, password_hash=hash_password(password) if password else None,
                active=True, created_at=now)
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


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
    return row.User
