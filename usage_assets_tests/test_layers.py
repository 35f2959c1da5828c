"""The folders are layers, and this keeps them so: the core never imports Dagster.

`circleci/` (the vendor's contract), `ingest/` (raw files, cleaning, the load, the quota ledger,
the pending-export state machine) and `insights/` (the tables and the report) are plain Python,
testable and reusable without Dagster; `simulator/` and `config.py` likewise. Only `defs/` (the
Dagster wiring), `dev/` (the local harness) and `definitions.py` may import Dagster. Each layer
may import only the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "usage_assets"
# layer -> the usage_assets layers it may import (itself included)
ALLOWED = {
    "circleci": {"circleci"},
    "ingest": {"circleci", "ingest"},
    "insights": {"circleci", "ingest", "insights"},
    "simulator": {"circleci", "simulator"},
    "config": {"circleci"},
}
DAGSTER_MODULES = ("dagster", "dagster_duckdb", "dagster_webserver", "dagster_graphql")


def _layer_modules() -> list[tuple[str, Path]]:
    found = []
    for layer in ALLOWED:
        folder = PACKAGE / layer
        paths = sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{layer}.py"]
        found += [(layer, path) for path in paths]
    return found


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def _imports(source: str, package: str) -> list[tuple[int, str]]:
    """Every module name the source imports, with its line (relative imports resolved)."""
    tree = ast.parse(source)
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                names.append((node.lineno, node.module))
    return names


def test_the_rule_sees_every_core_module() -> None:
    modules = _layer_modules()
    assert {layer for layer, _ in modules} == set(ALLOWED)
    assert len(modules) > 30


@pytest.mark.parametrize(
    ("layer", "path"),
    _layer_modules(),
    ids=lambda v: str(v.relative_to(PACKAGE)) if isinstance(v, Path) else v,
)
def test_core_modules_import_no_dagster_and_only_lower_layers(layer: str, path: Path) -> None:
    for line, name in _imports(path.read_text(), _package_of(path)):
        top = name.split(".")[0]
        where = f"{path.relative_to(PACKAGE.parent)}:{line}"
        assert top not in DAGSTER_MODULES, f"{where} imports {name}: keep Dagster in defs/"
        if top == "usage_assets":
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else ""
            assert target in ALLOWED[layer], (
                f"{where} imports {name}: {layer} may import only {sorted(ALLOWED[layer])}"
            )


def test_the_rule_catches_dagster_and_upward_imports() -> None:
    """The check is not vacuous: absolute, aliased and relative imports are all seen."""
    source = (
        "import os\nfrom dagster import asset\nimport dagster_duckdb as d\n"
        "from ..defs import resources\n"
    )
    names = [name for _, name in _imports(source, "usage_assets.ingest")]
    assert names == ["os", "dagster", "dagster_duckdb", "usage_assets.defs"]
