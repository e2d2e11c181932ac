"""The operator console (``/console/`` on the service port): who may sign in, and how."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from worker.settings.common import Section

Role = Literal["viewer", "operator", "admin"]


class ConsoleUser(Section):
    """A built-in user: an argon2id hash (``hirebridge console hash-password``) and a role."""

    password_hash: SecretStr
    role: Role = "viewer"

    @model_validator(mode="after")
    def _argon2id(self) -> Self:
        if not self.password_hash.get_secret_value().startswith("$argon2id$"):
            raise ValueError(
                "password_hash must be an argon2id hash (make one with "
                "`hirebridge console hash-password`)"
            )
        return self


class ConsoleProxySettings(Section):
    """Sign-in by an auth proxy in front (oauth2-proxy, an Ingress with OIDC). Its headers are
    believed only from ``service.trusted_proxies``."""

    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"  # comma-separated
    # Group -> role; a user in several groups gets the highest. No matching group: default_role
    # (null: refused).
    group_roles: dict[str, Role] = {}
    default_role: Role | None = None


class ConsoleSettings(Section):
    enabled: bool = False
    # "users": the built-in users below sign in with a password. "proxy": an auth proxy.
    mode: Literal["users", "proxy"] = "users"
    users: dict[str, ConsoleUser] = {}
    proxy: ConsoleProxySettings = ConsoleProxySettings()
    # Signs the session cookies and CSRF tokens: 32 characters or more, from the environment
    # (HIREBRIDGE_CONSOLE__SESSION_SECRET) or a secret file (console__session_secret).
    session_secret: SecretStr | None = None
    idle_timeout_minutes: float = Field(30.0, gt=0)
    absolute_timeout_hours: float = Field(12.0, gt=0)
    # Sign-in failures allowed per user, and per address, within lockout_minutes; past them
    # that user (or address) is refused until the window passes.
    max_failed_logins: int = Field(5, ge=1)
    lockout_minutes: float = Field(15.0, gt=0)
    # Admins may write a field map from the console (atomically, keeping the previous
    # versions). Off, or the map file read-only (a ConfigMap): the page says how to apply.
    allow_map_apply: bool = False
    map_versions_kept: int = Field(10, ge=1)
    # Page size of the lists.
    page_size: int = Field(50, ge=5, le=500)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.enabled:
            return self
        problems = []
        secret = self.session_secret.get_secret_value() if self.session_secret else ""
        if len(secret) < 32:
            problems.append(
                "session_secret: 32 characters or more are needed when the console is enabled "
                "(HIREBRIDGE_CONSOLE__SESSION_SECRET or the secret file console__session_secret)"
            )
        if self.mode == "users" and not self.users:
            problems.append("users: mode 'users' needs at least one user")
        if problems:
            raise ValueError("; ".join(problems))
        return self
