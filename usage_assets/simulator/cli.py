"""`usage-api-simulator`: serve the simulated CircleCI Usage API on a loopback port."""

from __future__ import annotations

import argparse
from datetime import timedelta

from usage_assets.simulator.parts import FILE_DIALECTS
from usage_assets.simulator.server import SimulatorServer
from usage_assets.simulator.settings import (
    DEFAULT_ORG_ID,
    DEFAULT_SHARED_ORG_ID,
    DEFAULT_TOKEN,
    Faults,
    SimulatorSettings,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="usage-api-simulator",
        description="A local stand-in for CircleCI's Usage API (synthetic data, real HTTP).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8787, help="port; 0 picks a free one (default %(default)s)"
    )
    parser.add_argument(
        "--token",
        action="append",
        help=f"accepted Circle-Token (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument(
        "--org-id",
        action="append",
        help="known organization UUID (repeatable; default: the demo org and its shared org)",
    )
    parser.add_argument(
        "--seed", type=int, default=20240601, help="data seed (default %(default)s)"
    )
    parser.add_argument(
        "--rows-per-day", type=int, default=200, help="mean job runs per org per weekday"
    )
    parser.add_argument("--rows-per-part", type=int, default=2000, help="rows per gzip CSV part")
    parser.add_argument(
        "--processing-seconds", type=float, default=3.0, help="POST -> completed time"
    )
    parser.add_argument(
        "--created-seconds",
        type=float,
        default=0.0,
        help="how long GETs still report `created` before `processing` (default %(default)s: "
        "at once, as CircleCI's own export script expects)",
    )
    parser.add_argument(
        "--url-lifetime-hours", type=float, default=36.0, help="pre-signed link lifetime"
    )
    parser.add_argument("--post-quota", type=int, default=10, help="POSTs per org per quota window")
    parser.add_argument(
        "--post-quota-window-hours", type=float, default=24.0, help="POST quota window"
    )
    parser.add_argument("--get-limit", type=int, default=60, help="GETs per org per GET window")
    parser.add_argument(
        "--get-limit-window-seconds", type=float, default=60.0, help="GET limit window"
    )
    parser.add_argument(
        "--file-dialect",
        choices=FILE_DIALECTS,
        default="2024",
        help="part files as in 2024 (unquoted, \\\\N nulls) or 2026 (every field quoted, empty "
        "nulls); default %(default)s",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    for name in ("rows_per_part", "post_quota", "get_limit"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("rows_per_day", "processing_seconds", "created_seconds"):
        if getattr(args, name) < 0:
            raise SystemExit(f"--{name.replace('_', '-')} must not be negative")
    return SimulatorSettings(
        tokens=frozenset(args.token or [DEFAULT_TOKEN]),
        org_ids=frozenset(args.org_id or [DEFAULT_ORG_ID, DEFAULT_SHARED_ORG_ID]),
        seed=args.seed,
        rows_per_day=args.rows_per_day,
        rows_per_part=args.rows_per_part,
        processing_time=timedelta(seconds=args.processing_seconds),
        created_phase=timedelta(seconds=args.created_seconds),
        url_lifetime=timedelta(hours=args.url_lifetime_hours),
        post_quota=args.post_quota,
        post_quota_window=timedelta(hours=args.post_quota_window_hours),
        get_limit=args.get_limit,
        get_limit_window=timedelta(seconds=args.get_limit_window_seconds),
        faults=Faults(file_dialect=args.file_dialect),
    )


def banner(server: SimulatorServer) -> str:
    """What the console script prints at start-up: everything the README's curl lines need.

    The tokens are printed because they open only this simulator's synthetic data; a real
    CircleCI token is never given to it."""
    settings = server.settings
    return "\n".join(
        [
            f"CircleCI Usage API simulator on {server.base_url}",
            f"  CIRCLECI_API_URL={server.base_url}",
            f"  token (Circle-Token header): {', '.join(sorted(settings.tokens))}",
            f"  organizations: {', '.join(sorted(settings.org_ids))}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    server = SimulatorServer(settings_from_args(args), host=args.host, port=args.port)
    print(banner(server), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
