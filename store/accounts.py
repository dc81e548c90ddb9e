"""People and integrations: users with argon2 password hashes, browser sessions, API tokens, sign-in
throttling and single-use links."""

from __future__ import annotations

import hashlib
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from engine.access import check_role, check_scopes
from store.store import Store
from store.tables import ApiToken, AuthSession, SignInFailure, UsedLink, User

HASHER = PasswordHasher()
SESSION_SECONDS = 7 * 86400
MIN_PASSWORD = 10
# Failed sign-ins allowed before a lock, and the lock after each further failure (doubling, capped).
FREE_FAILURES, FIRST_LOCK, LONGEST_LOCK, FORGET_AFTER = 5, 30.0, 3600.0, 900.0
TOKEN_PREFIX = "nrt"
TOUCH_EVERY = 60.0  # last-used time is written at most this often per token, not on every call


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email.strip("@") or len(email) < 3:
        raise ValueError(f"'{email}' is not an email address")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password needs at least {MIN_PASSWORD} characters")
    return password


class Accounts:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- users -----------------------------------------------------------------------------------------------

    def any_users(self) -> bool:
        with self.store.session() as s:
            return s.exec(select(User.id).limit(1)).first() is not None

    def users(self) -> list[User]:
        with self.store.session() as s:
            return list(s.exec(select(User).order_by(col(User.email))))

    def user(self, user_id: int) -> User | None:
        with self.store.session() as s:
            return s.get(User, user_id)

    def by_email(self, email: str) -> User | None:
        with self.store.session() as s:
            return s.exec(select(User).where(col(User.email) == email.strip().lower())).first()

    def by_rep(self, rep_id: str) -> User | None:
        with self.store.session() as s:
            return s.exec(select(User).where(col(User.rep_id) == rep_id, col(User.active).is_(True))).first()

    def add_user(self, email: str, role: str, name: str = "", password: str | None = None,
                 rep_id: str = "") -> User:
        user = User(email=check_email(email), name=name.strip(), role=check_role(role), rep_id=rep_id.strip(),
                    password_hash=HASHER.hash(check_password(password)) if password else "", created_at=time.time())
        try:
            with self.store.session() as s:
                s.add(user)
        except IntegrityError:
            raise ValueError(f"there is already a user '{email}'") from None
        return user

    def change(self, user_id: int, role: str | None = None, active: bool | None = None,
               rep_id: str | None = None) -> tuple[User, dict[str, list[object]]]:
        """The user after the change, and what changed as {field: [before, after]}. Deactivation signs them out."""
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise KeyError(f"no user {user_id}")
            changed: dict[str, list[object]] = {}
            for field, value in (("role", role and check_role(role)), ("active", active), ("rep_id", rep_id)):
                if value is not None and getattr(user, field) != value:
                    changed[field] = [getattr(user, field), value]
                    setattr(user, field, value)
            s.add(user)
            if user.active is False:
                s.exec(delete(AuthSession).where(col(AuthSession.user_id) == user_id))
        return user, changed

    def set_password(self, user_id: int, password: str) -> None:
        """Also ends every session the user had: a reset after a stolen password locks the thief out."""
        hashed = HASHER.hash(check_password(password))
        with self.store.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise KeyError(f"no user {user_id}")
            user.password_hash = hashed
            s.add(user)
            s.exec(delete(AuthSession).where(col(AuthSession.user_id) == user_id))

    def verify(self, email: str, password: str) -> User | None:
        user = self.by_email(email)
        if user is None or not user.active or not user.password_hash:
            HASHER.hash(password)  # as slow as a real check, so timing does not tell which addresses exist
            return None
        try:
            HASHER.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if HASHER.check_needs_rehash(user.password_hash):
            self.set_password(user.id or 0, password)
        return user

    # --- sessions ----------------------------------------------------------------------------------------------

    def open_session(self, user_id: int) -> str:
        """A new session's secret id, for the signed cookie."""
        secret, now = secrets.token_urlsafe(32), time.time()
        with self.store.session() as s:
            s.add(AuthSession(id=_sha(secret), user_id=user_id, csrf=secrets.token_urlsafe(24), created_at=now,
                              expires_at=now + SESSION_SECONDS))
            s.exec(delete(AuthSession).where(col(AuthSession.expires_at) < now))
        return secret

    def session(self, secret: str) -> tuple[AuthSession, User] | None:
        with self.store.session() as s:
            row = s.get(AuthSession, _sha(secret))
            if row is None or row.expires_at < time.time():
                return None
            user = s.get(User, row.user_id)
            return (row, user) if user is not None and user.active else None

    def close_session(self, secret: str) -> None:
        with self.store.session() as s:
            s.exec(delete(AuthSession).where(col(AuthSession.id) == _sha(secret)))

    # --- API tokens --------------------------------------------------------------------------------------------

    def add_token(self, name: str, scopes: list[str], created_by: str) -> tuple[str, ApiToken]:
        """The token itself (shown once, never stored) and its row."""
        if not name.strip():
            raise ValueError("a token needs a name, e.g. the integration that uses it")
        public, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        plain = f"{TOKEN_PREFIX}_{public}_{secret}"
        row = ApiToken(id=public, name=name.strip(), hash=_sha(plain), scopes=check_scopes(scopes),
                       created_by=created_by, created_at=time.time())
        with self.store.session() as s:
            s.add(row)
        return plain, row

    def token(self, plain: str) -> ApiToken | None:
        """The live token this text is, noting its use; None when unknown or revoked."""
        prefix, _, rest = plain.partition("_")
        public = rest.partition("_")[0]
        if prefix != TOKEN_PREFIX or not public:
            return None
        with self.store.session() as s:
            row = s.get(ApiToken, public)
            if row is None or row.revoked_at is not None or not secrets.compare_digest(row.hash, _sha(plain)):
                return None
            now = time.time()
            if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
                row.last_used_at = now
                s.add(row)
            return row

    def tokens(self) -> list[ApiToken]:
        with self.store.session() as s:
            return list(s.exec(select(ApiToken).order_by(col(ApiToken.created_at).desc())))

    def revoke(self, token_id: str) -> ApiToken:
        with self.store.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                raise KeyError(f"no token '{token_id}'")
            if row.revoked_at is None:
                row.revoked_at = time.time()
                s.add(row)
            return row

    # --- throttling and single-use links --------------------------------------------------------------------

    def locked_for(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until a sign-in may be tried again for these keys (0: now)."""
        now = now or time.time()
        with self.store.session() as s:
            rows = [s.get(SignInFailure, k) for k in keys]
        return max([r.locked_until - now for r in rows if r is not None] + [0.0])

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = now or time.time()
        with self.store.session() as s:
            for key in keys:
                row = s.get(SignInFailure, key) or SignInFailure(key=key)
                if now - row.last_at > FORGET_AFTER:
                    row.failures = 0
                row.failures += 1
                row.last_at = now
                over = row.failures - FREE_FAILURES
                if over >= 0:
                    row.locked_until = now + min(FIRST_LOCK * 2 ** over, LONGEST_LOCK)
                s.add(row)

    def succeeded(self, keys: list[str]) -> None:
        with self.store.session() as s:
            s.exec(delete(SignInFailure).where(col(SignInFailure.key).in_(keys)))

    def use_once(self, jti: str) -> bool:
        """True the first time a link is used; False ever after."""
        try:
            with self.store.session() as s:
                s.add(UsedLink(jti=jti, used_at=time.time()))
        except IntegrityError:
            return False
        return True
