"""The raw export folders: a damaged manifest is named as such, never a bare JSONDecodeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from usage_assets.ingest.raw_store import (
    MANIFEST,
    DamagedManifestError,
    PartRecord,
    RawExport,
    read_manifest,
    write_manifest,
)


def test_a_written_manifest_reads_back_while_its_parts_are_on_disk(tmp_path: Path) -> None:
    (tmp_path / "part_0000.csv.gz").write_bytes(b"12345")
    export = RawExport(
        "e1", "org", "2026-11-30T06:00:00+00:00", (PartRecord("part_0000.csv.gz", 5, 2),)
    )
    write_manifest(tmp_path, export)
    assert read_manifest(tmp_path) == export
    (tmp_path / "part_0000.csv.gz").write_bytes(b"123")  # a part cut short: not complete
    assert read_manifest(tmp_path) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "not valid JSON"),
        ('{"export_job_id": "e1", "org_id": "org", "parts": [', "not valid JSON"),
        ('{"export_job_id": "e1"}', "not a manifest"),
        (
            '{"export_job_id": "e1", "org_id": "o", "downloaded_at": "t", "parts": [{"x": 1}]}',
            "not a manifest",
        ),
        ("[1, 2]", "not a manifest"),
    ],
)
def test_a_damaged_manifest_names_its_file_and_what_to_do(
    tmp_path: Path, content: str, problem: str
) -> None:
    (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(DamagedManifestError) as caught:
        read_manifest(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / MANIFEST) in message and problem in message
    assert "Materialize raw_usage_files" in message
