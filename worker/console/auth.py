"""Console users, passwords (Argon2id) and server-side login sessions.

A session is a database row; the cookie carries a random token signed with
`web.secret_key` (a forged or stale-key cookie is refused before any query) and the row
keeps only the token's SHA-256. Logging out, or removing the user, ends the session at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from radraft.core.db import User, WebSession, db_now

ROLES = ("admin", "ed", "viewer")
# What each role may change; every role may read every page but Quality (quality.view:
# it shows final reports side by side with drafts, an admin's review).
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"rules.edit", "deliveries.manage", "quality.view"}),
    "ed": frozenset({"alerts.ack"}),
    "viewer": frozenset(),
}
IDLE_TIMEOUT = timedelta(hours=1)
MAX_AGE = timedelta(hours=12)
# last_seen_at is written at most this often (not on every request of an open ED board).
TOUCH_EVERY = timedelta(minutes=1)
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory profile


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(session: Session, username: str, password: str, role: str) -> User:
    """Add a user (the caller commits). ValueError says what is wrong, never the password."""
    if not USERNAME.match(username):
        raise ValueError("a user name has 1 to 64 letters, digits or . _ @ -")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (admin, ed or viewer)")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, password_hash=hash_password(password), role=role,
                created_at=db_now(session))
    session.add(user)
    return user


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is logged in on this request."""

    user_id: int
    username: str
    role: str
    csrf_token: str
    session_id: int

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Opens, resolves and closes login sessions; the cookie value is signed."""

    def __init__(self, secret_key: str) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="radraft-session")

    def open(self, session: Session, user: User) -> str:
        """A new session row for `user` (the caller commits); returns the cookie value."""
        now = db_now(session)
        token = secrets.token_urlsafe(32)
        session.execute(delete(WebSession).where(WebSession.expires_at < now))
        session.add(WebSession(
            token_sha256=_digest(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
            created_at=now, last_seen_at=now, expires_at=now + MAX_AGE,
        ))
        return str(self._signer.dumps(token))

    def _row(self, session: Session, cookie: str) -> WebSession | None:
        try:
            token = self._signer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(token, str):
            return None
        return session.scalars(
            select(WebSession).where(WebSession.token_sha256 == _digest(token))).first()

    def resolve(self, session: Session, cookie: str | None) -> Principal | None:
        """The principal of a cookie, or None (unknown, expired, idle too long)."""
        if not cookie:
            return None
        row = self._row(session, cookie)
        if row is None:
            return None
        now = db_now(session)
        if now >= row.expires_at or now - row.last_seen_at > IDLE_TIMEOUT:
            session.delete(row)
            session.commit()
            return None
        user = session.get(User, row.user_id)
        if user is None:
            return None
        if now - row.last_seen_at > TOUCH_EVERY:
            row.last_seen_at = now
            session.commit()
        return Principal(user.id, user.username, user.role, row.csrf_token, row.id)

    def close(self, session: Session, cookie: str | None) -> None:
        row = self._row(session, cookie) if cookie else None
        if row is not None:
            session.delete(row)
            session.commit()


class LoginThrottle:
    """Failed logins are limited per (user name, source address) and per source address in
    a sliding window; a refused attempt waits for the window to pass.

    - Per (user, address), not per user: a guesser elsewhere cannot lock the admin out of
      the admin's own desk. Per address: one address spraying one password across many
      user names is stopped too.
    - An attempt is reserved (counted as failed) *before* the password is checked, in one
      locked step, and given back when it succeeds: parallel attempts cannot all slip past
      the check while the first ones are still hashing.
    """

    def __init__(self, limit: int = 5, window_s: float = 300.0,
                 address_limit: int = 20) -> None:
        self._limit, self._address_limit, self._window = limit, address_limit, window_s
        self._failures: dict[tuple[str, ...], list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, ...], now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self._window]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    @staticmethod
    def _keys(username: str, address: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("pair", username.lower(), address), ("address", address)

    def attempt(self, username: str, address: str) -> bool:
        """Reserve one attempt; False when (user, address) or address is over its limit."""
        pair, source = self._keys(username, address)
        with self._lock:
            now = time.monotonic()
            pair_recent, source_recent = self._recent(pair, now), self._recent(source, now)
            if len(pair_recent) >= self._limit or len(source_recent) >= self._address_limit:
                return False
            self._failures[pair] = [*pair_recent, now]
            self._failures[source] = [*source_recent, now]
            return True

    def succeeded(self, username: str, address: str) -> None:
        """The reserved attempt was right: forget this pair's failures, give the address
        its reservation back."""
        pair, source = self._keys(username, address)
        with self._lock:
            self._failures.pop(pair, None)
            recent = self._failures.get(source)
            if recent:
                recent.pop()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if the password is right; rehashes an outdated hash on the way."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same time whether or not the user exists
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
