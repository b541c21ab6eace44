"""docker-compose.yml against what the code expects: commands, ports, variables, mounts.

No Docker engine here: the file is parsed and every service is checked against the package's
own console scripts, settings and instance files.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iska_pipelines.cli import build_parser
from iska_pipelines.lib.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def settings_variables() -> set[str]:
    """Every environment variable the settings model reads."""
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def environment(service: str) -> dict:
    return SERVICES[service].get("environment", {})


def test_the_expected_services_exist_and_the_simulator_is_dev_only():
    assert {"postgres", "code", "webserver", "daemon", "api", "simulator"} <= set(SERVICES)
    assert SERVICES["simulator"]["profiles"] == ["dev"]
    assert all("profiles" not in SERVICES[s] for s in SERVICES if s != "simulator")


def test_postgres_has_a_healthcheck_a_volume_and_both_databases():
    postgres = SERVICES["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in postgres["volumes"])
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE dagster" in init and "CREATE DATABASE iska" in init
    assert environment("code")["DAGSTER_PG_DB"] == "dagster"
    assert environment("code")["ISKA_DATABASE_URL"].startswith("postgresql+psycopg2://")
    assert environment("code")["ISKA_DATABASE_URL"].endswith("/iska")


@pytest.mark.parametrize("service", ["code", "webserver", "daemon"])
def test_dagster_commands_exist_with_the_flags_used(service):
    command = SERVICES[service]["command"]
    executable = BIN / command[0]
    assert executable.exists(), f"{command[0]} is not installed by the package"
    subcommands = [part for part in command[1:] if not part.startswith("-")][:2]
    subcommands = [s for s in subcommands if s in {"code-server", "start", "run"}]
    help_text = subprocess.run(
        [str(executable), *subcommands, "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    for flag in (part for part in command if part.startswith("--")):
        assert flag in help_text, f"{service}: {flag} is not an option of {' '.join(command[:3])}"


def test_the_code_server_serves_the_location_the_workspace_names():
    command = SERVICES["code"]["command"]
    assert command[command.index("--location-name") + 1] == "iska_pipelines"
    assert command[command.index("--module-name") + 1] == "iska_pipelines.definitions"
    workspace = yaml.safe_load((ROOT / "deploy" / "workspace.yaml").read_text())
    grpc = workspace["load_from"][0]["grpc_server"]
    assert grpc["location_name"] == "iska_pipelines"
    assert grpc["host"] == {"env": "ISKA_CODE_SERVER_HOST"}
    assert grpc["port"] == {"env": "ISKA_CODE_SERVER_PORT"}
    for service in ("webserver", "daemon"):
        assert environment(service)["ISKA_CODE_SERVER_HOST"] == "code"
        assert environment(service)["ISKA_CODE_SERVER_PORT"] == command[command.index("--port") + 1]


@pytest.mark.parametrize("service", ["webserver", "daemon"])
def test_webserver_and_daemon_read_the_workspace_the_image_ships(service):
    command = SERVICES[service]["command"]
    path = command[command.index("--workspace") + 1]
    assert path == "/opt/dagster/home/workspace.yaml"
    assert "COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/" in DOCKERFILE
    assert environment(service)["DAGSTER_HOME"] == "/opt/dagster/home"


def test_the_instance_config_in_the_image_keeps_dagster_in_postgres_from_the_pg_variables():
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    postgres_db = config["storage"]["postgres"]["postgres_db"]
    variables = {v["env"] for v in postgres_db.values() if isinstance(v, dict)}
    assert variables == {
        "DAGSTER_PG_USERNAME",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_DB",
        "DAGSTER_PG_PORT",
    }
    assert variables <= set(environment("daemon"))
    assert postgres_db["scheme"] == "postgresql+psycopg2"
    assert config["run_retries"]["enabled"] and config["run_monitoring"]["enabled"]
    local = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert "storage" not in local
    assert config["concurrency"] == local["concurrency"]


@pytest.mark.parametrize("service, port", [("api", 8000), ("simulator", 8010)])
def test_iska_commands_parse_and_publish_their_port(service, port):
    command = SERVICES[service]["command"]
    assert command[0] == "iska" and (BIN / "iska").exists()
    args = build_parser().parse_args(command[1:])
    assert args.port == port and args.host == "0.0.0.0"
    assert f"{port}:{port}" in SERVICES[service]["ports"]


def test_dagsters_instance_is_created_once_before_every_process_that_opens_it_starts():
    """Processes creating the instance's storage at the same moment can fail (Alembic's "more
    than one head"): `dagster-init` creates it alone, runs once, and the others wait for it."""
    init = SERVICES["dagster-init"]
    assert build_parser().parse_args(init["command"][1:]).command == "init-instance"
    assert init["command"][0] == "iska" and init["restart"] == "no"
    assert environment("dagster-init")["DAGSTER_HOME"] == environment("daemon")["DAGSTER_HOME"]
    for service in ("code", "webserver", "daemon", "api"):
        after = SERVICES[service]["depends_on"]
        assert after["dagster-init"] == {"condition": "service_completed_successfully"}, service
        assert after["postgres"] == {"condition": "service_healthy"}, service


def test_the_webserver_publishes_the_ui_port():
    command = SERVICES["webserver"]["command"]
    port = command[command.index("--port") + 1]
    assert f"{port}:{port}" in SERVICES["webserver"]["ports"] and port == "3000"


def test_every_iska_variable_in_the_compose_file_is_one_the_code_reads():
    known = settings_variables() | {"ISKA_CODE_SERVER_HOST", "ISKA_CODE_SERVER_PORT"}
    for name in SERVICES:
        for variable in environment(name):
            if variable.startswith(("ISKA_", "BILLING_", "SMS_", "MAX_")) or variable in {
                "SELF_CALLBACK",
                "TASK_TIMEOUT",
            }:
                assert variable in known, f"{name}: {variable} is not read by iska_pipelines"


def test_every_setting_is_passed_to_the_processes_that_run_jobs():
    missing = settings_variables() - set(environment("code")) - {"ISKA_API_TOKEN"}
    assert not missing, f"not passed to the code server: {sorted(missing)}"
    assert "ISKA_API_TOKEN" in environment("api")


@pytest.mark.parametrize("service", ["code", "daemon", "api"])
def test_the_data_volume_is_mounted_where_runs_and_uploads_use_it(service):
    data_dir = environment(service)["ISKA_DATA_DIR"]
    assert f"iska-data:{data_dir}" in SERVICES[service]["volumes"]
    assert "iska-data" in COMPOSE["volumes"]


def test_the_image_runs_as_a_non_root_user():
    assert re.search(r"^USER\s+(?!root)\w+", DOCKERFILE, re.MULTILINE)
