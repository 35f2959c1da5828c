"""The warehouse as a DuckLake: DuckDB as the engine, the catalog in PostgreSQL, Parquet data files
on a path every worker reaches, so several load processes can write at once.

Nothing is downloaded at run time: the `ducklake` and `postgres_scanner` extensions are LOADed from
the files of the `lake` extra's Python packages, with DuckDB's autoinstall and autoload off and its
signature check on (an unsigned or tampered file is refused). After `attach_lake` the connection's
default catalog is the lake, so every query naming `circleci.job_runs` or `circleci_insights.*`
reads and writes the lake unchanged.

Concurrency (see `usage_assets.ingest.warehouse.load_window`): DuckLake commits optimistically and
raises a conflict when two transactions delete from the same table, which `is_commit_conflict`
recognises so the load can be retried. Two loads that only insert never conflict, so loads of
overlapping windows also hold `day_locks` (PostgreSQL advisory locks on the catalog database, one per
usage day) for their whole transaction: overlapping loads run one after the other, disjoint ones at
once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from usage_assets.ingest.quota_ledger import redacted as redacted_url

LAKE_CATALOG_URL_ENV = "USAGE_LAKE_CATALOG_URL"
LAKE_DATA_PATH_ENV = "USAGE_LAKE_DATA_PATH"
WAREHOUSE_WRITERS_ENV = "USAGE_WAREHOUSE_WRITERS"

# The name the lake is attached under; `USE lake` makes it the default catalog.
LAKE_ALIAS = "lake"

# (Python package of the `lake` extra, extension name), in LOAD order: DuckLake reaches its
# PostgreSQL catalog through postgres_scanner.
_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("duckdb_extension_postgres_scanner", "postgres_scanner"),
    ("duckdb_extension_ducklake", "ducklake"),
)

# A DuckDB connection that never fetches or auto-loads an extension, and refuses unsigned ones.
# (These are also DuckDB's defaults for the last one; set explicitly so a user's config cannot
# weaken them.)
EXTENSION_SAFETY_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_community_extensions": False,
}

# Advisory-lock namespace (the first int4 key of pg_advisory_lock) for a usage day of job_runs;
# the second key is the day's ordinal. Arbitrary, fixed: every loader must agree on it.
_DAY_LOCK_CLASS = 0x05A6E1A7
# Advisory lock (one int8 key) held around a writer's ATTACH: the first ATTACH of an empty catalog
# creates DuckLake's tables, and two processes doing it at once collide ("duplicate key value
# violates unique constraint pg_type_typname_nsp_index"); found by the production-stack test,
# whose two first loads attach a fresh lake in the same second.
_ATTACH_LOCK_KEY = 0x05A6E1A8


class LakeSetupError(RuntimeError):
    """The lake cannot be opened: the extra is missing, built for another DuckDB, or ATTACH failed."""


@dataclass(frozen=True)
class LakeLocation:
    """Where a DuckLake lives. `catalog_url` may carry a password: never log it, use `describe`."""

    catalog_url: str  # postgresql://user:password@host:port/dbname
    data_path: str  # a local or shared folder, or s3://bucket/prefix/

    def describe(self) -> str:
        return f"DuckLake {redacted_url(self.catalog_url)} (data {self.data_path})"


def _scrub(message: str, catalog_url: str) -> str:
    """An error message with the catalog URL's password removed wherever DuckDB echoed it."""
    password = urlsplit(catalog_url).password
    message = message.replace(catalog_url, redacted_url(catalog_url))
    for secret in {password, unquote(password)} if password else set():
        if secret:
            message = message.replace(secret, "***")
    return message


def extension_path(package: str, name: str) -> Path:
    """The extension file a `lake` extra package ships for the running DuckDB, or LakeSetupError."""
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise LakeSetupError(
            f"{LAKE_CATALOG_URL_ENV} is set but the DuckDB extension package {package!r} is not "
            "installed: install the `lake` extra (uv sync --extra lake)."
        ) from None
    root = Path(module.__file__ or "").parent / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        built_for = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        raise LakeSetupError(
            f"{package} has no {name} extension for DuckDB {duckdb.__version__} (it ships "
            f"{', '.join(built_for) or 'none'}): install the `lake` extra's version matching "
            "the duckdb pinned in pyproject.toml."
        )
    return path


def load_extensions(conn: duckdb.DuckDBPyConnection) -> None:
    """LOAD postgres_scanner and ducklake from the installed packages (signature checked)."""
    for package, name in _EXTENSIONS:
        path = extension_path(package, name)
        try:
            conn.execute(f"LOAD '{_sql_text(str(path))}'")
        except duckdb.Error as exc:
            raise LakeSetupError(f"DuckDB refused the {name} extension at {path}: {exc}") from None


