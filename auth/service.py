"""Accounts, sessions, tokens and the audit log: the data layer of access control."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from auth.models import ApiToken, AuditEntry, User, WebSession
from auth.principal import ANONYMOUS, CITY_ROLES, GUARD_ROLES, ROLES, Principal
from core.errors import InvalidInput
from core.settings import Settings
from registry.models import Community, Grid, Guard
from store.ratelimit import closed_denials, count_denial
from store.sql import utcnow

if TYPE_CHECKING:
    from store.stores import Stores

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password")
TOKEN_RE = re.compile(r"^st_([0-9a-f]{12})_([A-Za-z0-9_-]{32,64})$")


class LoginFailed(Exception):
    """Wrong username or password, or an inactive account (one generic message)."""


def sha256(text: str) -> str:
    """Hex SHA-256 (for high-entropy random tokens; passwords use argon2)."""
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    """At least 10 characters with letters and digits."""
    if len(password) < 10 or not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise InvalidInput("password must have at least 10 characters, with letters and digits")


def _check_scope(session: Session, role: str, community: str | None, grid: str | None) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role not in ("admin", *CITY_ROLES) and not community:
        raise InvalidInput(f"a {role} needs --community (only admin, police and wall accounts may be city-wide)")
    if community and session.get(Community, community) is None:
        raise InvalidInput(f"unknown community {community!r}")
    if role == "grid_worker":
        if not grid:
            raise InvalidInput("a grid_worker needs --grid")
        found = session.get(Grid, grid)
        if found is None or found.community_id != community:
            raise InvalidInput(f"grid {grid!r} is not a grid of community {community!r}")
    elif grid:
        raise InvalidInput("only a grid_worker has a --grid")


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    community: str | None = None,
    grid: str | None = None,
    display_name: str = "",
    guard: str | None = None,
    check_strength: bool = True,
    password_hash: str | None = None,
) -> User:
    """A new account (the password is stored as an argon2 hash). With ``guard``, the account is that
    guard's (万家卫士): its community (and a grid worker's grid) default to the guard's."""
    username = username.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{3,64}", username):
        raise InvalidInput("username must be 3–64 letters, digits or _ . @ -")
    if len(display_name) > 64:
        raise InvalidInput("display name must have at most 64 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise InvalidInput(f"user {username!r} exists already")
    if check_strength:
        check_password_strength(password)
    if guard is not None:
        found = _free_guard(session, guard, role, community, username)
        community = community or found.community_id
        if role == "grid_worker":
            _same_grid(found, grid or found.grid_id)
            grid = grid or found.grid_id
    elif role == "guard":
        raise InvalidInput("a guard account needs --guard GUARD_ID (the 万家卫士 member it belongs to)")
    _check_scope(session, role, community, grid)
    user = User(
        username=username,
        password_hash=password_hash or hash_password(password),  # a hash given: many demo accounts, one hashing
        role=role,
        community_id=community,
        grid_id=grid,
        display_name=display_name or username,
        guard_id=guard,
    )
    session.add(user)
    session.flush()
    return user


def _free_guard(session: Session, guard_id: str, role: str, community: str | None, username: str) -> Guard:
    """The registry guard an account may be linked to, or one line saying why not."""
    if role not in GUARD_ROLES:
        raise InvalidInput(f"only {', '.join(GUARD_ROLES)} accounts are linked to a guard, not a {role} account")
    guard = session.get(Guard, guard_id)
    if guard is None:
        raise InvalidInput(f"unknown guard {guard_id!r}")
    if community is not None and guard.community_id != community:
        raise InvalidInput(
            f"guard {guard_id!r} ({guard.name}) is a guard of community {guard.community_id!r}, not {community!r}"
        )
    holder = session.scalar(select(User.username).where(User.guard_id == guard_id, User.username != username))
    if holder is not None:
        raise InvalidInput(f"guard {guard_id!r} ({guard.name}) is linked to account {holder!r} already")
    return guard


def _same_grid(guard: Guard, grid: str | None) -> None:
    if guard.grid_id is not None and guard.grid_id != grid:
        raise InvalidInput(f"guard {guard.id!r} ({guard.name}) works grid {guard.grid_id!r}, not {grid!r}")


def link_guard(session: Session, username: str, guard_id: str) -> User:
    """Link an existing account to a registry guard (万家卫士): the guard's tasks become the account's."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise InvalidInput(f"unknown user {username!r}")
    if user.community_id is None:
        raise InvalidInput(f"account {username!r} has no community; a guard belongs to one")
    guard = _free_guard(session, guard_id, user.role, user.community_id, user.username)
    if user.role == "grid_worker":
        _same_grid(guard, user.grid_id)
    user.guard_id = guard.id
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The user when the password is right; LoginFailed otherwise. Wrong passwords are counted per
    account and client address by the caller (auth/lockout.py), not on the user's row."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        _hasher.verify(_DUMMY_HASH, "not a password")  # same work either way: no user enumeration by timing
        raise LoginFailed()
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise LoginFailed() from None
    if not user.active:
        raise LoginFailed()
    user.last_login_at = utcnow()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def create_session(session: Session, user: User, settings: Settings, ip: str = "") -> str:
    """A new server-side session; returns the cookie value (only its hash is stored)."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            token_hash=sha256(raw),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + dt.timedelta(hours=settings.session_hours),
            ip=ip[:64],
        )
    )
    return raw


