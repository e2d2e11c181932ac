"""Who is signed in to the console, and what they may do.

- Built-in users: argon2id hashes (argon2-cffi), checked at sign-in; failures counted per user
  and per address (``LoginLimiter``). A session is a signed cookie (itsdangerous) holding the
  user, the role, a random session id, when it began and when it was last used: past
  ``idle_timeout_minutes`` of silence or ``absolute_timeout_hours`` since sign-in it is void.
- Behind an auth proxy: the user and groups come from the configured headers, believed only
  when the peer (the TCP address, before any X-Forwarded-For) is in ``service.trusted_proxies``.
- CSRF: every state-changing request carries a token signed for this user and session id.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from worker.settings import ConsoleSettings

Role = Literal["viewer", "operator", "admin"]
RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}
COOKIE = "hirebridge_console"
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost", "[::1]"}
_HASHER = PasswordHasher()  # argon2id, the library's current recommended parameters
# Verified when the user is unknown, so that a wrong name costs what a wrong password costs.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash for ``console.users.<name>.password_hash``."""
    return _HASHER.hash(password)


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    role: Role
    session_id: str  # "proxy" for auth-proxy users

    def may(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


@dataclass
class LoginLimiter:
    """Failed sign-ins per user and per address within a sliding window."""

    max_failures: int
    window_seconds: float
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def locked(self, *keys: str) -> bool:
        return any(len(self._recent(key)) >= self.max_failures for key in keys)

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._recent(key).append(self.clock())

    def succeeded(self, user_key: str) -> None:
        self._failures.pop(user_key, None)

    def _recent(self, key: str) -> deque[float]:
        found = self._failures.setdefault(key, deque())
        horizon = self.clock() - self.window_seconds
        while found and found[0] < horizon:
            found.popleft()
        return found


class Authenticator:
    """Sign-in, sessions, proxy identities and CSRF tokens for one console configuration."""

    def __init__(
        self,
        settings: ConsoleSettings,
        trusted_proxies: Iterable[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
        self._sessions = URLSafeTimedSerializer(secret, salt="hirebridge-console-session")
        self._csrf = URLSafeTimedSerializer(secret, salt="hirebridge-console-csrf")
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._clock = clock
        self.limiter = LoginLimiter(
            settings.max_failed_logins, settings.lockout_minutes * 60, clock=clock
        )

    # -- built-in users -------------------------------------------------------------------

    def sign_in(self, user: str, password: str, address: str) -> Identity | str:
        """The identity, or why not (the same words for a wrong name or a wrong password)."""
        keys = (f"user:{user.lower()}", f"addr:{address}")
        if self.limiter.locked(*keys):
            return "too many failed sign-ins: try again later"
        account = self.settings.users.get(user)
        stored = account.password_hash.get_secret_value() if account else _DUMMY_HASH
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            self.limiter.failed(*keys)
            return "wrong user name or password"
        if account is None:  # pragma: no cover - a random dummy never matches
            return "wrong user name or password"
        self.limiter.succeeded(keys[0])
        return Identity(user, account.role, secrets.token_urlsafe(16))

    def session_cookie(self, identity: Identity, began: float | None = None) -> str:
        now = self._clock()
        payload = {
            "u": identity.user,
            "r": identity.role,
            "s": identity.session_id,
            "b": began if began is not None else now,
            "t": now,
        }
        return self._sessions.dumps(payload)

    def from_cookie(self, cookie: str | None) -> tuple[Identity, float] | None:
        """The session's identity and when it began; None when absent, forged or expired."""
        if not cookie:
            return None
        try:
            data: dict[str, Any] = self._sessions.loads(cookie)
        except BadSignature:
            return None
        now = self._clock()
        s = self.settings
        if now - float(data["t"]) > s.idle_timeout_minutes * 60:
            return None
        if now - float(data["b"]) > s.absolute_timeout_hours * 3600:
            return None
        user = str(data["u"])
        account = s.users.get(user)
        if s.mode != "users" or account is None:  # the user was removed since
            return None
        return Identity(user, account.role, str(data["s"])), float(data["b"])

    # -- auth proxy -----------------------------------------------------------------------

    def trusted_peer(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def from_proxy(self, peer: str | None, headers: Any) -> Identity | None:
        """The proxy's user, when the peer is a trusted proxy and the user has a role."""
        if self.settings.mode != "proxy" or not self.trusted_peer(peer):
            return None
        proxy = self.settings.proxy
        user = (headers.get(proxy.user_header) or "").strip()
        if not user:
            return None
        groups = [g.strip() for g in (headers.get(proxy.groups_header) or "").split(",")]
        roles = [proxy.group_roles[g] for g in groups if g in proxy.group_roles]
        if proxy.default_role is not None:
            roles.append(proxy.default_role)
        if not roles:
            return None
        return Identity(user, max(roles, key=RANK.__getitem__), "proxy")

    # -- CSRF -----------------------------------------------------------------------------

    def csrf_token(self, identity: Identity) -> str:
        return self._csrf.dumps([identity.user, identity.session_id])

    def csrf_valid(self, identity: Identity, token: str | None) -> bool:
        if not token:
            return False
        try:  # a proxy user's token has no session to end with it: it ends on its own
            max_age = int(self.settings.absolute_timeout_hours * 3600)
            user, session_id = self._csrf.loads(token, max_age=max_age)
        except (BadSignature, ValueError, TypeError):
            return False
        return bool(user == identity.user and session_id == identity.session_id)


def secure_cookie(host: str) -> bool:
    """Secure, unless the console is reached on loopback (plain http in a dev set-up)."""
    return host.split(":")[0] not in LOOPBACK_HOSTS and not host.startswith("[::1]")
