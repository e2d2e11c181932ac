"""The error taxonomy. Every failure hirebridge reports is one of these.

```
HirebridgeError
 ├─ ConfigError          bad settings or mappings: refuse to start, say exactly what
 ├─ MappingError         a record cannot be mapped: park the record with the reason
 └─ DeliveryError        a remote call failed
     ├─ RetriableError   timeouts, 5xx, 429 (carries retry_after): try again later
     │   └─ RateLimitedError   429: the remote's (daily) quota is spent
     └─ PermanentError   4xx other than 408/429, invalid responses: park, alert
         └─ DocumentRefused    an offer document fails a limit (size, type, content) or its
                               download link is refused twice: park (if it is required)
```

Messages name the field, the record or the HTTP status; they never carry PII or secrets.
Record ids a message names on purpose (an offer, an application) are listed in ``record_ids``,
so that the PII scrubber, which hides every long number, leaves them readable.
"""

from __future__ import annotations


class HirebridgeError(Exception):
    """Base of every error hirebridge raises on purpose."""

    kind = "error"
    record_ids: tuple[str, ...] = ()  # ids named in the message, not personal data


class ConfigError(HirebridgeError):
    """Settings or field maps are invalid. Lists every problem found."""

    kind = "config"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class MappingError(HirebridgeError):
    """A record could not be mapped; names the target fields and source expressions."""

    kind = "mapping"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class DeliveryError(HirebridgeError):
    """A call to a remote system failed."""

    kind = "delivery"

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        stage: str = "",
        record_ids: tuple[str, ...] = (),
    ) -> None:
        self.system = system
        self.status = status
        self.stage = stage
        self.record_ids = record_ids
        super().__init__(message)


class RetriableError(DeliveryError):
    """A transient failure: the same call may succeed later."""

    kind = "retriable"

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        stage: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status, stage=stage)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The remote refused with 429; its quota (PageUp's is daily) is spent for now."""

    kind = "rate_limited"


class PermanentError(DeliveryError):
    """The remote refused the request or answered nonsense; retrying cannot help."""

    kind = "permanent"


class DocumentRefused(PermanentError):
    """An offer document cannot be taken: over ``documents.max_bytes``, a type or extension the
    allow-list lacks, bytes that are not of the declared type, or a download link refused even
    when fresh. The message names the document by its PageUp id, never by its title."""

    kind = "document_refused"
