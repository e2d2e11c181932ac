"""Every setting, modelled once.

Sources, highest priority first: environment variables (``HIREBRIDGE_`` prefix, ``__`` between
nested keys, e.g. ``HIREBRIDGE_PAGEUP__CLIENT_SECRET``), secret files in
``$HIREBRIDGE_SECRETS_DIR`` (one file per key, named like ``pageup__client_secret``, as Kubernetes
mounts them), then the YAML file. ``config.example.yaml`` documents every key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Section):
    """How one remote call is retried inside a run (transient failures only)."""

    attempts: int = Field(4, ge=1, le=20)
    backoff_initial_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, gt=0)
    timeout_seconds: float = Field(30.0, gt=0)


class PageUpPaths(_Section):
    """Endpoint paths under the API root. Only ``/offers`` is published; the rest are ASSUMED."""

    offers: str = "offers"
    offer: str = "offers/{offer_id}"
    onboarding_form: str = "offers/{offer_id}/onboardingform"
    application_form: str = "applications/{application_id}/applicationForm"
    mark_processed: str = "offers/{offer_id}/process"


class PagingSettings(_Section):
    """How the offers list pages, if it does (PageUp publishes nothing about paging).

    The run collects every page *before* marking anything processed, so offset paging is safe.
    """

    mode: Literal["none", "page_number", "next_link"] = "none"
    page_param: str = "page"
    size_param: str = "pageSize"
    page_size: int = Field(100, ge=1)
    first_page: int = 1
    next_link_path: str = "Paging.Next"
    max_pages: int = Field(1000, ge=1)


class PageUpSettings(_Section):
    environment: Literal["live", "uat"] = "uat"
    data_centre: Literal["dc2", "dc3", "dc4", "dc5"] = "dc2"
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = ["Public.Offer.Read", "Public.Offer.Write", "Public.Application.Read"]
    api_base_url: str | None = None
    token_url: str | None = None
    paths: PageUpPaths = PageUpPaths()
    paging: PagingSettings = PagingSettings()
    offer_action_type_id: int | None = None
    offer_id_path: str = "PUReferenceID"
    application_id_path: str = "Applications.PUReferenceID"
    list_items_path: str | None = None
    retry: RetrySettings = RetrySettings()
    retry_after_cap_seconds: float = Field(120.0, gt=0)
    token_refresh_margin_seconds: float = Field(30.0, ge=0)

    @property
    def resolved_api_base_url(self) -> str:
        if self.api_base_url:
            return self.api_base_url.rstrip("/") + "/"
        env = "api" if self.environment == "live" else "apiuat"
        root = f"https://{env}.{self.data_centre}.pageuppeople.com"
        return f"{root}/v3/{self.tenant_id}/recruitment/hire/"

    @property
    def resolved_token_url(self) -> str:
        if self.token_url:
            return self.token_url
        env = "login" if self.environment == "live" else "loginuat"
        return f"https://{env}.{self.data_centre}.pageuppeople.com/connect/token"


class AuthSettings(_Section):
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


class HrisSettings(_Section):
    url: str = Field(min_length=1)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = {}
    success_statuses: list[int] = [200, 201, 202]
    auth: AuthSettings = AuthSettings()
    id_from: Literal["body", "location", "none"] = "body"
    id_path: str = "id"
    idempotency_header: str = "Idempotency-Key"
    mapping: Path = Path("mappings/example_hris.yaml")
    retry: RetrySettings = RetrySettings()


class InboundAuthSettings(_Section):
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


class ApnaSettings(_Section):
    """Apna pushes candidate leads (POST, JSON) to ``path``."""

    enabled: bool = False
    path: str = Field("/inbound/apna", pattern=r"^/[A-Za-z0-9_\-/]*$")
    auth: InboundAuthSettings | None = None  # required when enabled
    allow_ips: list[str] = []  # CIDRs; empty: any source address
    target: HrisSettings | None = None  # where leads are delivered; required when enabled


class PopEngineSettings(_Section):
    """The POP Engine's own API, for the assessment score (``score_calc_get``)."""

    api_url: str = "https://popengine.example.com/api/1.0"
    username: str = ""
    password: SecretStr | None = None
    retry: RetrySettings = RetrySettings()


