"""Identity use cases: people, sign-in, access tokens, platforms and their secret keys.

Each use case opens its own unit of work on ``app.db``. Argon2 is deliberately slow, so
passwords are hashed and verified outside any transaction: a write transaction on SQLite
holds the database lock, and nobody should wait on it for a hash.

Sign-in rate limits (``issue_token``), both from the ``auth_attempts`` table and
``app.clock``:

* per email: at most ``login_max_per_email`` *failed* attempts within
  ``login_email_window_seconds``; the next attempt is refused (429) until the oldest of
  those failures leaves the window. A successful sign-in clears the count (only failures
  after the latest success are counted), so a person who mistyped a few times is not left one
  typo away from a lock-out; an attacker cannot use that, since a success needs the password
  and a locked email refuses even the right password (otherwise the lock would be an oracle).
* per client address: at most ``login_max_per_client`` attempts of any outcome within
  ``login_client_window_seconds`` (this one also stops one address trying many emails).

Registration (``register_user`` with a ``client``): at most ``register_max_per_client``
registrations of any outcome per client address within ``register_window_seconds``, checked
and recorded (``kind='register'`` rows of the same table, under the same per-client lock)
*before* the password is hashed, since each hash costs 64 MiB and tens of milliseconds of
CPU and registration needs no sign-in. Input that fails validation is refused before the
limit, costs no hash and is not counted. Sign-in limits count only sign-in attempts.

A refused (429) attempt is not recorded and costs no hashing, so hammering a locked email
does not extend its lock and cannot be used to keep a victim locked out beyond the window.
An attempt is recorded as a failure *before* its password is checked and turned into a
success afterwards, under a lock per email and per client (PostgreSQL advisory locks; SQLite
serialises writers anyway), so concurrent attempts cannot exceed the limits.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.errors import DomainError
from potluck.identity import passwords, tokens
from potluck.identity.models import REGISTER, SIGN_IN, AuthAttempt, Platform, SystemSecret, User
from potluck.ids import new_id

if TYPE_CHECKING:
    from potluck.api.deps import Principal
    from potluck.bootstrap import Potluck
    from potluck.config import Settings

ROLES = ("user", "admin")
PASSWORD_MIN = 10
PASSWORD_MAX = 256
NAME_MAX = 200
EMAIL_MAX = 254  # RFC 5321 path limit
SECRET_KEY_PREFIX = "sk_"  # noqa: S105 - a prefix, not a secret
KEY_PREFIX_LENGTH = 11  # "sk_" and 8 random characters: enough to tell keys apart
JWT_KEY_NAME = "jwt_signing_key"
INVALID_CREDENTIALS = "the email or password is not correct"

_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})"
_EMAIL = re.compile(rf"(?P<local>{_LOCAL})@(?:{_LABEL}\.)+{_TLD}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class IdentityError(DomainError):
    """A refused identity operation; nothing was written.

    ``retry_after`` (seconds) is set when the caller is rate limited.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 422,
        field: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(code, message, status=status, field=field)
        self.retry_after = retry_after

    def problem_headers(self) -> dict[str, str] | None:
        if self.status == 401:
            return {"WWW-Authenticate": "Bearer"}
        return {"Retry-After": str(self.retry_after)} if self.retry_after else None


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    email: str
    name: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlatformView:
    id: str
    name: str
    owner_user_id: str | None
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        """``active`` while the secret key authenticates, ``revoked`` after a revoke."""
        return "active" if self.revoked_at is None else "revoked"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the scheme name


# --- input rules (shared with the API schemas, which turn ValueError into a 422) ---


def normalise_email(value: str) -> str:
    """Strip and lowercase; refuse anything that is not a plain ``local@domain.tld``.

    ASCII addresses only (no internationalised domains or local parts, no quoted local
    parts, no IP literals): simple and predictable for an address used to sign in.
    """
    email = value.strip().lower()
    match = _EMAIL.fullmatch(email)
    if len(email) > EMAIL_MAX or match is None or len(match.group("local")) > 64:
        raise ValueError("not a valid email address")
    return email


