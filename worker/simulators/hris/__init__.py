"""An HRIS simulator: records posted employees, honours Idempotency-Key, injects faults.

``HrisState(flavour=...)`` makes it answer like one real "new employee" API, from the vendor's
public documentation, so that the shipped maps can be demonstrated and tested end to end. Each
flavour is a module of its own (what it takes from the vendor's documents and what it assumes
is in its docstring); ``core`` holds what they share.
"""

from __future__ import annotations

from worker.simulators.hris.bamboohr import BambooHR
from worker.simulators.hris.core import Flavour, HrisFaults, HrisState, build_app
from worker.simulators.hris.employmenthero import EmploymentHero
from worker.simulators.hris.generic import SUB_RESOURCES, Generic
from worker.simulators.hris.hibob import HiBob
from worker.simulators.hris.successfactors import SuccessFactors
from worker.simulators.hris.xero import Xero

FLAVOURS: dict[str, Flavour] = {
    flavour.name: flavour
    for flavour in (Generic(), BambooHR(), HiBob(), Xero(), SuccessFactors(), EmploymentHero())
}

__all__ = ["FLAVOURS", "SUB_RESOURCES", "Flavour", "HrisFaults", "HrisState", "build_app"]
