"""The raw export files on disk, kept exactly as downloaded so any load can be replayed.

Layout: `<raw_dir>/<org_id>/<export_job_id>/part_0000.csv.gz ...` plus `manifest.json`, written last
and atomically: a job folder without a manifest is an interrupted download, never a complete one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PartRecord:
    name: str
    compressed_bytes: int
    data_rows: int


@dataclass(frozen=True)
class RawExport:
    """A fully downloaded export job."""

    export_job_id: str
    org_id: str
    downloaded_at: str
    parts: tuple[PartRecord, ...]

    @property
    def total_bytes(self) -> int:
        return sum(part.compressed_bytes for part in self.parts)

    @property
    def total_rows(self) -> int:
        return sum(part.data_rows for part in self.parts)


class DamagedManifestError(ValueError):
    """A manifest.json that cannot be read (empty, cut short, edited): the folder's download
    cannot be trusted and is fetched again."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"{path} is damaged ({problem}); the export's files there cannot be trusted. "
            "Materialize raw_usage_files for these partitions to download the export again."
        )
        self.path = path


def job_dir(raw_dir: Path, org_id: str, export_job_id: str) -> Path:
    return raw_dir / org_id / export_job_id


def part_name(index: int) -> str:
    return f"part_{index:04d}.csv.gz"


def write_manifest(folder: Path, export: RawExport) -> Path:
    body = {**asdict(export), "parts": [asdict(part) for part in export.parts]}
    target = folder / MANIFEST
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, target)
    return target


def read_manifest(folder: Path) -> RawExport | None:
    """The export in `folder` if its download completed and every part is still on disk.

    Raises DamagedManifestError when the manifest exists but cannot be read."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text())
        export = RawExport(
            export_job_id=str(body["export_job_id"]),
            org_id=str(body["org_id"]),
            downloaded_at=str(body["downloaded_at"]),
            parts=tuple(PartRecord(**part) for part in body["parts"]),
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedManifestError(path, f"not valid JSON: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise DamagedManifestError(path, f"not a manifest: {exc!r}") from None
    for part in export.parts:
        file = folder / part.name
        if not file.exists() or file.stat().st_size != part.compressed_bytes:
            return None
    return export


def forget_download(folder: Path) -> None:
    """Mark the folder's download as incomplete (its manifest goes), so it is fetched again."""
    (folder / MANIFEST).unlink(missing_ok=True)


def part_paths(folder: Path, export: RawExport) -> list[Path]:
    return [folder / part.name for part in export.parts]


@contextmanager
def export_lock(
    folder: Path, *, shared: bool = False, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold the export folder's lock: exclusive to download into it, shared to read from it.

    Two runs of the same export (the sensor's and a re-materialize from the UI) would otherwise
    clear and rewrite each other's files. The lock is an flock on a file beside the folder, so
    the kernel frees it when its process dies, killed or not. Yields whether it had to wait.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with (folder.parent / f".{folder.name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