def _libpq_keywords(catalog_url: str) -> tuple[dict[str, str], str]:
    """(the secret's parameters, the connection string without them) for the catalog URL.

    Host, port, user and password go into a DuckDB secret, which DuckDB never prints (error
    messages echo the ATTACH path); the database and any ?sslmode=... stay in the path."""
    parts = urlsplit(catalog_url)
    secret = {
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or 5432),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
    }
    keywords = [f"dbname={unquote(parts.path.lstrip('/'))}"]
    keywords += [f"{name}={value}" for name, value in parse_qsl(parts.query)]
    return {k: v for k, v in secret.items() if v}, " ".join(keywords)


def attach_sql(location: LakeLocation, *, read_only: bool = False) -> str:
    """The ATTACH statement for the lake, credentials left to the secret of `secret_sql`."""
    _, keywords = _libpq_keywords(location.catalog_url)
    options = [f"DATA_PATH '{_sql_text(location.data_path)}'"]
    if read_only:
        options.append("READ_ONLY")
    return (
        f"ATTACH '{_sql_text('ducklake:postgres:' + keywords)}' AS {LAKE_ALIAS}"
        f" ({', '.join(options)})"
    )


def secret_sql(location: LakeLocation) -> str:
    """The connection's PostgreSQL secret (the catalog's host, port, user, password): holds the
    password, never log it. Temporary: it lives in this connection's memory only. Its name makes
    it the default one, which the postgres extension uses for an ATTACH naming no secret."""
    secret, _ = _libpq_keywords(location.catalog_url)
    fields = ", ".join(f"{name} '{_sql_text(value)}'" for name, value in secret.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET __default_postgres (TYPE postgres, {fields})"


def attach_lake(
    conn: duckdb.DuckDBPyConnection, location: LakeLocation, *, read_only: bool = False
) -> None:
    """LOAD the extensions, ATTACH the lake and make it the connection's default catalog."""
    load_extensions(conn)
    if not location.data_path.startswith("s3://"):
        Path(location.data_path).mkdir(parents=True, exist_ok=True)
    try:
        conn.execute(secret_sql(location))
        with _attach_lock(location.catalog_url, enabled=not read_only):
            conn.execute(attach_sql(location, read_only=read_only))
    except duckdb.Error as exc:
        raise LakeSetupError(
            f"Could not attach {location.describe()}: {_scrub(str(exc), location.catalog_url)}"
        ) from None
    conn.execute(f"USE {LAKE_ALIAS}")


@contextmanager
def _attach_lock(catalog_url: str, *, enabled: bool) -> Iterator[None]:
    """One writer ATTACHes at a time (see _ATTACH_LOCK_KEY); held for the ATTACH only, on a
    connection of its own that closing releases (also when the process dies). A reader never
    creates the catalog, so it takes no lock."""
    if not enabled:
        yield
        return
    import psycopg2  # the `lake` extra's, as in day_locks

    try:
        lock_conn = psycopg2.connect(catalog_url)
    except psycopg2.Error as exc:
        raise LakeSetupError(
            f"Could not connect to the lake catalog {redacted_url(catalog_url)} to attach it: "
            f"{_scrub(str(exc), catalog_url)}"
        ) from None
    try:
        lock_conn.autocommit = True
        with lock_conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_ATTACH_LOCK_KEY,))
        yield
    finally:
        lock_conn.close()


def connect_lake(
    location: LakeLocation,
    *,
    read_only: bool = False,
    config: Mapping[str, Any] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with the lake attached and in use; the caller closes it."""
    conn = duckdb.connect(":memory:", config={**(config or {}), **EXTENSION_SAFETY_CONFIG})
    try:
        attach_lake(conn, location, read_only=read_only)
    except BaseException:
        conn.close()
        raise
    return conn


# DuckLake's message for a commit that lost against another one ("Transaction conflict -
# attempting to delete from table ... but another transaction has deleted from it"), and DuckDB's
# own write-write conflict.
_CONFLICT = re.compile(r"Transaction conflict|write-write conflict|Conflict on", re.IGNORECASE)


def is_commit_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a lost optimistic commit, which running the transaction again resolves."""
    return isinstance(exc, duckdb.Error) and bool(_CONFLICT.search(str(exc)))


@contextmanager
def day_locks(catalog_url: str, first: date, last: date) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock for each usage day of [first, last] until the block ends.

    Taken in day order (no deadlock between overlapping windows) on a connection of its own, so
    they outlive DuckDB's transactions and its retries; closing the connection releases them, also
    when the process dies."""
    import psycopg2  # the `lake` extra's; imported here so the DuckDB file needs no driver

    try:
        lock_conn = psycopg2.connect(catalog_url)
    except psycopg2.Error as exc:
        raise LakeSetupError(
            f"Could not connect to the lake catalog {redacted_url(catalog_url)} for the load's "
            f"day locks: {_scrub(str(exc), catalog_url)}"
        ) from None
    try:
        lock_conn.autocommit = True
        with lock_conn.cursor() as cur:
            day = first
            while day <= last:
                cur.execute("SELECT pg_advisory_lock(%s, %s)", (_DAY_LOCK_CLASS, day.toordinal()))
                day += timedelta(days=1)
        yield
    finally:
        lock_conn.close()


def _sql_text(text: str) -> str:
    return text.replace("'", "''")
