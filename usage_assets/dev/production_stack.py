"""The product in its production shape on one host: a code server, the webserver and the daemon, each
its own process, sharing a Dagster instance in PostgreSQL (deploy/dagster-postgres.yaml) and the
POST quota ledger in PostgreSQL, the webserver and daemon reaching the code through
deploy/workspace-grpc.yaml.

`dagster dev` (local_stack) runs the same three in one process tree on SQLite; this stack proves
the split itself: the runs the daemon's sensor and backfills request are launched by the code
server, and every process sees them only through PostgreSQL. It is driven exactly like the local
stack (the UI's GraphQL calls, shared through `DagsterStack`). Used by the production end-to-end
test; the README's commands are `service_commands`'.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import ListRepositoriesResponse
from dagster._serdes import deserialize_value
from dagster._utils.error import SerializableErrorInfo

from usage_assets.dev.local_stack import (
    REPO_ROOT,
    DagsterStack,
    free_port,
    prepare_home,
    stack_env,
    stop_session,
    wait_for_webserver,
)
from usage_assets.ingest.quota_ledger import QUOTA_LEDGER_URL_ENV
from usage_assets.simulator.server import SimulatorServer

INSTANCE_FILE = REPO_ROOT / "deploy" / "dagster-postgres.yaml"
WORKSPACE_FILE = REPO_ROOT / "deploy" / "workspace-grpc.yaml"
LOCATION_NAME = "usage_assets"
HOST = "127.0.0.1"
# The variables deploy/workspace-grpc.yaml reads (and `dagster code-server start` too).
CODE_SERVER_HOST_ENV = "DAGSTER_CODE_SERVER_HOST"
CODE_SERVER_PORT_ENV = "DAGSTER_CODE_SERVER_PORT"
LOG_TAIL_LINES = 30

_LOCATIONS = """
query Locations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""

_DAEMONS = """
query Daemons {
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}
"""


@dataclass
class Service:
    """One process of the stack, with its own log file in the work dir."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ProductionStack(DagsterStack):
    """A running simulator, code server, webserver and daemon on the PostgreSQL instance."""

    services: list[Service]
    code_server_port: int
    instance_env: Mapping[str, str]

    def instance(self) -> dg.DagsterInstance:
        """The stack's instance, seen from this process: dagster.yaml reads its connection from
        DAGSTER_PG_* when it is loaded (not later), so they are set just for that."""
        saved = {name: os.environ.get(name) for name in self.instance_env}
        os.environ.update(self.instance_env)
        try:
            return super().instance()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _check_alive(self) -> None:
        for service in self.services:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited ({service.process.returncode}); last lines of "
                    f"{service.log_path}:\n{service.tail()}"
                )

    def logs_hint(self) -> str:
        return ", ".join(str(service.log_path) for service in self.services)

    def log_tails(self) -> str:
        """The end of every service's log: what a failed test prints."""
        return "\n".join(
            f"----- {service.name} ({service.log_path}), last {LOG_TAIL_LINES} lines -----\n"
            f"{service.tail()}"
            for service in self.services
        )


def service_commands(code_server_port: int, webserver_port: int) -> dict[str, list[str]]:
    """The three commands, as a deployment types them (each from the repository root, with the
    stack's environment): the code server, then the webserver and the daemon on the workspace."""
    bin_dir = Path(sys.executable).parent  # the console scripts beside this interpreter
    workspace = str(WORKSPACE_FILE.relative_to(REPO_ROOT))
    return {
        "code-server": [
            str(bin_dir / "dagster"), "code-server", "start", "-m", "usage_assets.definitions",
            "--location-name", LOCATION_NAME, "-h", HOST, "-p", str(code_server_port),
        ],
        "webserver": [
            str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", HOST,
            "-p", str(webserver_port),
        ],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
    }  # fmt: skip


def production_env(
    base: dict[str, str],
    instance_env: Mapping[str, str],
    ledger_url: str,
    code_server_port: int,
) -> dict[str, str]:
    """What every process of the stack gets on top of the local stack's environment: the instance's
    PostgreSQL connection (DAGSTER_PG_*), the shared ledger, and where the code server listens."""
    return {
        **base,
        **instance_env,
        QUOTA_LEDGER_URL_ENV: ledger_url,
        CODE_SERVER_HOST_ENV: HOST,
        CODE_SERVER_PORT_ENV: str(code_server_port),
    }


