"""Running an ASGI app on loopback in a background thread (demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self._ready.set()


class BackgroundServer:
    """``with BackgroundServer(app) as server: server.url`` serves ``app`` until the block ends."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, config: Any = None
    ) -> None:
        """``config``: a ``uvicorn.Config`` of ``app`` to serve with, instead of the default."""
        config = config or uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        self._ready = threading.Event()
        self._server = _Server(config, self._ready)
        self._thread = threading.Thread(target=self._run, name="sim-server", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.run(self._server.serve())

    def start(self) -> BackgroundServer:
        self._thread.start()
        if not self._ready.wait(timeout=15) or not self._server.servers:
            raise RuntimeError("simulator server did not start")
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
