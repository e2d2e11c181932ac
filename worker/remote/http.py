"""One HTTP exchange with a remote system, turned into the error taxonomy.

Both the PageUp source and the HTTP sinks use this, so every remote call has the same timeouts,
body limits, status classification and error-message extraction.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from worker import alerts, metrics
from worker.errors import PermanentError, RateLimitedError, RetriableError
from worker.redact import scrub_text
from worker.remote import failures, lanes
from worker.remote.retry import current_attempt

MAX_BODY_MIB = 8
MAX_BODY_BYTES = MAX_BODY_MIB * 1024 * 1024
MAX_MESSAGE_CHARS = 400
log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    """A fully read HTTP response."""

    status: int
    headers: httpx.Headers
    body: bytes
    system: str
    stage: str

    def json(self) -> Any:
        """The body as JSON, or a PermanentError that says what is wrong with it."""
        content_type = self.headers.get("content-type", "")
        if "json" not in content_type.lower():
            shown = content_type.split(";")[0] or "no content type"
            raise PermanentError(
                f"HTTP {self.status} with a {shown} body, expected JSON",
                system=self.system,
                status=self.status,
                stage=self.stage,
            )
        try:
            return json.loads(self.body.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "is not valid UTF-8"
        except ValueError:
            problem = "is not valid JSON"
        raise PermanentError(
            f"HTTP {self.status} body {problem}",
            system=self.system,
            status=self.status,
            stage=self.stage,
        )


@dataclass(frozen=True, slots=True)
class FailedExchange:
    """An exchange that got no answer, an answer too large, or an HTTP status of 400 or more:
    what an observer (the PageUp error log) is told. ``reply`` is the answer, if any;
    ``problem`` says why there is none."""

    method: str
    route: str  # the path template, never the URL
    stage: str
    status: int | None
    attempt: int
    seconds: float
    reply: Reply | None
    problem: str | None


Observer = Callable[[FailedExchange], None]


def route_of(url: str) -> str:
    """The path of a URL from the settings, as the route of calls to it (no host, no query)."""
    return urlsplit(url).path or "/"


async def exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    system: str,
    stage: str,
    route: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    files: Any = None,
    content: Any = None,
    observe: Observer | None = None,
) -> Reply:
    """Send one request and read its body (capped). Transport failures become RetriableError.

    ``route`` is the path template the caller filled in (``offers/{offer_id}``), or the path
    of a URL that comes from the settings: it names the call in Sentry breadcrumbs, where the
    URL itself may not go (ids in paths can be personal). Inside a worker lane (see
    ``worker.remote.lanes``) the lane's client is used instead of ``client``. ``files`` (a
    multipart form's file parts, streamed from their file objects) and ``content`` (bytes or
    an async iterator of them) send a body other than JSON or a form. ``observe`` is told of
    a failed exchange (see ``FailedExchange``); it must not raise, and cannot fail it.
    """
    client = lanes.current(client)
    started = time.perf_counter()
    request = client.build_request(
        method, url, headers=headers, params=params, json=json_body, data=form, files=files,
        content=content, timeout=timeout,
    )  # fmt: skip
    call = (system, stage, method, route)
    try:
        response = await client.send(request, stream=True)
        try:
            body = await _read_capped(response, system=system, stage=stage)
        except PermanentError as too_large:
            record_call(call, response.status_code, started)
            _tell(observe, call, response.status_code, started, None, str(too_large))
            raise
        finally:
            await response.aclose()
    except httpx.TransportError as exc:
        trust = lanes.trust_store(client)
        failure = failures.describe(exc, request.url, timeout=timeout, trust=trust)
        timed_out = isinstance(exc, httpx.TimeoutException)
        record_call(call, "timeout" if timed_out else "connection_error", started, failure.cause)
        _tell(observe, call, None, started, None, failure.message)
        raise RetriableError(failure.message, system=system, stage=stage) from None
    record_call(call, response.status_code, started)
    reply = Reply(response.status_code, response.headers, body, system, stage)
    if reply.status >= 400:
        _tell(observe, call, reply.status, started, reply, None)
    return reply


def _tell(
    observe: Observer | None, call: tuple[str, str, str, str], status: int | None,
    started: float, reply: Reply | None, problem: str | None,
) -> None:  # fmt: skip
    """Tell the observer, if any, of a failed exchange; its own failure is only logged."""
    if observe is None:
        return
    _system, stage, method, route = call
    seconds = time.perf_counter() - started
    failed = FailedExchange(method, _template(route), stage, status, current_attempt(), seconds,
                            reply, problem)  # fmt: skip
    try:
        observe(failed)
    except Exception as exc:  # the observer is a bystander: the call's outcome stands
        log.error("exchange_observer_failed", error=type(exc).__name__)


def record_call(
    call: tuple[str, str, str, str], status: int | str, started: float, cause: str | None = None
) -> None:
    """Metrics and a Sentry breadcrumb for one exchange (``route``: a path template)."""
    system, stage, method, route = call
    seconds = time.perf_counter() - started
    metrics.REQUESTS.labels(system, stage, str(status)).inc()
    metrics.note_call(system, stage, status)
    metrics.REQUEST_SECONDS.labels(system).observe(seconds)
    if status == 429:
        metrics.RATE_LIMITED.labels(system).inc()
    alerts.remote_call(
        system=system, stage=stage, method=method, route=_template(route),
        status=status if isinstance(status, int) else None, cause=cause, seconds=seconds,
        attempt=current_attempt(),
    )  # fmt: skip


def _template(route: str) -> str:
    """A route without scheme, host or query, whatever the caller passed."""
    if "://" in route:
        route = urlsplit(route).path
    return route.split("?", 1)[0].split("#", 1)[0]


async def _read_capped(response: httpx.Response, *, system: str, stage: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(response.status_code, system, stage)
    if response.is_stream_consumed:  # already read by the transport (mocks, cassettes)
        if len(response.content) > MAX_BODY_BYTES:
            raise _too_large(response.status_code, system, stage)
        return response.content
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(response.status_code, system, stage)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(status: int, system: str, stage: str) -> PermanentError:
    # In MiB: a byte count has enough digits for the PII scrubber to hide it as "[number]".
    return PermanentError(
        f"HTTP {status} body larger than {MAX_BODY_MIB} MiB",
        system=system,
        status=status,
        stage=stage,
    )


def raise_for_status(reply: Reply, *, success: frozenset[int], retry_after_cap: float) -> None:
    """Return if ``reply`` is a success, else raise the matching error."""
    status = reply.status
    if status in success:
        return
    detail = error_detail(reply)
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    system, stage = reply.system, reply.stage
    if status == 429 or status == 408 or status >= 500:
        wait = parse_retry_after(reply.headers.get("retry-after"), cap=retry_after_cap)
        error = RateLimitedError if status == 429 else RetriableError
        raise error(message, system=system, status=status, stage=stage, retry_after=wait)
    raise PermanentError(message, system=system, status=status, stage=stage)


def parse_retry_after(value: str | None, *, cap: float, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date); None if unusable.

    Values <= 0 are ignored; values above ``cap`` are capped.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds <= 0:  # NaN or not in the future
        return None
    return min(seconds, cap)


def error_detail(reply: Reply) -> str:
    """A short human-readable reason from an error body, in any shape we have seen.

    PageUp answers ``[{"message": ..., "field": ...}]`` or ``{"Message": ...}``; HRIS APIs use
    ``message``, ``error``, ``errors``, ``detail`` or ``title``. Non-JSON bodies are described,
    not echoed. PII-looking values are scrubbed.
    """
    try:
        data = json.loads(reply.body.decode("utf-8")) if reply.body else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if data is None:
        # BambooHR answers errors with an empty body and the text in X-BambooHR-Error-Message.
        header = next((v for k, v in reply.headers.items() if k.endswith("error-message")), "")
        if header or not reply.body:
            return scrub_text(header)[:MAX_MESSAGE_CHARS]
        kind = reply.headers.get("content-type", "").split(";")[0] or "unknown"
        return f"non-JSON {kind} body"
    text = "; ".join(_messages(data) + _field_errors(data))
    return scrub_text(text)[:MAX_MESSAGE_CHARS]


def _field_errors(data: Any) -> list[str]:
    """Per-field details some APIs put beside a generic message: ASP.NET's ``modelState``
    (Employment Hero) and Xero's ``ValidationErrors`` inside the records it sends back."""
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    model_state = data.get("modelState") or data.get("ModelState")
    if isinstance(model_state, dict):
        for name, texts in list(model_state.items())[:10]:
            listed = texts if isinstance(texts, list) else [texts]
            found.extend(f"{name}: {text}" for text in listed[:3] if isinstance(text, str))
    for key in ("Employees", "Elements"):
        for record in data.get(key) or []:
            errors = record.get("ValidationErrors") if isinstance(record, dict) else None
            for error in (errors or [])[:10]:
                if isinstance(error, dict) and isinstance(error.get("Message"), str):
                    found.append(error["Message"])
    return found


def _messages(data: Any, depth: int = 0) -> list[str]:
    if depth > 3:
        return []
    if isinstance(data, str):
        return [data]
    if isinstance(data, list):
        return [m for item in data[:10] for m in _messages(item, depth + 1)]
    if not isinstance(data, dict):
        return []
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in ("message", "error_description", "error", "detail", "title", "error_text", "value"):
        value = lowered.get(key)
        if isinstance(value, str) and value:
            field = lowered.get("field")
            return [f"{field}: {value}" if isinstance(field, str) and field else value]
        if isinstance(value, dict):  # OData: {"error": {"message": {"value": ...}}}
            nested = _messages(value, depth + 1)
            if nested:
                return nested
    for key in ("errors", "messages", "validationerrors"):
        if key in lowered:
            return _messages(lowered[key], depth + 1)
    if depth > 0 and len(lowered) <= 5:
        return [
            f"{k}: {v}" if isinstance(v, str) else f"{k}: {'; '.join(_messages(v, depth + 1))}"
            for k, v in data.items()
        ]
    return []
