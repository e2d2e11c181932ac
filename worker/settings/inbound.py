"""Pushes received by ``hirebridge run``: Apna leads and POP Engine notifications."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from worker.settings.common import RetrySettings, Section
from worker.settings.targets import HrisSettings


class InboundAuthSettings(Section):
    """How a pushing system proves itself: HTTP Basic, a bearer token, or an API key header."""

    type: Literal["basic", "bearer", "api_key"] = "basic"
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    header_name: str = "X-API-Key"
    api_key: SecretStr | None = None

    def missing(self) -> list[str]:
        """What the type needs and is not set (checked when the source is enabled)."""
        needed = {"basic": ["username", "password"], "bearer": ["token"], "api_key": ["api_key"]}
        return [name for name in needed[self.type] if getattr(self, name) in (None, "")]


class ApnaSettings(Section):
    """Apna pushes candidate leads (POST, JSON) to ``path``."""

    enabled: bool = False
    path: str = Field("/inbound/apna", pattern=r"^/[A-Za-z0-9_\-/]*$")
    auth: InboundAuthSettings | None = None  # required when enabled
    allow_ips: list[str] = []  # CIDRs; empty: any source address
    target: HrisSettings | None = None  # where leads are delivered; required when enabled


class PopEngineSettings(Section):
    """The POP Engine's own API, for the assessment score (``score_calc_get``)."""

    api_url: str = "https://popengine.example.com/api/1.0"
    username: str = ""
    password: SecretStr | None = None
    retry: RetrySettings = RetrySettings()


class PopSettings(Section):
    """The POP Engine notifies ``path``/{application id} when an applicant completes."""

    enabled: bool = False
    path: str = Field("/inbound/pop", pattern=r"^/[A-Za-z0-9_\-/]*$")
    # The string the engine base64-encodes into its Basic header: "user:password".
    auth: SecretStr | None = None  # required when enabled
    methods: list[Literal["POST", "PATCH", "GET"]] = ["POST", "PATCH", "GET"]
    # Headers the engine must send (its not_headers), checked on every notification.
    notify_headers: dict[str, SecretStr] = {}
    allow_ips: list[str] = []
    engine: PopEngineSettings = PopEngineSettings()
    target: HrisSettings | None = None


class InboundSettings(Section):
    """Pushes received by ``hirebridge run`` on the service port (service.host/port)."""

    # How the pushing systems reach this service (before any path), for `hirebridge pop-config`.
    public_url: str = "https://hirebridge.example.com"
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Concurrent deliveries to the targets, and how often due retries are looked for.
    delivery_concurrency: int = Field(4, ge=1, le=64)
    poll_seconds: float = Field(5.0, gt=0)
    # A parked push keeps its body (personal data) this many days after it was parked, for an
    # admin to retry it; then the body is deleted (the row, its reason and an audit entry stay).
    parked_retention_days: int = Field(30, ge=1)
    apna: ApnaSettings = ApnaSettings()
    pop: PopSettings = PopSettings()

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        problems = []
        if self.apna.enabled and (self.apna.auth is None or self.apna.target is None):
            problems.append("apna: enabled needs auth and target")
        elif self.apna.enabled and self.apna.auth is not None and self.apna.auth.missing():
            kind = self.apna.auth.type
            problems.append(f"apna.auth: type {kind!r} needs {', '.join(self.apna.auth.missing())}")
        if self.pop.enabled and (self.pop.auth is None or self.pop.target is None):
            problems.append("pop: enabled needs auth and target")
        if self.apna.enabled and self.pop.enabled and self.apna.path == self.pop.path:
            problems.append("apna.path and pop.path must differ")
        if problems:
            raise ValueError("; ".join(problems))
        return self
