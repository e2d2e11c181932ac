"""PageUp's integrator duties: the error log kept for PageUp support, and notices to HR users."""

from __future__ import annotations

import re
from typing import Literal, Self
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from worker.settings.common import Section

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")  # an HTTP header name (a token)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # a metric label and an env variable part
NoticeKind = Literal["offer", "push", "job", "source", "application"]
NOTICE_KINDS: tuple[NoticeKind, ...] = ("offer", "push", "job", "source", "application")


class ErrorLogSettings(Section):
    """Every failed call to PageUp, kept in the database for PageUp support (no bodies)."""

    # Rows older than this are deleted (by `hirebridge run`, hourly, and by each sync run).
    retention_days: int = Field(90, ge=1)
    # Response headers whose value is kept as the call's request id, the first one present.
    request_id_headers: list[str] = [
        "X-Request-Id", "X-Correlation-Id", "Request-Id", "X-Amzn-RequestId",
    ]  # fmt: skip

    @field_validator("request_id_headers")
    @classmethod
    def _header_names(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not _HEADER.match(name)]
        if bad:
            raise ValueError(f"not header names: {', '.join(map(repr, bad))}")
        return names


class ChannelSettings(Section):
    """One place notices go: an Apprise URL (``mailtos://``, ``slack://``, ``workflows://``...)."""

    enabled: bool = True
    url: SecretStr  # it carries the channel's credentials
    # Which notices go there: parked offers, pushes, jobs, and halted sources.
    kinds: list[NoticeKind] = list(NOTICE_KINDS)
    # Only the notices of these PageUp sources (offers, halts); empty: every source.
    sources: list[str] = []

    @field_validator("url")
    @classmethod
    def _verified(cls, url: SecretStr) -> SecretStr:
        text = url.get_secret_value()
        if "://" not in text:
            raise ValueError("an Apprise URL such as mailtos://user:pass@smtp.example.com")
        for key, value in parse_qsl(urlsplit(text).query):
            if key.lower() == "verify" and value.lower() in ("no", "false", "0", "off"):
                raise ValueError("TLS verification cannot be turned off (verify=no)")
        return url


class NotificationSettings(Section):
    """Notices to HR users when a hire is stuck; nothing is sent without channels."""

    channels: dict[str, ChannelSettings] = {}
    # When a digest goes out: "immediately" (after gather_seconds, so that a burst is one
    # message), "hourly" (on the hour), "daily" (at daily_at), or a five-field cron expression.
    digest: str = "immediately"
    daily_at: str = "09:00"
    # The digest's time zone; null: service.schedule.timezone.
    timezone: str | None = None
    gather_seconds: float = Field(60.0, ge=0)
    # How often `hirebridge run` looks for notices to send.
    poll_seconds: float = Field(15.0, gt=0)
    # A channel that failed is tried again after a growing delay, within these bounds.
    retry_initial_seconds: float = Field(60.0, gt=0)
    retry_max_seconds: float = Field(3600.0, gt=0)
    # The console's base URL (https://hirebridge.example.com): each offer links to
    # <console_url>/console/offers/<source>/<offer id>. null: no links.
    console_url: str | None = None
    # Where a hire's position and start date sit in the source document (JMESPath over
    # offer, onboarding, application), captured when the offer parks. Nothing else is kept.
    position_path: str = "offer.PositionTitle || offer.Job.Title"
    start_date_path: str = "offer.StartDate"
    # Hires listed in one message; the rest are counted.
    max_listed: int = Field(50, ge=1, le=500)
    # A source halting again for the same cause within this many hours is not notified again.
    halt_repeat_hours: float = Field(24.0, ge=0)
    # Sent notices are deleted after this many days.
    retention_days: int = Field(90, ge=1)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        from worker.notices.windows import digest_trigger  # APScheduler checks the expression

        bad = [name for name in self.channels if not _CHANNEL.match(name)]
        if bad:
            raise ValueError(f"channel names are lower-case letters, digits and _: {bad}")
        if not _CLOCK.match(self.daily_at):
            raise ValueError(f"daily_at {self.daily_at!r} is not HH:MM (24-hour)")
        digest_trigger(self, self.timezone or "UTC")
        if self.console_url is not None and urlsplit(self.console_url).scheme not in (
            "http", "https",
        ):  # fmt: skip
            raise ValueError("console_url must be an http(s) URL")
        return self
