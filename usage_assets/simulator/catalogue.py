"""The simulator's static catalogue: resource classes, project archetypes and the words orgs,
branches and people are named from.

It is data, not logic, and lives apart from the generator (``synthetic.py``) so that each can be
read and changed alone: adding a job or an archetype is an edit here, while how rows are drawn,
numbered and encoded stays there. The generator walks this data in order while drawing from its
random streams, so any change here (a value, or the order of entries) changes the rows generated
for every seed; that is expected and is why the catalogue is plain literals, easy to review.

What the generator relies on:

* every job template's ``rc`` is a key of ``_RESOURCE_CLASSES``, and every class there is in the
  shipped ``usage_assets/reference/resource_classes.csv``, at the same rate where the file gives
  one (a test checks this). Where the file leaves the rate empty (unknown: ``m4pro.medium``), the
  simulator bills at its own plausible, *invented* rate, and the insights must fit that rate from
  the rows themselves (``circleci_insights.resource_class_rates``), as they would for a real one;
* network credits only on self-hosted runner jobs (CircleCI bills network only for traffic to
  self-hosted runners; checked when an org model is built);
* texts go into the export unquoted, so none may hold a comma, a double quote or a line break.

The class mix follows a real export (circleci-data-facts.md §3.2 row 31, §1.3): machine xlarge
(some at parallelism 3) and 2xlarge, remote-docker xlarge, a GPU class, the 2026 ``*.gen2``
classes, and macOS ``m4pro.medium`` replacing the M1 class CircleCI retired on 2026-02-16.

The names keep their leading underscore: they are private to the simulator package, not API.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

# --------------------------------------------------------------------------------------------
# Resource classes: key -> (RESOURCE_CLASS text, EXECUTOR, OPERATING_SYSTEM, credits per minute).
# Rates are the shipped resource_classes.csv's (measured in a real export where it says so);
# m4pro.medium's 200 is INVENTED (the file leaves it empty: no source gives it). Self-hosted
# runners burn no compute credits.
# Runner classes are "<org-name>/<pool>" in CircleCI, so their text is filled in per org.
# --------------------------------------------------------------------------------------------
_RESOURCE_CLASSES: dict[str, tuple[str, str, str, int]] = {
    "docker:small": ("small", "docker", "linux", 5),
    "docker:medium": ("medium", "docker", "linux", 10),
    "docker:medium+": ("medium+", "docker", "linux", 15),
    "docker:large": ("large", "docker", "linux", 20),
    "docker:xlarge": ("xlarge", "docker", "linux", 40),
    "docker:2xlarge": ("2xlarge", "docker", "linux", 80),
    "machine:medium": ("medium", "machine", "linux", 10),
    "machine:large": ("large", "machine", "linux", 20),
    "machine:xlarge": ("xlarge", "machine", "linux", 100),
    "machine:2xlarge": ("2xlarge", "machine", "linux", 200),
    "machine:large.gen2": ("large.gen2", "machine", "linux", 36),
    "docker:medium.gen2": ("medium.gen2", "docker", "linux", 12),
    "gpu:medium.multi": ("gpu.nvidia.medium.multi", "machine", "linux", 240),
    "arm:medium": ("arm.medium", "machine", "linux", 10),
    "remote:medium": ("medium", "remote-docker", "linux", 10),
    "remote:large": ("large", "remote-docker", "linux", 20),
    "remote:xlarge": ("xlarge", "remote-docker", "linux", 100),
    "windows:medium": ("windows.medium", "machine", "windows", 40),
    "macos:m1.medium": ("macos.m1.medium.gen1", "macos", "macos", 150),
    "macos:m4pro.medium": ("m4pro.medium", "macos", "macos", 200),  # rate invented, see above
    "runner:gpu": ("{org}/gpu-runner", "runner", "linux", 0),
    "runner:hil": ("{org}/hil-bench", "runner", "linux", 0),
}


class _J(NamedTuple):
    """A job template: the stable character of a job across all its runs."""

    name: str
    rc: str
    median_s: int
    cpu: tuple[int, int]  # typical (median, max) CPU %
    ram: tuple[int, int]  # typical (median, max) RAM %
    par: int = 1
    sigma: float = 0.25
    fail: float = 0.02
    dlc: bool = False
    net: int = 0  # typical network credits of a run that moves data; self-hosted runners only
    storage: int = 0  # typical storage credits of a run that stores something; 0: the default
    ipranges: bool = False


# A class CircleCI retired -> (its successor, the first day rows use the successor). macOS M1/M2
# reached end of life on 2026-02-16 (circleci-data-facts.md §4); only m4pro.* remain.
_SUCCESSORS: dict[str, tuple[str, date]] = {
    "macos:m1.medium": ("macos:m4pro.medium", date(2026, 2, 16)),
}


class _W(NamedTuple):
    """A workflow template: stages run one after another, the jobs of a stage in parallel."""

    name: str
    stages: tuple[tuple[_J, ...], ...]
    delay: int = 0  # seconds after the pipeline's first workflow (setup -> continuation)


class _P(NamedTuple):
    """A pipeline definition. kind: push (any branch), main (default branch only), tag, schedule."""

    kind: str
    workflows: tuple[_W, ...]
    share: float = 0.0  # share of the project's triggered volume (push/main/tag)
    per_day: int = 0  # runs per day at the nominal 200 rows/day (schedule)


class _A(NamedTuple):
    """A project archetype. weight: its share of the org's triggered volume beside the others."""

    names: tuple[str, ...]
    eco: tuple[str, ...]  # dependabot ecosystems
    weight: float
    pipelines: tuple[_P, ...]


