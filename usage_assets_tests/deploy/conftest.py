"""The deployment tests' summary lines in the terminal report, passed or not.

Pytest shows a test's output only when it fails, yet the CI log should say on every run what the
production-stack test proved (exact rows, overlapping loads). Tests record such lines with
`record_property("summary", line)`; they are printed at the end of the session.
"""

from __future__ import annotations

import pytest

_LINES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _LINES.extend(str(value) for name, value in report.user_properties if name == "summary")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _LINES:
        terminalreporter.write_sep("=", "deployment summary")
        for line in _LINES:
            terminalreporter.write_line(line)
