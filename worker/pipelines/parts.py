"""What the offer pipeline works with, per source and per target (built by ``worker.runtime``)."""

from __future__ import annotations

from dataclasses import dataclass

from worker.mapping.loader import FieldMap
from worker.pipelines.policy import CircuitBreaker
from worker.routing import Routes
from worker.settings import SourceSettings
from worker.sinks.http import HttpSink
from worker.sources.offer_document import DocumentChecks
from worker.sources.pageup import PageUpClient


@dataclass
class SourceParts:
    """One PageUp tenant: its client (and token), document checks and routes."""

    name: str
    settings: SourceSettings
    pageup: PageUpClient
    checks: DocumentChecks
    routes: Routes
    breaker: CircuitBreaker  # offers in a row failing on PageUp: the run halts


@dataclass
class TargetParts:
    """One payroll/HRIS: where it is, its field map (swapped on reload) and its breaker."""

    name: str
    sink: HttpSink
    field_map: FieldMap
    breaker: CircuitBreaker  # offers in a row failing on it: it rests, the others go on