def _w(name: str, *stages: tuple[_J, ...], delay: int = 0) -> _W:
    """Shorthand for a workflow, its stages as positional arguments, to keep the catalogue flat."""
    return _W(name, tuple(stages), delay)


# fmt: off
# (The catalogue reads best as one job per line; the formatter would explode it.)
# Job templates are deliberately uneven: over-provisioned jobs (xlarge/2xlarge idling at 5-20 %
# CPU) and saturated ones (pinned at 100 % CPU or RAM) give right-sizing analysis real findings.
_ARCHETYPES: tuple[_A, ...] = (
    _A(
        ("web", "frontend", "dashboard", "web-app", "storefront"),
        ("npm_and_yarn", "github_actions"),
        1.4,
        (
            _P("push", (_w(
                "build-and-test",
                (_J("install-deps", "docker:medium", 75, (45, 90), (35, 60), storage=2),),
                (
                    _J("lint", "docker:small", 45, (85, 100), (50, 72), fail=0.04),
                    _J("unit-tests", "docker:medium+", 210, (70, 100), (55, 85), par=4, fail=0.06),
                    _J("build", "docker:large", 160, (88, 100), (60, 92)),
                ),
                (_J("e2e-tests", "docker:xlarge", 540, (18, 45), (20, 35), par=2, sigma=0.35,
                    fail=0.09),),
            ),), share=0.78),
            _P("main", (_w(
                "deploy",
                (_J("deploy-staging", "docker:small", 95, (30, 70), (25, 40)),),
                (_J("smoke-tests", "docker:medium", 60, (40, 80), (30, 50), fail=0.03),),
                (_J("deploy-production", "docker:small", 110, (30, 65), (25, 40),
                    ipranges=True),),
            ),), share=0.18),
            _P("tag", (_w(
                "release",
                (_J("build", "docker:large", 160, (88, 100), (60, 92)),),
                (_J("publish-npm", "docker:small", 40, (25, 60), (20, 35)),),
            ),), share=0.04),
            _P("schedule", (_w(
                "nightly-e2e",
                (_J("e2e-full", "docker:xlarge", 1500, (22, 55), (25, 40), par=4, sigma=0.2,
                    fail=0.12),),
                (_J("notify", "docker:small", 7, (5, 20), (5, 10), sigma=0.3, fail=0.0),),
            ),), per_day=1),
        ),
    ),
    _A(
        ("api", "backend", "core-api", "platform-api", "billing-service"),
        ("pip", "docker"),
        1.5,
        (
            _P("push", (_w(
                "test-and-build",
                (
                    _J("lint", "docker:small", 35, (80, 100), (40, 60), fail=0.03),
                    _J("typecheck", "docker:medium", 80, (95, 100), (85, 99), fail=0.04),
                ),
                (
                    _J("unit-tests", "docker:xlarge", 380, (12, 30), (15, 25), par=2, fail=0.05),
                    _J("integration-tests", "machine:xlarge", 620, (30, 100), (20, 55), par=3,
                       sigma=0.3, fail=0.08),
                ),
                (_J("build-image", "remote:medium", 260, (40, 90), (30, 60)),),
            ),), share=0.82),
            _P("main", (_w(
                "deploy",
                (_J("push-image", "remote:medium", 150, (30, 80), (25, 45)),),
                (_J("deploy-prod", "docker:small", 80, (25, 60), (20, 35), fail=0.02,
                    ipranges=True),),
            ),), share=0.18),
            _P("schedule", (_w(
                "nightly-security",
                (
                    _J("dependency-audit", "docker:small", 50, (60, 95), (30, 50), fail=0.1),
                    _J("container-scan", "docker:medium", 210, (45, 85), (50, 75), fail=0.05),
                ),
            ),), per_day=1),
        ),
    ),
    _A(
        ("mobile", "mobile-app", "ios-app", "companion-app"),
        ("bundler", "gradle"),
        1.0,
        (
            _P("push", (
                _w(
                    "ios",
                    (_J("build-ios", "macos:m1.medium", 840, (78, 100), (70, 95), sigma=0.2,
                        storage=4),),
                    (_J("test-ios", "macos:m1.medium", 1260, (60, 100), (65, 90), fail=0.07),),
                ),
                _w(
                    "android",
                    (_J("build-android", "docker:large", 610, (92, 100), (94, 100), fail=0.03,
                        storage=3),),
                    (_J("test-android", "machine:xlarge", 900, (50, 95), (60, 85), fail=0.06),),
                ),
            ), share=1.0),
            _P("schedule", (_w(
                "beta-distribution",
                (_J("archive-ios", "macos:m1.medium", 1100, (80, 100), (70, 92), storage=6),),
                (_J("upload-testflight", "docker:small", 120, (10, 30), (15, 25)),),
            ),), per_day=1),
        ),
    ),
    _A(
        ("desktop", "desktop-client", "windows-agent"),
        ("nuget", "github_actions"),
        0.7,
        (
            _P("push", (_w(
                "build-windows",
                (_J("build-windows", "windows:medium", 700, (82, 100), (55, 80), sigma=0.2),),
                (_J("test-windows", "windows:medium", 950, (45, 98), (30, 60), par=2, fail=0.08),),
                (_J("package-installer", "windows:medium", 320, (35, 70), (25, 40)),),
                (_J("sign-installer", "docker:small", 45, (10, 25), (10, 20), ipranges=True),),
            ),), share=0.95),
            _P("tag", (_w(
                "release",
                (_J("build-windows", "windows:medium", 700, (82, 100), (55, 80)),),
                (_J("publish-release", "docker:small", 60, (10, 30), (10, 20)),),
            ),), share=0.05),
        ),
    ),
    _A(
        ("infra", "terraform", "infrastructure", "platform-infra"),
        ("terraform", "github_actions"),
        0.8,
        (
            _P("push", (_w(
                "plan",
                (
                    _J("fmt-check", "docker:small", 9, (20, 40), (10, 15), sigma=0.2, fail=0.05),
                    _J("validate", "docker:small", 22, (30, 60), (15, 25), fail=0.04),
                ),
                (_J("plan", "docker:large", 100, (8, 25), (12, 20), fail=0.05, ipranges=True),),
            ),), share=0.8),
            _P("main", (_w(
                "apply",
                (_J("plan", "docker:large", 100, (8, 25), (12, 20), ipranges=True),),
                (_J("apply", "docker:small", 180, (15, 35), (20, 30), sigma=0.4, fail=0.04,
                    ipranges=True),),
            ),), share=0.2),
            _P("schedule", (_w(
                "drift-detection",
                (_J("drift-check", "docker:large", 110, (8, 22), (12, 18), fail=0.06,
                    ipranges=True),),
            ),), per_day=4),
        ),
    ),
    _A(
        ("docs", "documentation", "developer-portal", "handbook"),
        ("npm_and_yarn",),
        0.6,
        (
            _P("push", (_w(
                "docs",
                (_J("build-docs", "docker:small", 130, (97, 100), (88, 100), fail=0.03),),
                (_J("link-check", "docker:small", 55, (20, 45), (15, 25), fail=0.1),),
                (_J("deploy-preview", "docker:small", 12, (20, 40), (10, 20), sigma=0.3),),
            ),), share=1.0),
        ),
    ),
    _A(
        ("ml-models", "data-pipeline", "recommender", "forecasting"),
        ("pip",),
        0.8,
        (
            _P("push", (_w(
                "ci",
                (_J("unit-tests", "docker:2xlarge", 240, (6, 20), (9, 18), fail=0.05),),
                (_J("train-smoke", "runner:gpu", 900, (0, 0), (0, 0), sigma=0.3, fail=0.06,
                    net=20, storage=20),),
            ),), share=1.0),
            _P("schedule", (_w(
                "nightly-training",
                (_J("prepare-data", "docker:xlarge", 700, (96, 100), (90, 100),
                    storage=8),),
                (
                    _J("train-model", "runner:gpu", 3600, (0, 0), (0, 0), sigma=0.3, fail=0.05,
                       net=60, storage=120),
                    _J("benchmark-gpu", "gpu:medium.multi", 900, (40, 85), (20, 45), sigma=0.3,
                       fail=0.05, dlc=True),
                ),
                (_J("evaluate", "machine:2xlarge", 600, (25, 60), (30, 55), dlc=True,
                    storage=60),),
            ),), per_day=1),
        ),
    ),
    _A(
        ("sdk-python", "client-library", "sdk", "cli"),
        ("pip", "github_actions"),
        0.9,
        (
            _P("push", (_w(
                "test-matrix",
                (
                    _J("test-py311", "docker:medium", 150, (75, 100), (30, 55), fail=0.03),
                    _J("test-py312", "docker:medium", 145, (75, 100), (30, 55), fail=0.03),
                    _J("test-py313", "docker:medium.gen2", 150, (75, 100), (30, 55), fail=0.05),
                    _J("test-arm64", "arm:medium", 170, (70, 100), (30, 50), fail=0.04),
                ),
                (_J("coverage-report", "docker:small", 11, (30, 60), (15, 25), sigma=0.3),),
            ),), share=0.9),
            _P("tag", (_w(
                "release",
                (_J("build-wheels", "machine:large", 300, (85, 100), (40, 65), par=3, dlc=True),),
                (_J("publish-pypi", "docker:small", 30, (15, 35), (10, 20)),),
            ),), share=0.1),
        ),
    ),
    _A(
        ("monorepo", "platform", "services"),
        ("go_modules", "npm_and_yarn", "docker"),
        1.3,
        (
            _P("push", (
                _w("setup", (_J("setup", "docker:small", 14, (25, 60), (10, 20), sigma=0.3),)),
                _w(
                    "build-services",
                    (
                        _J("build-auth", "docker:medium+", 190, (80, 100), (40, 70)),
                        _J("build-gateway", "docker:medium+", 170, (80, 100), (40, 70)),
                        _J("build-worker", "docker:medium", 220, (90, 100), (70, 96)),
                        _J("build-ui", "docker:large", 260, (85, 100), (75, 98), storage=2),
                    ),
                    (_J("test-all", "docker:xlarge", 480, (90, 100), (60, 90), par=6, fail=0.07),),
                    (_J("docker-publish", "remote:xlarge", 300, (30, 80), (25, 50)),),
                    delay=25,
                ),
            ), share=1.0),
        ),
    ),
    _A(
        ("firmware", "embedded", "hardware-tests"),
        ("gitsubmodule", "github_actions"),
        0.5,
        (
            _P("push", (_w(
                "firmware",
                (_J("compile", "machine:large.gen2", 300, (95, 100), (45, 70), sigma=0.2),),
                (_J("hil-tests", "runner:hil", 1200, (0, 0), (0, 0), sigma=0.3, fail=0.1, net=10),),
                (_J("flash-report", "docker:small", 20, (10, 30), (10, 20)),),
            ),), share=1.0),
        ),
    ),
)

