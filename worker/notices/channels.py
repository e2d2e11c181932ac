"""Where notices go: one Apprise URL per channel (email over SMTP, Slack, Microsoft Teams...).

Apprise (caronc/apprise) speaks to each service through one URL: ``mailtos://`` (SMTP with
STARTTLS and login), ``slack://`` or a Slack webhook URL, ``workflows://`` (Teams through a
Power Automate workflow, Microsoft's replacement for the retired Office 365 connectors),
``json://`` for any webhook, and many more. It verifies TLS certificates by default (against the
system's CA store; ``verify=no`` is refused in the settings). It is synchronous, so each send
runs in a thread of its own, never on the event loop or the store's thread.

Apprise answers a send with true or false; why it failed is in its log, captured here and
scrubbed of the channel's own credentials (its URL's user, password, path and query values)
and of personal data before it goes anywhere.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from worker.errors import ConfigError
from worker.redact import scrub_text
from worker.settings import NotificationSettings

_MAX_ERROR_CHARS = 400


class ChannelError(Exception):
    """A channel did not take the message; the text is safe to log and store."""


class Channel:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ConfigError([f"notifications.channels.{name}.url: not an Apprise URL it "
                               "understands (see https://appriseit.com/services/)"])  # fmt: skip
        (plugin,) = list(self._apprise)
        self.service = str(getattr(plugin, "service_name", None) or type(plugin).__name__)
        self._secrets = _secret_parts(url)

    def send(self, title: str, body: str) -> None:
        """Send one message (blocking); ChannelError says why it was not taken."""
        capture = apprise.LogCapture(  # type: ignore[no-untyped-call]
            level=logging.WARNING, fmt="%(message)s"
        )
        with capture as captured:
            try:
                sent = self._apprise.notify(
                    body=body, title=title, body_format=apprise.NotifyFormat.TEXT
                )
            except Exception as exc:  # a plugin's own bug: the channel failed, not the caller
                raise ChannelError(self.scrub(f"{type(exc).__name__}: {exc}")) from None
        if not sent:
            reason = " ".join(captured.getvalue().split()) or "the service did not take it"
            raise ChannelError(self.scrub(reason))

    def scrub(self, text: str) -> str:
        """``text`` without the channel's credentials or personal data."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return scrub_text(text)[:_MAX_ERROR_CHARS]


def _secret_parts(url: str) -> list[str]:
    """Every part of a channel URL that may be a credential: user, password, each path
    segment (Slack and Teams put their tokens there) and each query value."""
    parts = urlsplit(url)
    found = [parts.username or "", parts.password or ""]
    found += [segment for segment in parts.path.split("/") if segment]
    found += [value for _, value in parse_qsl(parts.query)]
    pieces = {unquote(piece) for piece in found} | set(found)
    # Longest first, so that a token is not half-replaced by a shorter piece of it.
    return sorted((p for p in pieces if len(p) >= 4 and not re.fullmatch(r"\d{1,5}", p)),
                  key=len, reverse=True)  # fmt: skip


def build_channels(settings: NotificationSettings) -> dict[str, Channel]:
    """Every configured channel; ConfigError names each URL Apprise does not understand."""
    channels, problems = {}, []
    for name, channel in settings.channels.items():
        if not channel.enabled:
            continue
        try:
            channels[name] = Channel(name, channel.url.get_secret_value())
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return channels
