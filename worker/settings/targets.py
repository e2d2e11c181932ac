"""A payroll or HRIS the offers go to (``targets``, or the single ``hris`` section), and the
routes between sources and targets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from worker.settings.common import AuthSettings, RetrySettings, Section


class HrisSettings(Section):
    """An HTTP API that receives mapped records: a payroll/HRIS target, or an inbound target."""

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


class TargetSettings(HrisSettings):
    """A ``targets`` entry (the ``hris`` section is the single form)."""

    # The field map for applications (sources' applications.targets); None: takes none.
    applications_mapping: Path | None = None


# a ``targets`` entry (the ``hris`` section is the single form)


class RouteSettings(Section):
    """Offers of ``source`` (``*``: of every source) go to ``target`` when ``when`` (JMESPath
    over the source document the maps see: offer, onboarding, application) is true, or always
    without one."""

    source: str
    target: str
    when: str | None = None
