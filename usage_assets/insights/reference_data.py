"""The user-editable reference files the insights need, read and validated.

They are small CSV files in one folder (`usage_assets/reference/`, or `$USAGE_REFERENCE_DIR`):

* `resource_classes.csv` (required): each class's vCPUs, RAM, credits per minute (empty where no
  rate is known), the next smaller class, for right-sizing, and its end of life (optional column).
* `price_per_credit.csv` (optional): what a credit costs, by date range, because contracts change.
* `team_mapping.csv` (optional): project -> team, for chargeback.
* `budgets.csv` (optional): monthly credit budgets per organization or project, for the forecast.
* `default_branches.csv` (optional): a project's default branch where the inferred one is wrong.

A missing optional file means "none": no price (costs stay empty), every project "unassigned", no
budget, inferred default branches. A malformed file fails with a message that names the file, the
line and the column, because the person fixing it has the file open in an editor. Lines starting
with `#` are comments, so the files can explain themselves.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

RESOURCE_CLASSES_FILE = "resource_classes.csv"
PRICES_FILE = "price_per_credit.csv"
TEAMS_FILE = "team_mapping.csv"
BUDGETS_FILE = "budgets.csv"
DEFAULT_BRANCHES_FILE = "default_branches.csv"

ANY_CLASS = "*"
UNASSIGNED_TEAM = "unassigned"


class ReferenceDataError(ValueError):
    """A reference file that cannot be used; the message says where and why."""

    def __init__(
        self, path: Path, message: str, *, line: int | None = None, column: str | None = None
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column


@dataclass(frozen=True)
class ResourceClass:
    executor: str
    resource_class: str  # ANY_CLASS matches every class of the executor
    vcpus: float | None  # None: no size known (self-hosted runners)
    ram_gib: float | None
    credits_per_minute: float | None  # None: no rate known; the insights fit one from the rows
    next_smaller_class: str | None
    end_of_life: date | None = None  # retired by CircleCI: history only, never a suggested target

    @property
    def retired(self) -> bool:
        return self.end_of_life is not None


@dataclass(frozen=True)
class PricePeriod:
    valid_from: date
    valid_to: date | None  # inclusive; None is open-ended
    currency: str
    price_per_credit: float

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class TeamAssignment:
    project_name: str
    team: str


@dataclass(frozen=True)
class Budget:
    month: date  # first day of the month
    organization: str  # name or id
    project_name: str | None  # None: the organization's total
    credits: float


@dataclass(frozen=True)
class DefaultBranch:
    project_name: str
    default_branch: str


@dataclass(frozen=True)
class ReferenceData:
    resource_classes: tuple[ResourceClass, ...]
    prices: tuple[PricePeriod, ...] = ()
    teams: tuple[TeamAssignment, ...] = ()
    budgets: tuple[Budget, ...] = ()
    default_branches: tuple[DefaultBranch, ...] = ()
    # file name -> the path read, or "absent": shown in asset metadata.
    sources: Mapping[str, str] = field(default_factory=dict)

    def price_on(self, day: date) -> PricePeriod | None:
        return next((p for p in self.prices if p.covers(day)), None)


# --------------------------------------------------------------------------------------------
# Cell parsers: each takes the stripped text and returns the value or raises ValueError with a
# message meant for the person editing the file.
# --------------------------------------------------------------------------------------------

Parser = Callable[[str], Any]


def _text(value: str) -> str:
    if not value:
        raise ValueError("is empty")
    return value


def _optional(parser: Parser) -> Parser:
    def parse(value: str) -> Any:
        return parser(value) if value else None

    return parse


def _number(*, positive: bool) -> Parser:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        if positive and number <= 0:
            raise ValueError(f"{value} must be greater than 0")
        if number < 0:
            raise ValueError(f"{value} must not be negative")
        return number

    return parse


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date like 2026-01-31") from None


def _month(value: str) -> date:
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValueError(f"{value!r} is not a month like 2026-01") from None


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValueError(f"{value!r} is not a three-letter currency code such as USD")
    return value


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, Any]


def _read(
    path: Path, columns: Mapping[str, Parser], optional: Mapping[str, Parser] | None = None
) -> list[_Row]:
    """Parse a CSV with exactly `columns` (any order) and any of `optional` (None where the file
    has no such column, so files written before a column was added still read), skipping blank
    and `#` lines."""
    optional = optional or {}
    known = {**columns, **optional}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ReferenceDataError(path, f"cannot be read ({exc.strerror})") from None
    with handle:
        lines = _data_lines(handle)
        try:
            header_line, header = next(lines)
        except StopIteration:
            raise ReferenceDataError(
                path, f"has no header line; expected {', '.join(columns)}"
            ) from None
        names = [name.strip().lower() for name in header]
        for name in names:
            if name not in known:
                raise ReferenceDataError(
                    path,
                    f"unknown column; expected {', '.join(known)}",
                    line=header_line,
                    column=name,
                )
        missing = [name for name in columns if name not in names]
        if missing:
            raise ReferenceDataError(
                path, f"missing column(s) {', '.join(missing)} in the header", line=header_line
            )
        if len(set(names)) != len(names):
            raise ReferenceDataError(path, "a column appears twice in the header", line=header_line)
        rows = []
        for line, cells in lines:
            if len(cells) != len(names):
                raise ReferenceDataError(
                    path, f"has {len(cells)} field(s), the header has {len(names)}", line=line
                )
            values: dict[str, Any] = dict.fromkeys(optional)
            for name, cell in zip(names, cells, strict=True):
                try:
                    values[name] = known[name](cell.strip())
                except ValueError as exc:
                    raise ReferenceDataError(path, str(exc), line=line, column=name) from None
            rows.append(_Row(line, values))
    return rows


def _data_lines(handle: Any) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(handle)
    for cells in reader:
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        yield reader.line_num, cells


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------


def read_resource_classes(path: Path) -> tuple[ResourceClass, ...]:
    rows = _read(
        path,
        {
            "executor": _text,
            "resource_class": _text,
            "vcpus": _optional(_number(positive=True)),
            "ram_gib": _optional(_number(positive=True)),
            "credits_per_minute": _optional(_number(positive=False)),
            "next_smaller_class": _optional(_text),
        },
        optional={"end_of_life": _optional(_date)},
    )
    classes: dict[tuple[str, str], tuple[int, ResourceClass]] = {}
    for row in rows:
        rc = ResourceClass(**row.values)
        key = (rc.executor, rc.resource_class)
        if key in classes:
            raise ReferenceDataError(
                path,
                f"{rc.executor} {rc.resource_class} is already defined on line {classes[key][0]}",
                line=row.line,
                column="resource_class",
            )
        if (rc.vcpus is None) != (rc.ram_gib is None):
            raise ReferenceDataError(
                path, "give both vcpus and ram_gib, or neither", line=row.line, column="vcpus"
            )
        classes[key] = (row.line, rc)
    for line, rc in classes.values():
        if rc.next_smaller_class is None:
            continue
        smaller = classes.get((rc.executor, rc.next_smaller_class))
        if smaller is None:
            raise ReferenceDataError(
                path,
                f"{rc.next_smaller_class!r} is not a {rc.executor} class in this file",
                line=line,
                column="next_smaller_class",
            )
        rates = (smaller[1].credits_per_minute, rc.credits_per_minute)
        if rates[0] is not None and rates[1] is not None and rates[0] >= rates[1]:
            raise ReferenceDataError(
                path,
                f"{rc.next_smaller_class} does not cost fewer credits per minute than {rc.resource_class}",
                line=line,
                column="next_smaller_class",
            )
        if rc.vcpus is None or smaller[1].vcpus is None:
            raise ReferenceDataError(
                path,
                "a class with a next smaller class needs vcpus and ram_gib on both lines",
                line=line,
                column="next_smaller_class",
            )
    return tuple(rc for _, rc in classes.values())


def read_prices(path: Path) -> tuple[PricePeriod, ...]:
    rows = _read(
        path,
        {
            "valid_from": _date,
            "valid_to": _optional(_date),
            "currency": _currency,
            "price_per_credit": _number(positive=False),
        },
    )
    periods: list[tuple[int, PricePeriod]] = []
    for row in rows:
        period = PricePeriod(**row.values)
        if period.valid_to is not None and period.valid_to < period.valid_from:
            raise ReferenceDataError(
                path, "valid_to is before valid_from", line=row.line, column="valid_to"
            )
        for other_line, other in periods:
            other_end = other.valid_to or date.max
            end = period.valid_to or date.max
            if period.valid_from <= other_end and other.valid_from <= end:
                raise ReferenceDataError(
                    path,
                    f"overlaps the range on line {other_line}; each day needs exactly one price",
                    line=row.line,
                    column="valid_from",
                )
        periods.append((row.line, period))
    return tuple(sorted((p for _, p in periods), key=lambda p: p.valid_from))


def read_teams(path: Path) -> tuple[TeamAssignment, ...]:
    rows = _read(path, {"project_name": _text, "team": _text})
    seen: dict[str, int] = {}
    for row in rows:
        name = row.values["project_name"]
        if name in seen:
            raise ReferenceDataError(
                path,
                f"{name} is already mapped on line {seen[name]}",
                line=row.line,
                column="project_name",
            )
        seen[name] = row.line
    return tuple(TeamAssignment(**row.values) for row in rows)


def read_budgets(path: Path) -> tuple[Budget, ...]:
    rows = _read(
        path,
        {
            "month": _month,
            "organization": _text,
            "project_name": _optional(_text),
            "credits": _number(positive=True),
        },
    )
    seen: dict[tuple[date, str, str | None], int] = {}
    for row in rows:
        key = (row.values["month"], row.values["organization"], row.values["project_name"])
        if key in seen:
            raise ReferenceDataError(
                path,
                f"the same month, organization and project already have a budget on line {seen[key]}",
                line=row.line,
                column="month",
            )
        seen[key] = row.line
    return tuple(Budget(**row.values) for row in rows)


def read_default_branches(path: Path) -> tuple[DefaultBranch, ...]:
    rows = _read(path, {"project_name": _text, "default_branch": _text})
    return tuple(DefaultBranch(**row.values) for row in rows)


def load_reference_data(directory: Path) -> ReferenceData:
    """Every reference file of `directory`; raises ReferenceDataError on the first problem."""
    required = directory / RESOURCE_CLASSES_FILE
    if not required.is_file():
        raise ReferenceDataError(
            required,
            "not found; right-sizing needs it (copy usage_assets/reference/resource_classes.csv)",
        )
    sources = {RESOURCE_CLASSES_FILE: str(required)}

    def optional(name: str, reader: Callable[[Path], tuple[Any, ...]]) -> tuple[Any, ...]:
        path = directory / name
        if not path.is_file():
            sources[name] = "absent"
            return ()
        sources[name] = str(path)
        return reader(path)

    return ReferenceData(
        resource_classes=read_resource_classes(required),
        prices=optional(PRICES_FILE, read_prices),
        teams=optional(TEAMS_FILE, read_teams),
        budgets=optional(BUDGETS_FILE, read_budgets),
        default_branches=optional(DEFAULT_BRANCHES_FILE, read_default_branches),
        sources=sources,
    )