def check_password(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise ValueError(f"the password must have at least {PASSWORD_MIN} characters")
    if len(value) > PASSWORD_MAX:
        raise ValueError(f"the password must have at most {PASSWORD_MAX} characters")
    return value


def clean_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise ValueError("the name must not be empty")
    if len(name) > NAME_MAX:
        raise ValueError(f"the name must have at most {NAME_MAX} characters")
    if _CONTROL.search(name):
        raise ValueError("the name must not contain control characters")
    return name


def _checked(field: str, rule: Any, value: str) -> str:
    try:
        result: str = rule(value)
    except ValueError as exc:
        raise IdentityError("validation_error", str(exc), field=field) from exc
    return result


def _user_view(u: User) -> UserView:
    return UserView(u.id, u.email, u.name, u.role, utc(u.created_at))


def _platform_view(p: Platform) -> PlatformView:
    revoked = utc(p.revoked_at) if p.revoked_at is not None else None
    return PlatformView(p.id, p.name, p.owner_user_id, p.key_prefix, utc(p.created_at), revoked)


# --- people ---


def register_user(
    app: Potluck,
    *,
    email: str,
    password: str,
    name: str,
    role: str = "user",
    client: str | None = None,
) -> UserView:
    """Create a person. Raises ``email_taken`` (409) if the email is already registered.

    ``client`` (the caller's address, from the API) subjects the registration to the
    per-client limit: ``rate_limited`` (429 with ``retry_after``) before any hashing. The
    operator (CLI, demo data) passes none.
    """
    email = _checked("email", normalise_email, email)
    password = _checked("password", check_password, password)
    name = _checked("name", clean_name, name)
    if role not in ROLES:
        raise IdentityError("validation_error", f"role must be one of {ROLES}", field="role")
    if client is not None:
        _record_registration(app, email=email, client=(client or "unknown")[:64])
    password_hash = passwords.hash_password(password)  # slow: before the transaction
    taken = IdentityError(
        "email_taken", "an account with this email already exists", status=409, field="email"
    )
    try:
        with app.db.transaction() as s:
            if s.scalar(select(User.id).where(User.email == email)) is not None:
                raise taken
            user = User(
                id=new_id("usr"),
                email=email,
                name=name,
                password_hash=password_hash,
                role=role,
                created_at=app.clock.now(),
            )
            s.add(user)
            s.flush()
            # Sharing claims the group places waiting for this email (sharing/handlers.py).
            from potluck.bus import publish

            publish(
                s,
                "user.registered",
                {"platform_id": None, "user_id": user.id, "email": email, "name": name},
                now=user.created_at,
            )
            return _user_view(user)
    except IntegrityError as exc:  # registered concurrently between our check and insert
        raise taken from exc


def get_user(app: Potluck, *, user_id: str) -> UserView:
    with app.db.read() as s:
        user = s.get(User, user_id)
        if user is None:
            raise IdentityError("not_found", "no such user", status=404)
        return _user_view(user)


def find_user_in(session: Session, *, user_id: str) -> UserView | None:
    """The user in the caller's transaction (one primary-key read), or None; for services
    that need a person's email or account age while they write (risk scoring)."""
    row = session.connection().execute(_USER_BY_ID, {"id": user_id}).first()
    if row is None:
        return None
    return UserView(row.id, row.email, row.name, row.role, utc(row.created_at))


# One prebuilt statement, executed on the session's connection: scoring a payment reads it on
# every call, and the ORM's get() costs more than the query itself.
_USER_BY_ID = select(User.id, User.email, User.name, User.role, User.created_at).where(
    User.id == bindparam("id")
)


def promote_user(app: Potluck, *, email: str, role: str = "admin") -> UserView:
    """Give the person with ``email`` a role (``admin`` or back to ``user``)."""
    if role not in ROLES:
        raise IdentityError("validation_error", f"role must be one of {ROLES}", field="role")
    email = email.strip().lower()
    with app.db.transaction() as s:
        user = s.scalar(select(User).where(User.email == email))
        if user is None:
            raise IdentityError("not_found", f"no user with email {email}", status=404)
        user.role = role
        s.flush()
        result = _user_view(user)
    app.principals.clear()  # the old key or role must not outlive this in this process
    return result


# --- sign-in ---


def _lock_attempts(s: Session, *, email: str | None, client: str) -> None:
    """Serialise attempts per email and per client (always in this order; registrations
    take the client lock only)."""
    if s.get_bind().dialect.name == "postgresql":
        if email is not None:
            s.execute(select(func.pg_advisory_xact_lock(1, func.hashtext(email))))
        s.execute(select(func.pg_advisory_xact_lock(2, func.hashtext(client))))
    # SQLite: the transaction began with BEGIN IMMEDIATE and holds the write lock already.


def _record_registration(app: Potluck, *, email: str, client: str) -> None:
    """Check the per-client registration limit and record this registration attempt."""
    settings = app.settings
    now = app.clock.now()
    with app.db.transaction() as s:
        _lock_attempts(s, email=None, client=client)
        wait = _free_at(
            s,
            [AuthAttempt.kind == REGISTER, AuthAttempt.client == client],
            limit=settings.register_max_per_client,
            window=settings.register_window_seconds,
            now=now,
        )
        if wait:
            raise IdentityError(
                "rate_limited",
                f"too many registrations from this address; retry in {wait} seconds",
                status=429,
                retry_after=wait,
            )
        s.add(AuthAttempt(kind=REGISTER, email=email[:320], client=client, succeeded=0, at=now))


def _free_at(s: Session, where: list[Any], *, limit: int, window: int, now: datetime) -> int:
    """Seconds until fewer than ``limit`` matching attempts remain in the window (0: free).

    Of the matching attempts in the window, the ``limit``-th newest is the one whose expiry
    brings the count below the limit.
    """
    since = now - timedelta(seconds=window)
    at = s.scalar(
        select(AuthAttempt.at)
        .where(*where, AuthAttempt.at > since)
        .order_by(AuthAttempt.at.desc(), AuthAttempt.id.desc())
        .offset(max(limit, 1) - 1)
        .limit(1)
    )
    if limit > 0 and at is None:
        return 0
    frees = (utc(at) if at is not None else now) + timedelta(seconds=window)
    return max(1, math.ceil((frees - now).total_seconds()))


def _begin_attempt(app: Potluck, *, email: str, client: str) -> tuple[int, User | None]:
    """Check the limits and record the attempt as failed; returns its id and the user."""
    settings = app.settings
    now = app.clock.now()
    with app.db.transaction() as s:
        _lock_attempts(s, email=email, client=client)
        email_since = now - timedelta(seconds=settings.login_email_window_seconds)
        # by id, not time: attempts of one email are inserted one at a time under the lock
        last_success = s.scalar(
            select(func.max(AuthAttempt.id)).where(
                AuthAttempt.kind == SIGN_IN,
                AuthAttempt.email == email,
                AuthAttempt.succeeded == 1,
                AuthAttempt.at > email_since,
            )
        )
        failures = [
            AuthAttempt.kind == SIGN_IN,
            AuthAttempt.email == email,
            AuthAttempt.succeeded == 0,
        ]
        if last_success is not None:
            failures.append(AuthAttempt.id > last_success)
        wait = max(
            _free_at(
                s,
                failures,
                limit=settings.login_max_per_email,
                window=settings.login_email_window_seconds,
                now=now,
            ),
            _free_at(
                s,
                [AuthAttempt.kind == SIGN_IN, AuthAttempt.client == client],
                limit=settings.login_max_per_client,
                window=settings.login_client_window_seconds,
                now=now,
            ),
        )
        if wait:
            raise IdentityError(
                "rate_limited",
                f"too many sign-in attempts; retry in {wait} seconds",
                status=429,
                retry_after=wait,
            )
        attempt = AuthAttempt(kind=SIGN_IN, email=email, client=client, succeeded=0, at=now)
        s.add(attempt)
        user = s.scalar(select(User).where(User.email == email))
        s.flush()
        return attempt.id, user


def issue_token(app: Potluck, *, email: str, password: str, client: str) -> IssuedToken:
    """Sign a person in: an access token for the right email and password.

    Raises ``invalid_credentials`` (401, the same whether or not the email exists) or
    ``rate_limited`` (429 with ``retry_after``); see the module docstring for the limits.
    """
    email = email.strip().lower()[:320]
    client = (client or "unknown")[:64]
    attempt_id, user = _begin_attempt(app, email=email, client=client)
    if user is None:
        passwords.verify_dummy(password)  # same time as a real check: no user enumeration
        raise IdentityError("invalid_credentials", INVALID_CREDENTIALS, status=401)
    if not passwords.verify_password(user.password_hash, password):
        raise IdentityError("invalid_credentials", INVALID_CREDENTIALS, status=401)
    new_hash = None
    if passwords.needs_rehash(user.password_hash):  # parameters were raised since
        new_hash = passwords.hash_password(password)
    with app.db.transaction() as s:
        s.execute(update(AuthAttempt).where(AuthAttempt.id == attempt_id).values(succeeded=1))
        if new_hash is not None:
            s.execute(
                update(User)
                .where(User.id == user.id, User.password_hash == user.password_hash)
                .values(password_hash=new_hash)
            )
    ttl = app.settings.jwt_ttl_seconds
    token = tokens.encode_access_token(
        key=signing_key(app), user_id=user.id, now=app.clock.now(), ttl_seconds=ttl
    )
    return IssuedToken(access_token=token, expires_in=ttl)


def prune_auth_attempts(app: Potluck) -> int:
    """Delete attempts no limit reads any more; returns how many.

    Sign-in attempts go once older than both sign-in windows, registration attempts once
    older than the registration window.

    Nothing reads them after that. Meant for a periodic job (a timer event or cron).
    """
    with app.db.transaction() as s:
        return prune_auth_attempts_in(s, settings=app.settings, now=app.clock.now())


def prune_auth_attempts_in(session: Session, *, settings: Settings, now: datetime) -> int:
    """``prune_auth_attempts`` inside the caller's transaction (the maintenance timer)."""
    keep = {
        SIGN_IN: max(settings.login_email_window_seconds, settings.login_client_window_seconds),
        REGISTER: settings.register_window_seconds,
    }
    pruned = 0
    for kind, seconds in keep.items():
        cutoff = now - timedelta(seconds=seconds)
        result = session.execute(
            delete(AuthAttempt).where(AuthAttempt.kind == kind, AuthAttempt.at <= cutoff)
        )
        pruned += int(getattr(result, "rowcount", 0) or 0)
    return pruned


# --- the JWT signing key ---

_keys_lock = threading.Lock()
_keys: dict[int, tuple[weakref.ref[Potluck], str]] = {}


def signing_key(app: Potluck) -> str:
    """``settings.secret_key`` if set, else this installation's generated key (cached)."""
    if app.settings.secret_key:
        return app.settings.secret_key
    cached = _keys.get(id(app))
    if cached is not None and cached[0]() is app:
        return cached[1]
    key = _load_or_create_key(app)
    app_id = id(app)  # the callback must not hold the app itself, or it would never die
    with _keys_lock:
        _keys[app_id] = (weakref.ref(app, lambda _: _keys.pop(app_id, None)), key)
    return key


def _load_or_create_key(app: Potluck) -> str:
    with app.db.read() as s:
        existing = s.scalar(select(SystemSecret.value).where(SystemSecret.name == JWT_KEY_NAME))
    if existing is not None:
        return existing
    try:
        with app.db.transaction() as s:
            s.add(
                SystemSecret(
                    name=JWT_KEY_NAME, value=secrets.token_urlsafe(64), created_at=app.clock.now()
                )
            )
    except IntegrityError:
        pass  # another process created it first: use theirs
    with app.db.read() as s:
        value = s.scalar(select(SystemSecret.value).where(SystemSecret.name == JWT_KEY_NAME))
    if value is None:  # pragma: no cover - inserted or found above
        raise RuntimeError("the JWT signing key could not be stored")
    return value


# --- platforms ---


def hash_secret_key(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


def _new_secret_key() -> tuple[str, str, str]:
    """A fresh secret key with its stored hash and its displayable prefix."""
    secret_key = SECRET_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret_key, hash_secret_key(secret_key), secret_key[:KEY_PREFIX_LENGTH]


def create_platform(
    app: Potluck, *, name: str, owner_user_id: str | None = None
) -> tuple[PlatformView, str]:
    """Create a platform and its secret key; the key is returned here once and never again."""
    name = _checked("name", clean_name, name)
    secret_key, key_hash, key_prefix = _new_secret_key()
    with app.db.transaction() as s:
        if owner_user_id is not None and s.get(User, owner_user_id) is None:
            raise IdentityError("not_found", "no such owner", status=404, field="owner_user_id")
        platform = Platform(
            id=new_id("plt"),
            name=name,
            owner_user_id=owner_user_id,
            key_hash=key_hash,
            key_prefix=key_prefix,
            created_at=app.clock.now(),
        )
        s.add(platform)
        s.flush()
        return _platform_view(platform), secret_key


def _owned(s: Session, platform_id: str, owner_user_id: str | None, *, lock: bool) -> Platform:
    """The platform, if ``owner_user_id`` owns it (None: the operator, who may see any).

    Anything else is the same 404 as a platform that does not exist: a person must not learn
    that someone else's platform id is real.
    """
    query = select(Platform).where(Platform.id == platform_id)
    if lock:
        query = query.with_for_update()
    platform = s.scalar(query)
    if platform is None or (owner_user_id is not None and platform.owner_user_id != owner_user_id):
        raise IdentityError("not_found", "no such platform", status=404)
    return platform


def get_platform(app: Potluck, *, platform_id: str, owner_user_id: str) -> PlatformView:
    """The platform if ``owner_user_id`` owns it; 404 otherwise (others may not know it exists)."""
    with app.db.read() as s:
        return _platform_view(_owned(s, platform_id, owner_user_id, lock=False))


def list_platforms(
    app: Potluck, *, owner_user_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[PlatformView], bool]:
    """The person's platforms, oldest first (ids sort by creation), and whether more follow."""
    with app.db.read() as s:
        query = select(Platform).where(Platform.owner_user_id == owner_user_id)
        if starting_after:
            query = query.where(Platform.id > starting_after)
        rows = s.scalars(query.order_by(Platform.id).limit(limit + 1)).all()
        return [_platform_view(p) for p in rows[:limit]], len(rows) > limit


def rotate_platform_key(
    app: Potluck, *, platform_id: str, owner_user_id: str | None
) -> tuple[PlatformView, str]:
    """Issue a new secret key; the old one stops authenticating when this commits.

    The new key is returned here once and never again. Rotating a revoked platform gives it a
    working key again (revoke at once when a key leaks, rotate when ready to carry on).
    ``owner_user_id`` None is the operator (CLI), who may rotate any platform.
    """
    secret_key, key_hash, key_prefix = _new_secret_key()
    with app.db.transaction() as s:
        platform = _owned(s, platform_id, owner_user_id, lock=True)
        platform.key_hash = key_hash
        platform.key_prefix = key_prefix
        platform.revoked_at = None
        s.flush()
        result = _platform_view(platform), secret_key
    app.principals.clear()  # the old key or role must not outlive this in this process
    return result


def revoke_platform_key(
    app: Potluck, *, platform_id: str, owner_user_id: str | None
) -> PlatformView:
    """Stop the platform's secret key from authenticating (idempotent: the first time stays).

    ``owner_user_id`` None is the operator (CLI), who may revoke any platform.
    """
    with app.db.transaction() as s:
        platform = _owned(s, platform_id, owner_user_id, lock=True)
        if platform.revoked_at is None:
            platform.revoked_at = app.clock.now()
        s.flush()
        result = _platform_view(platform)
    app.principals.clear()  # the old key or role must not outlive this in this process
    return result


# --- who is calling ---


# Built once (SQLAlchemy memoizes its cache key): this runs on every platform request.
_PLATFORM_BY_KEY = select(Platform.id, Platform.name).where(
    Platform.key_hash == bindparam("key_hash"), Platform.revoked_at.is_(None)
)


def principal_from_token(app: Potluck, token: str) -> Principal | None:
    """The caller behind a bearer token, or None for anything invalid.

    ``sk_…`` is a platform's secret key (looked up by its sha256; revoked keys are refused);
    anything else must be a valid access token of an existing person. The role comes from
    the database, not the token: a promotion or demotion applies at once in the process that
    makes it (it clears the cache) and within ``auth_cache_seconds`` in the others (a person
    is remembered by id that long, like a platform key).
    """
    from potluck.api.deps import Principal

    if not token or len(token) > tokens.MAX_TOKEN_LENGTH:
        return None
    if token.startswith(SECRET_KEY_PREFIX):
        cached = app.principals.get(token)
        if cached is not None:
            return cached
        # Columns, not the ORM entity: this runs on every platform request.
        with app.db.lookup() as s:
            found = s.execute(_PLATFORM_BY_KEY, {"key_hash": hash_secret_key(token)}).first()
        if found is None:
            return None
        principal = Principal(kind="platform", id=found.id, name=found.name, role="platform")
        app.principals.put(token, principal)
        return principal
    user_id = tokens.decode_access_token(token, key=signing_key(app), now=app.clock.now())
    if user_id is None:
        return None
    cached = app.principals.get_user(user_id)
    if cached is not None:
        return cached
    with app.db.lookup() as s:
        person = s.execute(_PRINCIPAL_BY_USER, {"user_id": user_id}).first()
    if person is None:
        return None
    principal = Principal(kind="user", id=person.id, name=person.name, role=person.role)
    app.principals.put_user(user_id, principal)
    return principal


_PRINCIPAL_BY_USER = select(User.id, User.name, User.role).where(User.id == bindparam("user_id"))


def cached_principal(app: Potluck, token: str) -> Principal | None:
    """The caller from this process's cache, without I/O (so without a thread-pool hop): a
    platform key seen within ``auth_cache_seconds``, or a valid access token (signature and
    times checked here) of a person seen within that time. None: ask ``principal_from_token``.
    """
    cached = app.principals.get(token)
    if cached is not None or token.startswith(SECRET_KEY_PREFIX) or app.principals.ttl <= 0:
        return cached
    key = app.settings.secret_key or _cached_key(app)
    if key is None or len(token) > tokens.MAX_TOKEN_LENGTH:
        return None
    user_id = tokens.decode_access_token(token, key=key, now=app.clock.now())
    return app.principals.get_user(user_id) if user_id is not None else None


def _cached_key(app: Potluck) -> str | None:
    cached = _keys.get(id(app))
    if cached is not None and cached[0]() is app:
        return cached[1]
    return None
