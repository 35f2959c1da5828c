"""The user-editable reference files: the shipped ones, optional ones, and clear errors."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from usage_assets.config import DEFAULT_REFERENCE_DIR
from usage_assets.insights.reference_data import (
    Budget,
    DefaultBranch,
    PricePeriod,
    ReferenceDataError,
    TeamAssignment,
    load_reference_data,
)
from usage_assets.insights.resource_class_rates import ResourceClassCatalog
from usage_assets.simulator.catalogue import _RESOURCE_CLASSES

CLASSES_HEADER = "executor,resource_class,vcpus,ram_gib,credits_per_minute,next_smaller_class\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A reference folder holding only a copy of the shipped resource_classes.csv."""
    shutil.copy(DEFAULT_REFERENCE_DIR / "resource_classes.csv", tmp_path)
    return tmp_path


def test_the_shipped_files_load() -> None:
    data = load_reference_data(DEFAULT_REFERENCE_DIR)
    assert data.prices == (PricePeriod(date(2015, 1, 1), None, "USD", 0.0006),)
    assert data.price_on(date(2026, 11, 1)) == data.prices[0]
    assert (data.teams, data.budgets, data.default_branches) == ((), (), ())
    assert data.sources["team_mapping.csv"] == "absent"
    assert data.sources["resource_classes.csv"].endswith("resource_classes.csv")


def test_the_shipped_classes_cover_what_the_simulator_generates_at_its_rates() -> None:
    """Every simulated class is in the file; where the file gives a rate the simulator bills it,
    and where the file leaves it empty (unknown) the simulator bills an invented rate of its own,
    which the insights must fit from the rows (see simulator/catalogue.py)."""
    catalog = ResourceClassCatalog(load_reference_data(DEFAULT_REFERENCE_DIR).resource_classes)
    unknown = []
    for text, executor, _, rate in _RESOURCE_CLASSES.values():
        found = catalog.find(executor, text.format(org="acme"))
        assert found is not None, f"{executor} {text} is missing"
        if found.credits_per_minute is None:
            unknown.append(text)
        else:
            assert found.credits_per_minute == rate, f"{executor} {text}"
    assert unknown == ["m4pro.medium"]


@pytest.mark.parametrize(
    ("executor", "name", "vcpus", "ram_gib", "rate", "smaller"),
    [
        # Rates a real export bills (circleci-data-facts.md §1.2), not Docker's.
        ("machine", "xlarge", 8, 32, 100, "large"),
        ("machine", "2xlarge", 16, 64, 200, "xlarge"),
        ("machine", "arm.xlarge", 8, 32, 100, "arm.large"),
        ("remote-docker", "xlarge", 8, 32, 100, "large"),
        ("machine", "gpu.nvidia.small.multi", 4, 15, 160, None),
        ("machine", "gpu.nvidia.medium.multi", 8, 30, 240, None),
        # 64 GB, as CircleCI's machine table says (the file had 128).
        ("machine", "2xlarge+", 32, 64, 300, "2xlarge"),
        # Classes of 2026 exports; rates unknown where no source gives one.
        ("machine", "xlarge.gen3", 8, 32, None, "large.gen3"),
        ("macos", "m4pro.large", 12, 56, None, "m4pro.medium"),
        ("docker", "medium.gen2", 2, 4, 12, "small.gen2"),
        ("machine", "windows.gpu.nvidia.medium", 16, 60, None, None),
    ],
)
def test_the_shipped_classes_follow_circleci(
    executor: str, name: str, vcpus: float, ram_gib: float, rate: float | None, smaller: str | None
) -> None:
    catalog = ResourceClassCatalog(load_reference_data(DEFAULT_REFERENCE_DIR).resource_classes)
    found = catalog.find(executor, name)
    assert found is not None
    assert (found.vcpus, found.ram_gib, found.credits_per_minute, found.next_smaller_class) == (
        vcpus,
        ram_gib,
        rate,
        smaller,
    )
    assert found.end_of_life is None


def test_the_m1_and_m2_macos_classes_are_kept_as_retired() -> None:
    classes = load_reference_data(DEFAULT_REFERENCE_DIR).resource_classes
    retired = {c.resource_class for c in classes if c.retired}
    assert retired == {
        "macos.m1.medium.gen1",
        "macos.m1.large.gen1",
        "m2pro.medium",
        "m2pro.large",
    }
    assert {c.end_of_life for c in classes if c.retired} == {date(2026, 2, 16)}


def test_a_file_without_the_end_of_life_column_still_reads(tmp_path: Path) -> None:
    (tmp_path / "resource_classes.csv").write_text(
        CLASSES_HEADER + "docker,small,1,2,5,\ndocker,medium,2,4,,small\n"
    )
    classes = load_reference_data(tmp_path).resource_classes
    assert [(c.resource_class, c.credits_per_minute, c.end_of_life) for c in classes] == [
        ("small", 5.0, None),
        ("medium", None, None),
    ]


def test_the_example_files_are_valid(folder: Path) -> None:
    for name in ("team_mapping", "budgets", "default_branches"):
        shutil.copy(DEFAULT_REFERENCE_DIR / f"{name}.example.csv", folder / f"{name}.csv")
    data = load_reference_data(folder)
    assert data.teams == (
        TeamAssignment("web-app", "frontend"),
        TeamAssignment("core-api", "backend"),
    )
    assert data.budgets == (
        Budget(date(2026, 11, 1), "acme-labs", None, 2_500_000.0),
        Budget(date(2026, 11, 1), "acme-labs", "web-app", 400_000.0),
    )
    assert data.default_branches == (DefaultBranch("web-app", "main"),)


