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
        "simulator", help="serve the billing and SMS gateway simulator (default 127.0.0.1:8010)"
    )
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--port", type=int, default=8010)

    status = commands.add_parser(
        "status", help="today's SMS, billing, grid age, checks and last files (exit 1: an ERROR check fails)"
    )
    status.add_argument("--json", action="store_true", help="the same as the API's /status")
    files = commands.add_parser("files", help="the last files taken and what became of them")
    files.add_argument("--refused", action="store_true", help="only files refused as a whole")
    files.add_argument("--limit", type=int, default=20)
    rerun = commands.add_parser(
        "rerun", help="run a partition again through Dagster: a day (sms_job) or a file's key"
    )
    rerun.add_argument("partition_key")
    commands.add_parser(
        "gateways", help="each region's SMS gateways and the URLs to set in them (inbound SMS, reports)"
    )
    commands.add_parser(
        "init-instance",
        help="create Dagster's instance storage in DAGSTER_HOME, once, before Dagster and the API "
        "start (make run and the compose file do)",
    )
    consent = commands.add_parser("consent", help="the consent log (SPEC §13)")
    consent_commands = consent.add_subparsers(dest="consent_command", required=True)
    consent_commands.add_parser(
        "verify", help="check the whole hash chain; names the first broken row (exit 1)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    load_dotenv(".env", override=False)
    args = build_parser().parse_args(argv)
    if args.command in OPERATOR_COMMANDS:
        return operator_command(args)
    if args.command == "init-instance":
        from iska_pipelines.dagster_instance import init_instance_command

        return init_instance_command()
    if args.command == "api":
        from iska_pipelines.api.server import serve
    else:
        from iska_pipelines.simulator.server import serve
    return serve(host=args.host, port=args.port) or 0


OPERATOR_COMMANDS = ("status", "files", "rerun", "consent", "gateways")


def operator_command(args: argparse.Namespace) -> int:
    from iska_pipelines import operator_cli
    from iska_pipelines.lib.settings import ConfigurationError, Settings

    try:
        settings = Settings.from_env()
    except ConfigurationError as error:
        print(f"iska {args.command}: {error}", file=sys.stderr)
        return 2
    if args.command == "status":
        return operator_cli.status(settings, args.json)
    if args.command == "files":
        return operator_cli.files(settings, args.refused, args.limit)
    if args.command == "consent":
        return operator_cli.consent_verify(settings)
    if args.command == "gateways":
        return operator_cli.gateways(settings)
    return operator_cli.rerun(settings, args.partition_key)


if __name__ == "__main__":
    sys.exit(main())