def resolve_session(session: Session, raw: str) -> User | None:
    """The user of a live session cookie, or None (unknown, expired, revoked, inactive)."""
    found = session.get(WebSession, sha256(raw))
    if found is None or found.revoked_at is not None:
        return None
    expires = found.expires_at if found.expires_at.tzinfo else found.expires_at.replace(tzinfo=dt.UTC)
    now = utcnow()
    if expires <= now or not found.user.active:
        return None
    seen = found.last_seen_at if found.last_seen_at.tzinfo else found.last_seen_at.replace(tzinfo=dt.UTC)
    if now - seen > dt.timedelta(minutes=1):
        found.last_seen_at = now
    return found.user


def revoke_session(session: Session, raw: str) -> None:
    """End a session (logout)."""
    session.execute(update(WebSession).where(WebSession.token_hash == sha256(raw)).values(revoked_at=utcnow()))


def create_token(
    session: Session,
    *,
    scope: str,
    community: str | None,
    role: str | None = None,
    grid: str | None = None,
    name: str = "",
    created_by: str = "",
) -> tuple[ApiToken, str]:
    """A new API token; returns the record and the token text (shown once, only its hash is kept)."""
    if len(name) > 100:
        raise InvalidInput("token name must have at most 100 characters")
    if scope == "ingest":
        if role or grid:
            raise InvalidInput("an ingest token has a community, not a role or grid")
        if not community or session.get(Community, community) is None:
            raise InvalidInput(f"unknown community {community!r}")
    elif scope == "role":
        if role is None:
            raise InvalidInput("give --role ROLE or --scope ingest")
        _check_scope(session, role, community, grid)
    else:
        raise InvalidInput(f"unknown scope {scope!r}; use --scope ingest or --role ROLE")
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiToken(
        id=token_id,
        secret_hash=sha256(secret),
        name=name,
        scope=scope,
        role=role,
        community_id=community,
        grid_id=grid,
        created_by=created_by,
    )
    session.add(record)
    session.flush()
    return record, f"st_{token_id}_{secret}"


def resolve_token(session: Session, raw: str) -> ApiToken | None:
    """The live token record for a token text, or None (malformed, unknown, revoked, forged)."""
    match = TOKEN_RE.match(raw.strip())
    if not match:
        return None
    record = session.get(ApiToken, match.group(1))
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(record.secret_hash, sha256(match.group(2))):
        return None
    return record


def revoke_token(session: Session, token_id: str) -> bool:
    """Revoke a token by id; False when no live token has that id."""
    record = session.get(ApiToken, token_id)
    if record is None or record.revoked_at is not None:
        return False
    record.revoked_at = utcnow()
    return True


