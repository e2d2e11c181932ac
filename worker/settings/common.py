"""What every settings section shares: a strict, frozen model; retries; outbound authentication."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(Section):
    """How one remote call is retried inside a run (transient failures only)."""

    attempts: int = Field(4, ge=1, le=20)
    backoff_initial_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, gt=0)
    timeout_seconds: float = Field(30.0, gt=0)


class AuthSettings(Section):
    """Outbound authentication for an HTTP destination."""

    type: Literal["none", "basic", "bearer", "api_key", "oauth2"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    header_name: str = "X-API-Key"
    api_key: SecretStr | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete_for_type(self) -> Self:
        needed = {
            "none": [],
            "basic": ["username", "password"],
            "bearer": ["token"],
            "api_key": ["api_key"],
            "oauth2": ["token_url", "client_id", "client_secret"],
        }[self.type]
        missing = [name for name in needed if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self
