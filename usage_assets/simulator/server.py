"""Running the simulator on a real loopback socket, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import uvicorn

from usage_assets.simulator.app import API_PREFIX, UsageApiSimulator
from usage_assets.simulator.settings import SimulatorSettings


class SimulatorServer:
    """A simulator listening on `host:port` (port 0 picks a free one).

    Use as a context manager in tests and the demo: `with SimulatorServer() as sim: sim.base_url`.
    """

    def __init__(
        self, settings: SimulatorSettings | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.simulator = UsageApiSimulator(settings)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.simulator.app, log_level="warning", access_log=False, lifespan="off"
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def settings(self) -> SimulatorSettings:
        return self.simulator.settings

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What CIRCLECI_API_URL should be set to."""
        return f"{self.root_url}{API_PREFIX}"

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command-line entry point)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.simulator.store.close()

    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            daemon=True,
            name="usage-api-simulator",
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the Usage API simulator failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        self.simulator.store.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
