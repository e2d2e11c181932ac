"""The settings with every secret removed, for a support bundle.

Removed, at any depth: every ``SecretStr`` (the model marks its secrets so); every value under a
key that names a credential (``worker.redact.SECRET_KEYS`` and their kin: ``secret``, ``dsn``,
``*_password``...); every value of a headers map (``Authorization``, custom auth headers); the
user, password and query values of every URL (``postgresql://user:pass@host``, ``?api_key=``).
Then every text is scrubbed like a remote message (email addresses, long numbers), except the
PageUp tenant id, which PageUp support needs.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from pydantic import SecretBytes, SecretStr

from worker.redact import SECRET_KEYS, scrub_text
from worker.settings import Settings

REDACTED = "[redacted]"
_SECRET_NAMES = SECRET_KEYS | {
    "secret", "dsn", "auth", "cookie", "set_cookie", "apikey", "private_key", "passphrase",
    "signature", "sig", "x_api_key", "credentials",
}  # fmt: skip
_SECRET_ENDINGS = ("_secret", "_password", "_token", "_api_key", "_apikey", "_credentials")
_KEEP_AS_IS = {"tenant_id"}


def redacted_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, with nothing secret or personal left in them."""
    dumped = settings.model_dump(mode="python")
    cleaned = _clean(dumped, "")
    assert isinstance(cleaned, dict)
    return cleaned


def secret_values(settings: Settings) -> set[str]:
    """Every secret the settings hold, as text: a last pass over a bundle's files takes out any
    that a remote message or a header might have quoted back."""
    found: set[str] = set()
    _collect(settings.model_dump(mode="python"), "", found)
    return {value for value in found if len(value) >= 4}


def _collect(value: Any, key: str, found: set[str]) -> None:
    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, SecretBytes):
        found.add(value.get_secret_value().decode("utf-8", "replace"))
    elif isinstance(value, dict):
        headers = key.lower().endswith("headers")
        for k, v in value.items():
            if (headers or secret_key(str(k))) and isinstance(v, str) and v:
                found.add(v)
                found.update(v.split())  # "Bearer <token>": the token alone too
            _collect(v, str(k), found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, key, found)
    elif isinstance(value, str) and "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return
        if password:
            found.add(password)


def secret_key(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SECRET_NAMES or name.endswith(_SECRET_ENDINGS)


def _clean(value: Any, key: str) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, dict):
        if key.lower().endswith("headers"):
            return {str(k): REDACTED for k in value}
        return {str(k): _entry(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item, key) for item in value]
    if isinstance(value, PurePath):
        return _text(str(value), key)
    if isinstance(value, str):
        return _text(value, key)
    return value


def _entry(key: str, value: Any) -> Any:
    if secret_key(key) and not isinstance(value, dict | list):
        return value if value in (None, "") else REDACTED
    return _clean(value, key)


def _text(text: str, key: str) -> str:
    if key in _KEEP_AS_IS:
        return text
    if "://" in text:
        text = _url(text)
    return scrub_text(text)


def _url(text: str) -> str:
    """A URL without its user, password or query values (a URL that does not parse as one is
    redacted whole)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return REDACTED
    if not (parts.username or parts.password or parts.query or parts.fragment):
        return text  # nothing to take out (and sqlite:////path keeps its slashes)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    if parts.username or parts.password:
        netloc = f"{REDACTED}@{netloc}"
    query = "&".join(f"{quote(k)}={REDACTED}" for k, _ in parse_qsl(parts.query, True))
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))