def principal_of_user(user: User) -> Principal:
    """The principal of a signed-in user."""
    return Principal(
        kind="user",
        id=user.username,
        role=user.role,
        community=user.community_id,
        grid=user.grid_id,
        name=user.display_name or user.username,
        guard=user.guard_id,
    )


def principal_of_token(token: ApiToken) -> Principal:
    """The principal of an API token (an ingest token has no role: it may only post events)."""
    return Principal(
        kind="token",
        id=token.id,
        role=token.role if token.scope == "role" else None,
        community=token.community_id,
        grid=token.grid_id,
        name=token.name or token.id,
        token_scope=token.scope,
    )


@dataclass
class Auditor:
    """Writes the audit log in its own transaction, so that a denial is recorded even when work fails."""

    sessions: sessionmaker[Session]

    def record(
        self,
        principal: Principal,
        action: str,
        *,
        target: str = "",
        reason: str = "",
        outcome: str = "ok",
        ip: str = "",
        community: str | None = None,
    ) -> None:
        """Append one entry."""
        with self.sessions.begin() as session:
            session.add(
                AuditEntry(
                    actor=principal.id or "anonymous",
                    role=principal.role or principal.kind,
                    action=action,
                    target=target[:200],
                    reason=reason[:2000],
                    outcome=outcome,
                    ip=ip[:64],
                    community_id=community or principal.community,
                )
            )
        if outcome != "ok":
            log.info("audit: %s %s %s by %s", action, outcome, target, principal.id or "anonymous")


ANON_DENIAL_WINDOW_S = 60  # repeated anonymous denials from one address are audited once per window


def audit_anonymous_denial(stores: Stores, *, target: str, reason: str, ip: str) -> None:
    """Audit an anonymous request that was refused: the first of a window from an address gets its
    own row at once; the rest of that window are counted in Redis and written as one row when the
    window has ended (``flush_anonymous_denials``), so a flood of 401s adds two rows a minute per
    address, not one per request."""
    address = ip or "-"
    if count_denial(stores.redis, stores.keys, address, window_s=ANON_DENIAL_WINDOW_S) == 1:
        Auditor(stores.sessions).record(ANONYMOUS, "denied", target=target, reason=reason, outcome="denied", ip=address)
    flush_anonymous_denials(stores)


def flush_anonymous_denials(stores: Stores, *, now: float | None = None) -> int:
    """Write the counts of the ended windows to the audit log, one row per address and window (called
    on every anonymous denial and before the audit log is read or exported); the rows written."""
    written = 0
    auditor = Auditor(stores.sessions)
    for address, start, count in closed_denials(stores.redis, stores.keys, window_s=ANON_DENIAL_WINDOW_S, now=now):
        if count <= 1:
            continue  # the first one has its own row already
        begin = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        auditor.record(
            ANONYMOUS,
            "denied",
            target="anonymous requests",
            reason=f"{count - 1} more anonymous requests refused from this address "
            f"in the {ANON_DENIAL_WINDOW_S} s from {begin}",
            outcome="denied",
            ip=address,
        )
        written += 1
    return written


AUDIT_FIELDS = ("id", "at", "actor", "role", "action", "target", "community", "reason", "outcome", "ip")


def audit_row(entry: AuditEntry) -> dict[str, object]:
    """A line of the audit log as the API and the exports show it (``AUDIT_FIELDS``)."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "community": entry.community_id,
        "reason": entry.reason,
        "outcome": entry.outcome,
        "ip": entry.ip,
    }


def audit_csv_rows(session: Session, *, newest_first: bool) -> Iterator[list[object]]:
    """The whole audit log as CSV rows (the header first), read in chunks: no cap, no whole-log list
    in memory."""
    yield list(AUDIT_FIELDS)
    order = AuditEntry.id.desc() if newest_first else AuditEntry.id.asc()
    for entry in session.scalars(select(AuditEntry).order_by(order).execution_options(yield_per=1000)):
        row = audit_row(entry)
        yield ["" if row[f] is None else row[f] for f in AUDIT_FIELDS]