_ORG_WORDS_A = (
    "acme", "northwind", "bluefin", "quantum", "lumen", "orbit", "cobalt", "granite", "pixel",
    "tidal", "ember", "summit", "vector", "maple", "falcon", "nimbus", "copper", "harbor",
    "aurora", "zenith", "polar", "crimson", "delta", "silverline", "redwood", "kestrel",
    "meridian", "onyx", "prism", "sable", "tundra", "willow", "atlas", "beacon", "cinder",
    "drift", "evergreen", "fjord", "glacier", "helix",
)
_ORG_WORDS_B = (
    "labs", "systems", "ai", "io", "robotics", "cloud", "health", "pay", "data", "works",
    "software", "tech", "analytics", "games", "security", "mobility", "bio", "energy", "media",
    "logistics", "finance", "devices", "networks", "studio", "hq",
)
_PEOPLE = (
    "alice", "bob", "carolina", "dmitri", "emeka", "fatima", "gwen", "hiro", "ines", "jamal",
    "kai", "lena", "mateo", "nadia", "oscar", "priya", "quinn", "rafael", "sana", "tomas",
    "uma", "viktor", "wei", "ximena", "yusuf", "zoe",
)
_TOPICS = (
    "login", "cache", "retry", "billing", "search", "onboarding", "metrics", "auth", "export",
    "upload", "pagination", "timeouts", "dark-mode", "webhooks", "rate-limit", "i18n", "logging",
    "migrations", "perf", "flaky-test", "refactor", "api-v2", "sso", "settings", "reports",
)
_DEP_PACKAGES: dict[str, tuple[str, ...]] = {
    "npm_and_yarn": ("eslint", "webpack", "typescript", "react-dom", "jest", "axios", "vite"),
    "pip": ("requests", "pydantic", "numpy", "pytest", "boto3", "sqlalchemy", "fastapi"),
    "docker": ("python", "node", "alpine", "golang"),
    "go_modules": ("golang.org/x/net", "github.com/stretchr/testify", "google.golang.org/grpc"),
    "bundler": ("fastlane", "cocoapods", "rubocop"),
    "gradle": ("com.android.tools.build-gradle", "org.jetbrains.kotlin-kotlin-stdlib"),
    "nuget": ("Newtonsoft.Json", "xunit", "Serilog"),
    "terraform": ("hashicorp/aws", "hashicorp/google", "hashicorp/kubernetes"),
    "github_actions": ("actions/checkout", "actions/cache", "docker/login-action"),
    "gitsubmodule": ("vendor/cmsis", "vendor/freertos"),
}

# UTC offsets of the orgs' home time zones; the hour-of-day profile is defined in local time.
_TIME_ZONES = (-8, -7, -6, -5, -4, -3, 0, 1, 2, 3, 5, 8, 9)
_LOCAL_HOUR_WEIGHT = (
    0.04, 0.04, 0.04, 0.04, 0.04, 0.04, 0.06, 0.25, 0.6, 1.0, 1.0, 1.0,
    0.75, 1.0, 1.0, 1.0, 1.0, 0.8, 0.5, 0.3, 0.18, 0.18, 0.15, 0.08,
)

# fmt: on
