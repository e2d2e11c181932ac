"""Every setting, modelled once.

Sources, highest priority first: environment variables (``HIREBRIDGE_`` prefix, ``__`` between
nested keys, e.g. ``HIREBRIDGE_SOURCES__AU_LIVE__CLIENT_SECRET``), secret files in
``$HIREBRIDGE_SECRETS_DIR`` (one file per key, named like ``sources__au_live__client_secret``, as
Kubernetes mounts them), then the YAML file and the folder of tenants (``sources_dir``).
``config.example.yaml`` documents every key.

Offers come from ``sources`` (PageUp tenants) and go to ``targets`` (payroll/HRIS systems) along
``routes``. The single-source form of earlier versions, ``pageup:`` and ``hris:``, still works: it
is read as one source named ``pageup``, one target named ``hris`` and one route between them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Self

from pydantic import ModelWrapValidatorHandler, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.errors import ConfigError
from worker.settings.ats import AtsSettings, JobSourceSettings
from worker.settings.common import AuthSettings, RetrySettings, Section
from worker.settings.console import ConsoleProxySettings, ConsoleSettings, ConsoleUser
from worker.settings.documents import DocumentSettings
from worker.settings.files import read_yaml_mapping
from worker.settings.inbound import (
    ApnaSettings,
    InboundAuthSettings,
    InboundSettings,
    PopEngineSettings,
    PopSettings,
)
from worker.settings.service import (
    DatabaseSettings,
    LoggingSettings,
    ScheduleSettings,
    SentrySettings,
    ServiceSettings,
    SyncSettings,
    TlsSettings,
)
from worker.settings.sources import (
    DocumentIdPaths,
    PageUpPaths,
    PageUpSettings,
    PagingSettings,
    SourceSettings,
)
from worker.settings.support import ChannelSettings, ErrorLogSettings, NotificationSettings
from worker.settings.targets import HrisSettings, RouteSettings, TargetSettings

__all__ = [
    "ApnaSettings", "AtsSettings", "AuthSettings", "ChannelSettings", "ConsoleProxySettings",
    "ConsoleSettings", "ConsoleUser", "DatabaseSettings",
    "DocumentIdPaths", "DocumentSettings", "ErrorLogSettings", "HrisSettings",
    "InboundAuthSettings", "InboundSettings", "JobSourceSettings", "LoggingSettings",
    "NotificationSettings", "PageUpPaths", "PageUpSettings", "PagingSettings", "PopEngineSettings",
    "PopSettings", "RetrySettings", "RouteSettings", "ScheduleSettings", "Section",
    "SentrySettings", "ServiceSettings", "Settings", "SourceSettings", "SyncSettings",
    "TargetSettings", "TlsSettings", "load_settings",
]  # fmt: skip

# Source and target names appear in metrics, environment variables and secret file names.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SINGLE_SOURCE, SINGLE_TARGET = "pageup", "hris"


class Problems(ValueError):
    """Several problems found by one validator, listed one per line by ``load_settings``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HIREBRIDGE_",
        env_nested_delimiter="__",
        secrets_nested_delimiter="__",
        secrets_prefix="",
        extra="forbid",
        frozen=True,
    )

    # The single-source form; read as sources.pageup, targets.hris and a route between them.
    pageup: SourceSettings | None = None
    hris: TargetSettings | None = None
    sources: dict[str, SourceSettings] = {}
    # A folder with one YAML file per source (<name>.yaml), for deployments serving many tenants.
    sources_dir: Path | None = None
    targets: dict[str, TargetSettings] = {}
    routes: list[RouteSettings] = []
    database: DatabaseSettings = DatabaseSettings()
    sync: SyncSettings = SyncSettings()
    tls: TlsSettings = TlsSettings()
    service: ServiceSettings = ServiceSettings()
    sentry: SentrySettings = SentrySettings()
    logging: LoggingSettings = LoggingSettings()
    inbound: InboundSettings = InboundSettings()
    ats: AtsSettings = AtsSettings()
    documents: DocumentSettings = DocumentSettings()
    error_log: ErrorLogSettings = ErrorLogSettings()
    notifications: NotificationSettings = NotificationSettings()
    console: ConsoleSettings = ConsoleSettings()

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

    @model_validator(mode="before")
    @classmethod
    def _single_source_form(cls, data: Any) -> Any:
        """``pageup:`` + ``hris:`` alone become one source, one target and one route."""
        if not isinstance(data, dict) or not (data.get("pageup") and data.get("hris")):
            return data
        if data.get("sources") or data.get("targets") or data.get("routes"):
            return data  # both forms at once: refused below
        return {
            **data,
            "pageup": None,
            "hris": None,
            "sources": {SINGLE_SOURCE: data["pageup"]},
            "targets": {SINGLE_TARGET: data["hris"]},
            "routes": [{"source": SINGLE_SOURCE, "target": SINGLE_TARGET}],
        }

    @model_validator(mode="wrap")
    @classmethod
    def _name_missing_halves(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """With other problems in the way, the single-source form still says which half is
        missing (``hris`` without ``pageup``...), not only what is wrong in the other half."""
        try:
            return handler(data)
        except ValidationError as exc:
            missing = _missing_half(data)
            if not missing:
                raise
            errors: list[Any] = [
                {key: error[key] for key in ("type", "loc", "input", "ctx") if key in error}
                for error in exc.errors()
            ]
            errors.append({"type": "missing", "loc": (missing,), "input": data})
            raise ValidationError.from_exception_data(exc.title, errors) from None

    @model_validator(mode="after")
    def _topology(self) -> Self:
        problems = topology_problems(self)
        if problems:
            raise Problems(problems)
        return self

    def schedule_of(self, source: str) -> ScheduleSettings:
        return self.sources[source].schedule or self.service.schedule

    def concurrency_of(self, source: str) -> int:
        return self.sources[source].concurrency or self.sync.concurrency

    @property
    def notice_settings(self) -> NotificationSettings:
        """The notices' settings as sent: a hire links to its console page
        (``notifications.console_url``) only when the console is on."""
        if self.console.enabled or self.notifications.console_url is None:
            return self.notifications
        return self.notifications.model_copy(update={"console_url": None})

    @property
    def notice_timezone(self) -> str:
        """The digest's time zone: its own, else the service's."""
        return self.notifications.timezone or self.service.schedule.timezone


def _missing_half(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if data.get("pageup") and not (data.get("hris") or data.get("targets")):
        return "hris"
    if data.get("hris") and not (data.get("pageup") or data.get("sources")):
        return "pageup"
    return None


def topology_problems(settings: Settings) -> list[str]:
    """Sources, targets and routes that cannot work together; every problem, not the first."""
    if settings.pageup is not None or settings.hris is not None:
        return [
            "pageup/hris: give both pageup and hris (one source, one target), or use "
            "sources, targets and routes instead; not both forms"
        ]
    problems = []
    if not settings.sources:
        problems.append("sources: no PageUp source (give sources, or pageup and hris)")
    if not settings.targets:
        problems.append("targets: no target (give targets, or pageup and hris)")
    for kind, names in (("sources", settings.sources), ("targets", settings.targets)):
        problems += [
            f"{kind}.{name}: a name is lower-case letters, digits and _ (at most 40), "
            "starting with a letter"
            for name in names
            if not NAME.match(name)
        ]
    from worker.routing import route_problems  # JMESPath and the map functions

    problems += route_problems(settings.routes, settings.sources, settings.targets)
    for name, channel in settings.notifications.channels.items():
        problems += [
            f"notifications.channels.{name}.sources: unknown source {source!r}"
            for source in channel.sources
            if source not in settings.sources
        ]
    problems += application_problems(settings)
    console = settings.console
    if console.enabled and console.mode == "proxy" and not settings.service.trusted_proxies:
        problems.append(
            "console.mode: 'proxy' needs service.trusted_proxies (the auth proxy's "
            "addresses): its headers are believed from nowhere else"
        )
    seen: dict[tuple[str, int | None], str] = {}
    for name, source in settings.sources.items():
        key = (source.resolved_api_base_url, source.offer_action_type_id)
        if key in seen:
            problems.append(
                f"sources.{name}: same tenant and offer_action_type_id as sources.{seen[key]} "
                "(both would take the same offers: give each consumer its own action type)"
            )
        seen.setdefault(key, name)
    return problems


def application_problems(settings: Settings) -> list[str]:
    """Each source's applications go to known targets that have an applications map."""
    problems = []
    for name, source in settings.sources.items():
        for target in source.applications.targets:
            where = f"sources.{name}.applications.targets"
            if target not in settings.targets:
                problems.append(f"{where}: unknown target {target!r}")
            elif settings.targets[target].applications_mapping is None:
                problems.append(f"{where}: target {target!r} has no applications_mapping")
    return problems


def load_settings(path: Path | None, *, required: bool = False) -> Settings:
    """Load settings from ``path`` (if it exists), the folder of tenants, the environment and
    secret files.

    Raises ConfigError listing every problem. Relative paths in the file resolve against the
    file's own folder.
    """
    data: dict[str, Any] = {}
    base = Path.cwd()
    if path is not None and path.exists():
        data = read_yaml_mapping(path)
        base = path.resolve().parent
    elif path is not None and required:
        raise ConfigError([f"{path}: config file not found"])
    folder = data.get("sources_dir") or os.environ.get("HIREBRIDGE_SOURCES_DIR")
    if folder:
        data = {**data, "sources": _sources_from(_under(base, Path(folder)), data)}
    secrets_dir = os.environ.get("HIREBRIDGE_SECRETS_DIR")
    try:
        settings = Settings(_secrets_dir=secrets_dir, **data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return _resolve_paths(settings, base)


def _sources_from(folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The file's sources plus one per ``<name>.yaml`` in ``folder``."""
    if not folder.is_dir():
        raise ConfigError([f"sources_dir: {folder} is not a folder"])
    sources = dict(data.get("sources") or {})
    problems = []
    for file in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        name = file.stem
        if name in sources:
            problems.append(f"{file}: source {name!r} is also defined in the config file")
            continue
        try:
            sources[name] = read_yaml_mapping(file)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return sources


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            problems += cause.problems
            continue
        where = ".".join(str(part) for part in error["loc"]) or "(settings)"
        problems.append(f"{where}: {error['msg']}")
    return problems


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    bundle = settings.tls.ca_bundle
    if bundle is not None:
        bundle = _under(base, bundle)
        if not bundle.is_file():
            raise ConfigError([f"tls.ca_bundle: {bundle} is not a file"])
    targets = {
        name: target.model_copy(update={
            "mapping": _under(base, target.mapping),
            "applications_mapping": target.applications_mapping
            and _under(base, target.applications_mapping),
        })
        for name, target in settings.targets.items()
    }  # fmt: skip
    inbound = settings.inbound
    apna, pop = inbound.apna, inbound.pop
    if apna.target is not None:
        target = apna.target.model_copy(update={"mapping": _under(base, apna.target.mapping)})
        apna = apna.model_copy(update={"target": target})
    if pop.target is not None:
        target = pop.target.model_copy(update={"mapping": _under(base, pop.target.mapping)})
        pop = pop.model_copy(update={"target": target})
    ats = settings.ats
    ats_source = ats.source
    if ats_source.directory is not None:
        ats_source = ats_source.model_copy(update={"directory": _under(base, ats_source.directory)})
    ats = ats.model_copy(update={"mapping": _under(base, ats.mapping), "source": ats_source})
    documents = settings.documents
    if documents.temp_dir is not None:
        documents = documents.model_copy(update={"temp_dir": _under(base, documents.temp_dir)})
    return settings.model_copy(
        update={
            "ats": ats,
            "documents": documents,
            "targets": targets,
            "tls": settings.tls.model_copy(update={"ca_bundle": bundle}),
            "inbound": inbound.model_copy(update={"apna": apna, "pop": pop}),
        }
    )
