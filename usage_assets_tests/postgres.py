"""A throwaway PostgreSQL server for the tests, and a fresh database per test.

`$USAGE_TEST_POSTGRES_URL` (a server URL whose user may CREATE DATABASE) wins: `.ci/run` starts one
server for the whole CI job and exports it. Otherwise the session starts its own cluster with
Debian's `initdb`/`pg_ctl` in a temporary folder: trust auth, 127.0.0.1 only, no Unix socket, on a
free port, stopped when the session ends. PostgreSQL refuses to run as root (CI runs as root), so
as root the server runs as `nobody`.

`python -m usage_assets_tests.postgres start DIR` starts such a server in DIR and prints its URL;
`... stop DIR` stops it (what `.ci/run` calls).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

URL_ENV = "USAGE_TEST_POSTGRES_URL"
# The instance file a PostgreSQL deployment uses, as shipped.
INSTANCE_FILE = Path(__file__).resolve().parents[1] / "deploy" / "dagster-postgres.yaml"
_USER = "postgres"  # the cluster's superuser (initdb -U)
_SERVER_USER = "nobody"  # who runs the server when we are root


class PostgresUnavailableError(RuntimeError):
    """No server URL was given and PostgreSQL's binaries are not installed."""


def binaries_dir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: on PATH, or Debian's versioned folder (not on PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> str | None:
    """Who runs initdb, pg_ctl and the server: `nobody` when we are root, else ourselves."""
    return _SERVER_USER if os.geteuid() == 0 else None


def start_cluster(root: Path) -> str:
    """initdb a cluster under `root` and start it; returns the server URL (database `postgres`)."""
    bin_dir = binaries_dir()
    if bin_dir is None:
        raise PostgresUnavailableError(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql)"
        )
    cluster = root / "cluster"
    cluster.mkdir(parents=True)
    if os.geteuid() == 0:
        # The server user must reach its folder: traverse every parent, own the cluster folder.
        for parent in [root, *root.parents]:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
        shutil.chown(cluster, user=_SERVER_USER)
    data = cluster / "data"
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", _USER, "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"],
        check=True, capture_output=True, user=_server_user(),
    )  # fmt: skip
    port = _free_port()
    # A throwaway server: durability settings off, which makes the tests' many small commits cheap.
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-o", options,
         "-l", str(cluster / "server.log")],
        check=True, capture_output=True, user=_server_user(),
    )  # fmt: skip
    (root / "url").write_text(f"postgresql://{_USER}@127.0.0.1:{port}/postgres\n")
    return (root / "url").read_text().strip()


def stop_cluster(root: Path) -> None:
    bin_dir = binaries_dir()
    data = root / "cluster" / "data"
    if bin_dir is None or not (data / "postmaster.pid").exists():
        return
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)],
        check=False, capture_output=True, user=_server_user(),
    )  # fmt: skip


@contextmanager
def server_url() -> Iterator[str]:
    """The server to test against: `$USAGE_TEST_POSTGRES_URL`, or a cluster of our own."""
    given = os.environ.get(URL_ENV)
    if given:
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="usage-assets-pg-"))
    try:
        yield start_cluster(root)
    finally:
        stop_cluster(root)
        shutil.rmtree(root, ignore_errors=True)


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server at `url`, dropped afterwards: tests never share rows."""
    import psycopg2

    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield with_database(url, name)
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def instance_env(url: str) -> dict[str, str]:
    """The variables INSTANCE_FILE reads, for the database at `url`."""
    parts = urlsplit(url)
    return {
        "DAGSTER_PG_HOST": parts.hostname or "",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USERNAME": parts.username or "",
        "DAGSTER_PG_PASSWORD": parts.password or "unused-with-trust-auth",
        "DAGSTER_PG_DB": parts.path.lstrip("/"),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"start", "stop"}:
        print("usage: python -m usage_assets_tests.postgres start|stop DIR", file=sys.stderr)
        return 2
    root = Path(argv[1])
    if argv[0] == "start":
        print(start_cluster(root))
    else:
        stop_cluster(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
