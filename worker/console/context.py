"""What the running service lends the console: its settings (as reloaded), its store, its
PageUp clients, its health, and its reload."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine

from worker.pipelines.parts import SourceParts
from worker.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class ConsoleContext:
    settings: Callable[[], Settings]
    engine: Engine
    # Runs a synchronous store call off the event loop (the service's store thread).
    call: Callable[..., Awaitable[Any]]
    sources: Callable[[], Mapping[str, SourceParts]]
    reload: Callable[[], Awaitable[tuple[bool, str]]]
    health: Callable[[], Awaitable[dict[str, Any]]]

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self.call(fn, *args, **kwargs)
        return result
