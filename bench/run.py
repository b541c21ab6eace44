"""`python -m bench [--quick | --scale S] [--repeats N] [--out docs/benchmarks.md]`.

Generates the data, runs every measurement with its reference, writes the markdown table.
PostgreSQL comes from ISKA_BENCH_DATABASE_URL (an admin URL; a throwaway database is created
and dropped per measurement); SQLite files live in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench import additions, forecasts, gateways, outbox, report, sensor
from bench.measure import ROOT
from bench.sizes import FULL, QUICK, Sizes

SECTIONS = ("forecasts", "additions", "gateways", "outbox", "sensor")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes /10, one repetition (CI)")
    parser.add_argument("--scale", type=float, help="sizes as a fraction of the full run")
    parser.add_argument("--repeats", type=int, help="repetitions per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    parser.add_argument(
        "--gateway-part",
        choices=("billing", "sms", "kannel"),
        action="append",
        help="with the gateways section: only these parts",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite rows")
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run the measured steps in this process (smoke tests; memory not isolated)",
    )
    parser.add_argument("--workdir", type=Path, help="keep generated files here (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        scale=args.scale if args.scale is not None else base.scale, repeats=args.repeats or base.repeats
    )
    mode = "quick" if args.quick else ("full" if sizes.scale == 1 else f"scale {sizes.scale:g}")
    sections = args.only or list(SECTIONS)
    if args.inline:
        os.environ["BENCH_INLINE"] = "1"
    started, clock = report.started_now(), time.monotonic()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="iska-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    lines = []
    try:
        for section in sections:
            print(f"[bench] {section} ...", file=sys.stderr, flush=True)
            section_clock = time.monotonic()
            if section == "forecasts":
                lines += forecasts.measure(sizes, work, sqlite=not args.no_sqlite)
            elif section == "additions":
                grid = work / "files" / "forecasts_day1.csv"
                if not grid.exists():
                    from bench import data

                    data.write_forecasts(grid, data.forecast_grid(sizes.grid))
                lines += additions.measure(sizes, work, grid, sqlite=not args.no_sqlite)
            elif section == "gateways":
                lines += gateways.measure(sizes, work, partial(_wanted, args.gateway_part))
            elif section == "outbox":
                lines += outbox.measure(sizes, work)
            elif section == "sensor":
                lines += sensor.measure(sizes, work)
            print(
                f"[bench] {section} done in {time.monotonic() - section_clock:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            print(report.table(lines), file=sys.stderr, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report.write(args.out, lines, mode, started, time.monotonic() - clock)
    print(report.table(lines))
    print(f"[bench] wrote {args.out}", file=sys.stderr)
    return 0


def _wanted(parts: list[str] | None, part: str) -> bool:
    """`--gateway-part` given: only those parts; none given: every part."""
    return not parts or part in parts
