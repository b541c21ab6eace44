"""`iska`: the package's one console script (`iska --help` lists the commands)."""

from __future__ import annotations

import argparse
import sys

from dotenv import load_dotenv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iska", description="ISKA: daily SMS weather forecasts.")
    commands = parser.add_subparsers(dest="command", required=True)

    api = commands.add_parser("api", help="serve the ISKA HTTP API (default 127.0.0.1:8000)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)

    simulator = commands.add_parser(
        "simulator", help="serve the billing and SMS gateway simulator (default 127.0.0.1:8010)")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=8010)
    return parser


def main(argv: list[str] | None = None) -> int:
    load_dotenv(".env", override=False)
    args = build_parser().parse_args(argv)
    if args.command == "api":
        from iska_pipelines.api.server import serve
    else:
        from iska_pipelines.simulator.server import serve
    return serve(host=args.host, port=args.port) or 0


if __name__ == "__main__":
    sys.exit(main())