def wait_for_code_server(port: int, check_alive: Callable[[], None], timeout: float) -> None:
    """Until the code server lists its repositories (it has loaded the definitions); a load error
    fails at once with Dagster's message."""
    client = DagsterGrpcClient(port=port, host=HOST)
    deadline = time.monotonic() + timeout
    while True:
        check_alive()
        try:
            answer = deserialize_value(client.list_repositories())
        except Exception:  # not listening yet, or still loading the code (the proxy says so)
            answer = None
        if isinstance(answer, ListRepositoriesResponse):
            return
        if isinstance(answer, SerializableErrorInfo):
            raise RuntimeError(f"the code server could not load the code: {answer.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the code server did not answer on {HOST}:{port} in {timeout:.0f} s"
            )
        time.sleep(0.5)


def wait_for_location(stack: DagsterStack, timeout: float) -> None:
    """Until the webserver's workspace lists LOCATION_NAME as loaded (from the code server)."""
    deadline = time.monotonic() + timeout
    while True:
        stack._check_alive()
        workspace = stack.graphql(_LOCATIONS)["workspaceOrError"]
        entries = {entry["name"]: entry for entry in workspace.get("locationEntries", [])}
        location = (entries.get(LOCATION_NAME) or {}).get("locationOrLoadError") or {}
        if location.get("__typename") == "RepositoryLocation":
            return
        if location.get("__typename") == "PythonError":
            raise RuntimeError(f"the webserver could not load {LOCATION_NAME}: {location}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the webserver did not list {LOCATION_NAME} in {timeout:.0f} s")
        time.sleep(0.5)


def wait_for_daemons(stack: DagsterStack, timeout: float) -> None:
    """Until every daemon the instance requires (sensors, backfills, run queue, monitoring, ...)
    has heartbeated into PostgreSQL recently enough to count as healthy."""
    deadline = time.monotonic() + timeout
    while True:
        stack._check_alive()
        statuses = stack.graphql(_DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        waiting = sorted(s["daemonType"] for s in statuses if s["required"] and not s["healthy"])
        if statuses and not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"daemons without a heartbeat after {timeout:.0f} s: {waiting}")
        time.sleep(1)


def _start(name: str, command: list[str], env: dict[str, str], work_dir: Path) -> Service:
    log_path = work_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with everything it started (the code server's runs)
        )
    return Service(name, command, process, log_path)


@contextmanager
def production_stack(
    work_dir: Path,
    *,
    simulator: SimulatorServer,
    instance_env: Mapping[str, str],
    ledger_url: str,
    sensor_interval_seconds: int = 3,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[ProductionStack]:
    """Start the code server, then the webserver and the daemon, against `simulator`.

    `instance_env` holds deploy/dagster-postgres.yaml's DAGSTER_PG_* variables (a fresh database),
    `ledger_url` the PostgreSQL quota ledger. DAGSTER_HOME and the data live under `work_dir`, as
    do `code-server.log`, `webserver.log` and `daemon.log`; their tails are printed if anything
    fails while the stack is up. All three are stopped on exit, the daemon first (no new runs), the
    code server (and the run workers it started) last."""
    dagster_home, data_dir = prepare_home(work_dir, INSTANCE_FILE)
    code_port, web_port = free_port(), free_port()
    base = stack_env(dagster_home, data_dir, simulator, sensor_interval_seconds, extra_env)
    env = production_env(base, instance_env, ledger_url, code_port)
    commands = service_commands(code_port, web_port)
    url = f"http://{HOST}:{web_port}"
    stack = ProductionStack(
        simulator, dagster_home, data_dir, url, env, [], code_port, instance_env
    )
    with ExitStack() as stops:
        # Registered in start order, so they stop in reverse: daemon, webserver, code server.
        def start(name: str) -> None:
            service = _start(name, commands[name], env, work_dir)
            stack.services.append(service)
            stops.callback(stop_session, service.process)

        try:
            start("code-server")
            wait_for_code_server(code_port, stack._check_alive, startup_timeout)
            start("webserver")
            start("daemon")
            wait_for_webserver(url, stack._check_alive, stack.logs_hint(), startup_timeout)
            wait_for_location(stack, startup_timeout)
            wait_for_daemons(stack, startup_timeout)
            yield stack
        except BaseException:
            # Pytest shows captured output of a failed test: the three logs' ends, in one place.
            print(stack.log_tails(), file=sys.stderr)
            raise