class PopSettings(_Section):
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


class InboundSettings(_Section):
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


class JobSourceSettings(_Section):
    """Where the organisation's own job records come from."""

    type: Literal["http", "directory"] = "directory"
    # http: GET url (auth and headers as for the HRIS); items_path finds the list in the reply.
    url: str | None = None
    auth: AuthSettings = AuthSettings()
    headers: dict[str, str] = {}
    items_path: str = "@"
    retry: RetrySettings = RetrySettings()
    # directory: every *.json (an object, or a list of them) and *.csv (a header row) in it.
    directory: Path | None = None
    # The field of each record that identifies it in the source (never changes).
    id_field: str = "id"


class AtsSettings(_Section):
    """Job postings kept in step with an ATS through its ERP Integration API."""

    enabled: bool = False
    base_url: str = "https://ats.example.com/recruitment/integration/erp/"
    api_key: SecretStr | None = None
    api_key_in: Literal["header", "query"] = "header"
    source_name: str = "hirebridge"
    mapping: Path = Path("mappings/ats_jobs.yaml")
    source: JobSourceSettings = JobSourceSettings()
    interval_seconds: float = Field(900.0, gt=0)
    # A job that leaves the source is updated to close_status (null: left as it is).
    close_status: Literal["CLOSED", "ARCHIVED"] | None = "CLOSED"
    # Refuse to close more than this share of the open jobs in one run (an emptied export, a
    # wrong folder): the run halts and alerts instead. 1.0 turns the guard off.
    max_close_fraction: float = Field(0.5, gt=0, le=1)
    # Where a 409 JOB_EXISTS reply names the existing job (JMESPath over its body).
    conflict_job_id_path: str = "data.job_id"
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> Self:
        problems = []
        if self.enabled and self.api_key is None:
            problems.append("enabled needs api_key")
        if self.enabled and self.source.type == "http" and not self.source.url:
            problems.append("source.url is needed for an http source")
        if self.enabled and self.source.type == "directory" and self.source.directory is None:
            problems.append("source.directory is needed for a directory source")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DatabaseSettings(_Section):
    url: str = "sqlite:///hirebridge.sqlite"
    # FULL survives power loss; NORMAL (WAL) survives process crashes and is faster.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # Keep each fetched source document (it holds PII) this many days, for diagnosis.
    # None (the default): never stored.
    keep_source_documents_days: int | None = Field(None, ge=1)


class SyncSettings(_Section):
    concurrency: int = Field(8, ge=1, le=256)
    max_rounds: int = Field(20, ge=1)
    # Across runs: a failing offer is tried again after a growing delay, and parked (left
    # alone until an admin retries it) after max_attempts, or at once for permanent failures.
    max_attempts: int = Field(8, ge=1)
    retry_backoff_initial_seconds: float = Field(60.0, ge=0)
    retry_backoff_max_seconds: float = Field(6 * 3600.0, gt=0)
    # This many offers in a row failing on the same remote system halts the run.
    circuit_breaker_failures: int = Field(5, ge=1)
    # A worker's claim on an offer; a crashed replica's offers are free again after it.
    lease_seconds: float = Field(600.0, gt=0)


class ScheduleSettings(_Section):
    """When ``hirebridge run`` syncs: every ``interval_seconds``, or on a cron expression."""

    interval_seconds: float | None = Field(300.0, gt=0)
    cron: str | None = None  # five fields, e.g. "*/10 7-19 * * mon-fri"; wins over the interval
    timezone: str = "UTC"
    # A run that could not start on time (the previous one still going, a paused process) still
    # runs when it can, within this many seconds; later ones are coalesced into one.
    misfire_grace_seconds: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _valid_schedule(self) -> Self:
        from worker.service.schedule import trigger_for  # APScheduler validates the expression

        if self.cron is None and self.interval_seconds is None:
            raise ValueError("give interval_seconds or cron")
        trigger_for(self)
        return self


class ServiceSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (tests)
    # Reverse proxies whose X-Forwarded-For is believed (addresses), so that inbound allow_ips
    # see the pushing system's address, not the proxy's. Empty: the peer address is used.
    trusted_proxies: list[str] = []
    # Every request: the request line and headers together in at most max_header_bytes, in at
    # most max_headers headers (past either: 431), and all of it, body included, within
    # request_timeout_seconds of its first byte or of the connection opening (past it: 408).
    max_header_bytes: int = Field(16384, ge=1024)
    max_headers: int = Field(100, ge=10)
    request_timeout_seconds: float = Field(30.0, gt=0)
    schedule: ScheduleSettings = ScheduleSettings()
    # On SIGTERM/SIGINT: stop starting offers, let those in flight finish, exit within this.
    shutdown_grace_seconds: float = Field(25.0, gt=0)
    # /healthz fails when the scheduler loop has not beaten for this long.
    heartbeat_stale_seconds: float = Field(30.0, gt=0)


class SentrySettings(_Section):
    """Alerts. Without a DSN nothing is sent."""

    dsn: SecretStr | None = None
    environment: str = "production"
    release: str | None = None  # default: hirebridge@<version>
    # Sentry Crons: every scheduled run checks in; a worker that stops running raises an alert.
    cron_monitor_slug: str | None = "hirebridge-offer-sync"
    checkin_margin_minutes: int = Field(5, ge=1)
    max_runtime_minutes: int = Field(60, ge=1)


class TlsSettings(_Section):
    """TLS verification is always on; a private CA can be added, never checks turned off."""

    ca_bundle: Path | None = None


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HIREBRIDGE_",
        env_nested_delimiter="__",
        secrets_nested_delimiter="__",
        secrets_prefix="",
        extra="forbid",
        frozen=True,
    )

    pageup: PageUpSettings
    hris: HrisSettings
    database: DatabaseSettings = DatabaseSettings()
    sync: SyncSettings = SyncSettings()
    tls: TlsSettings = TlsSettings()
    service: ServiceSettings = ServiceSettings()
    sentry: SentrySettings = SentrySettings()
    logging: LoggingSettings = LoggingSettings()
    inbound: InboundSettings = InboundSettings()
    ats: AtsSettings = AtsSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; environment and secret files override it.
        secrets = NestedSecretsSettingsSource(file_secret_settings)
        return (env_settings, secrets, init_settings)


def load_settings(path: Path | None, *, required: bool = False) -> Settings:
    """Load settings from ``path`` (if it exists), the environment and secret files.

    Raises ConfigError listing every problem. Relative paths in the file resolve against
    the file's own folder.
    """
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None and path.exists():
        data = _read_yaml_mapping(path)
        base = path.resolve().parent
    elif path is not None and required:
        raise ConfigError([f"{path}: config file not found"])
    secrets_dir = os.environ.get("HIREBRIDGE_SECRETS_DIR")
    try:
        settings = Settings(_secrets_dir=secrets_dir, **data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return _resolve_paths(settings, base)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return loaded


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(settings)"
        problems.append(f"{where}: {error['msg']}")
    return problems


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    mapping = settings.hris.mapping
    if not mapping.is_absolute():
        mapping = base / mapping
    bundle = settings.tls.ca_bundle
    if bundle is not None and not bundle.is_absolute():
        bundle = base / bundle
    if bundle is not None and not bundle.is_file():
        raise ConfigError([f"tls.ca_bundle: {bundle} is not a file"])
    inbound = settings.inbound
    apna, pop = inbound.apna, inbound.pop
    if apna.target is not None:
        target = apna.target.model_copy(update={"mapping": base / apna.target.mapping})
        apna = apna.model_copy(update={"target": target})
    if pop.target is not None:
        target = pop.target.model_copy(update={"mapping": base / pop.target.mapping})
        pop = pop.model_copy(update={"target": target})
    ats = settings.ats
    ats_source = ats.source
    if ats_source.directory is not None:
        ats_source = ats_source.model_copy(update={"directory": base / ats_source.directory})
    ats = ats.model_copy(update={"mapping": base / ats.mapping, "source": ats_source})
    return settings.model_copy(
        update={
            "ats": ats,
            "hris": settings.hris.model_copy(update={"mapping": mapping}),
            "tls": settings.tls.model_copy(update={"ca_bundle": bundle}),
            "inbound": inbound.model_copy(update={"apna": apna, "pop": pop}),
        }
    )
