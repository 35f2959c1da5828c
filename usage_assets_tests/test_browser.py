"""The Dagster UI in a real headless Chromium: the asset graph with its lineage, the partitions of
`usage_export_job`, and the sensor's page, on a small instance populated through the real pipeline.

Screenshots land in `screenshots/` (git-ignored). In CI (`CI=true`) a missing browser is a failure,
never a skip: `.ci/run` installs Debian's chromium and chromium-driver first.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from usage_assets.defs.partitions import partition_keys_between
from usage_assets.defs.usage.jobs import download_and_load_usage
from usage_assets.dev.local_stack import REPO_ROOT, LocalStack, local_stack
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import SimulatorSettings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "screenshots"

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI") == "true":
        pytest.fail("chromium/chromedriver missing in CI: .ci/run must install them", pytrace=False)
    pytest.skip("Debian's chromium and chromium-driver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only once the browser is known to exist
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def populated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    today = datetime.now(UTC).date()
    keys = partition_keys_between(today - timedelta(days=3), today - timedelta(days=1))
    settings = SimulatorSettings(processing_time=timedelta(seconds=1), rows_per_day=10)
    with (
        SimulatorServer(settings) as sim,
        local_stack(tmp_path_factory.mktemp("ui"), simulator=sim) as stack,
    ):
        started = datetime.now(UTC)
        stack.wait_for_backfill(stack.launch_backfill("usage_export_job", keys), timeout=300)
        stack.wait_for_runs(download_and_load_usage.name, 1, timeout=300, created_after=started)
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
    ):
        options.add_argument(flag)
    # The browser keeps the real clock when the suite runs on a moved one (.ci/test-at-dates): it
    # only shows what the webserver serves, and Chromium crashes with libfaketime preloaded.
    driver_env = {
        k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")
    }
    driver = webdriver.Chrome(
        service=Service(executable_path=CHROMEDRIVER, env=driver_env), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the page did not show what was expected in time")
        time.sleep(0.5)


def page_text(browser: WebDriver) -> str:
    return str(browser.find_element(By.TAG_NAME, "body").text)


def dismiss_welcome_dialog(browser: WebDriver) -> None:
    """A first visit shows a "Join the Dagster community" dialog over the page; skip it."""
    for button in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
        if button.is_displayed():
            button.click()
            wait_until(lambda: "Join the Dagster community" not in page_text(browser), timeout=10)


def screenshot(browser: WebDriver, name: str) -> Path:
    dismiss_welcome_dialog(browser)
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path


def expand_group(browser: WebDriver, group: str, names: tuple[str, ...]) -> None:
    """With several asset groups the lineage view shows each group collapsed into one node; a
    double click on the group's node opens it (the left-hand list names it too, further left).
    The graph may still be laying out when the node appears, so the click is retried, slowly
    enough that a second click never folds an opened group again before its names show."""

    def shown() -> bool:
        return all(name in page_text(browser) for name in names)

    deadline = time.monotonic() + 90
    while not shown():
        if time.monotonic() > deadline:
            raise AssertionError(f"group {group} did not open to show {', '.join(names)}")
        dismiss_welcome_dialog(browser)
        labels = [
            label
            for label in browser.find_elements(By.XPATH, f"//div[text()='{group}']")
            if label.is_displayed()
        ]
        if labels:
            node = max(labels, key=lambda label: float(label.location["x"]))
            ActionChains(browser).double_click(node).perform()
        time.sleep(4)


def test_asset_graph_shows_the_three_assets_and_their_lineage(
    populated_stack: LocalStack, browser: WebDriver
) -> None:
    browser.get(f"{populated_stack.webserver_url}/asset-groups/circleci_usage")
    names = ("usage_export_job", "raw_usage_files", "job_runs")
    expand_group(browser, "circleci_usage", names)

    # The graph lays nodes out along their edges: export -> raw -> job_runs, left to right.
    # (The left-hand list repeats the names at one x; the graph's node is the right-most match.)
    def node_x(name: str) -> float:
        labels = browser.find_elements(By.XPATH, f"//*[text()='{name}']")
        return max(
            (float(label.location["x"]) for label in labels if label.is_displayed()), default=-1.0
        )

    wait_until(lambda: node_x("usage_export_job") < node_x("raw_usage_files") < node_x("job_runs"))
    # And the edges themselves are drawn as SVG paths.
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "svg path[d]")) >= 2)
    assert screenshot(browser, "asset_graph").stat().st_size > 10_000


def test_insights_group_and_the_report_asset(
    populated_stack: LocalStack, browser: WebDriver
) -> None:
    browser.get(f"{populated_stack.webserver_url}/asset-groups/circleci_insights")
    expand_group(browser, "circleci_insights", ("daily_usage", "right_sizing", "usage_report"))
    assert screenshot(browser, "insights_graph").stat().st_size > 10_000
    browser.get(f"{populated_stack.webserver_url}/assets/usage_report")
    wait_until(
        lambda: "report_path" in page_text(browser) and "usage_report.html" in page_text(browser)
    )
    assert screenshot(browser, "usage_report_asset").stat().st_size > 10_000


def test_partitions_view_of_usage_export_job(
    populated_stack: LocalStack, browser: WebDriver
) -> None:
    browser.get(f"{populated_stack.webserver_url}/assets/usage_export_job?view=partitions")
    wait_until(lambda: "Partitions" in page_text(browser) and "Materialized" in page_text(browser))
    assert screenshot(browser, "usage_export_job_partitions").stat().st_size > 10_000


def test_sensor_page(populated_stack: LocalStack, browser: WebDriver) -> None:
    browser.get(
        f"{populated_stack.webserver_url}/locations/usage_assets/sensors/usage_export_job_sensor"
    )
    wait_until(
        lambda: "usage_export_job_sensor" in page_text(browser) and "Running" in page_text(browser)
    )
    assert screenshot(browser, "usage_export_job_sensor").stat().st_size > 10_000