def test_optional_files_may_be_absent(folder: Path) -> None:
    data = load_reference_data(folder)
    assert (data.prices, data.teams, data.budgets) == ((), (), ())
    assert data.price_on(date(2026, 1, 1)) is None


def test_comments_blank_lines_any_column_order_and_open_ended_ranges(folder: Path) -> None:
    (folder / "price_per_credit.csv").write_text(
        "# contract history\n"
        "\n"
        "currency,price_per_credit,valid_from,valid_to\n"
        "USD,0.0006,2025-01-01,2025-12-31\n"
        "# renewed\n"
        "USD,0.0005,2026-01-01,\n"
    )
    data = load_reference_data(folder)
    assert data.price_on(date(2025, 12, 31)) == PricePeriod(
        date(2025, 1, 1), date(2025, 12, 31), "USD", 0.0006
    )
    assert data.price_on(date(2030, 1, 1)) == PricePeriod(date(2026, 1, 1), None, "USD", 0.0005)
    assert data.price_on(date(2024, 12, 31)) is None


def test_the_required_file_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"resource_classes\.csv: not found"):
        load_reference_data(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "resource_classes.csv",
            CLASSES_HEADER + "# sizes\ndocker,small,1,2,five,\n",
            "line 3, column 'credits_per_minute': 'five' is not a number",
        ),
        (
            "resource_classes.csv",
            "executor,class,vcpus,ram_gib,credits_per_minute,next_smaller_class\n",
            "line 1, column 'class': unknown column; expected executor, resource_class",
        ),
        (
            "resource_classes.csv",
            "executor,resource_class,vcpus,ram_gib,credits_per_minute\n",
            "line 1: missing column(s) next_smaller_class",
        ),
        (
            "resource_classes.csv",
            CLASSES_HEADER + "docker,small,1,2,5,\ndocker,medium,2,4,10,tiny\n",
            "line 3, column 'next_smaller_class': 'tiny' is not a docker class in this file",
        ),
        (
            "resource_classes.csv",
            CLASSES_HEADER + "docker,small,1,2,5,\ndocker,small,1,2,5,\n",
            "line 3, column 'resource_class': docker small is already defined on line 2",
        ),
        (
            "resource_classes.csv",
            CLASSES_HEADER + "docker,small,1,2,5\n",
            "line 2: has 5 field(s), the header has 6",
        ),
        (
            "resource_classes.csv",
            CLASSES_HEADER + "docker,small,0,2,5,\n",
            "line 2, column 'vcpus': 0 must be greater than 0",
        ),
        (
            "resource_classes.csv",
            CLASSES_HEADER.replace("\n", ",end_of_life\n") + "macos,m1,4,6,150,,Feb 2026\n",
            "line 2, column 'end_of_life': 'Feb 2026' is not a date like 2026-01-31",
        ),
        (
            "price_per_credit.csv",
            "valid_from,valid_to,currency,price_per_credit\n"
            "2025-01-01,,USD,0.0006\n2026-01-01,,USD,0.0005\n",
            "line 3, column 'valid_from': overlaps the range on line 2",
        ),
        (
            "price_per_credit.csv",
            "valid_from,valid_to,currency,price_per_credit\n2026-02-01,2026-01-01,USD,0.0006\n",
            "line 2, column 'valid_to': valid_to is before valid_from",
        ),
        (
            "price_per_credit.csv",
            "valid_from,valid_to,currency,price_per_credit\n2026-13-01,,USD,0.0006\n",
            "line 2, column 'valid_from': '2026-13-01' is not a date like 2026-01-31",
        ),
        (
            "price_per_credit.csv",
            "valid_from,valid_to,currency,price_per_credit\n2026-01-01,,usd,0.0006\n",
            "line 2, column 'currency': 'usd' is not a three-letter currency code",
        ),
        (
            "price_per_credit.csv",
            "valid_from,valid_to,currency,price_per_credit\n2026-01-01,,USD,-1\n",
            "line 2, column 'price_per_credit': -1 must not be negative",
        ),
        (
            "budgets.csv",
            "month,organization,project_name,credits\n2026/11,acme,,1000\n",
            "line 2, column 'month': '2026/11' is not a month like 2026-01",
        ),
        (
            "budgets.csv",
            "month,organization,project_name,credits\n2026-11,acme,,0\n",
            "line 2, column 'credits': 0 must be greater than 0",
        ),
        (
            "budgets.csv",
            "month,organization,project_name,credits\n2026-11,acme,web,5\n2026-11,acme,web,6\n",
            "line 3, column 'month': the same month, organization and project already have a budget on line 2",
        ),
        (
            "team_mapping.csv",
            "project_name,team\nweb,frontend\nweb,backend\n",
            "line 3, column 'project_name': web is already mapped on line 2",
        ),
        (
            "team_mapping.csv",
            "project_name,team\nweb,\n",
            "line 2, column 'team': is empty",
        ),
        ("team_mapping.csv", "# nothing but a comment\n", "has no header line"),
    ],
)
def test_malformed_files_name_file_line_and_column(
    folder: Path, name: str, content: str, message: str
) -> None:
    (folder / name).write_text(content)
    with pytest.raises(ReferenceDataError) as caught:
        load_reference_data(folder)
    assert str(caught.value).startswith(str(folder / name))
    assert message in str(caught.value)
