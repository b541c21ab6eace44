"""`iska status`, `iska files` and `iska rerun` (SPEC §16) against a seeded database."""

from __future__ import annotations

import json

import pytest

from iska_pipelines.cli import main
from iska_pipelines.lib.tasks.reruns import job_for_partition
from iska_pipelines_tests.health_world import REFUSAL, seed_day
from iska_pipelines_tests.test_api_health import free_port


@pytest.fixture
def operator_env(monkeypatch, tmp_path, database_url, data_dir):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for name in ("ISKA_API_TOKEN", "ISKA_TIMEZONE", "ISKA_SMS_HOUR", "ISKA_MIN_DELIVERY_RATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ISKA_DATABASE_URL", database_url)
    monkeypatch.setenv("ISKA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("ISKA_DAGSTER_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens


def test_status_prints_todays_figures_and_fails_on_an_error_check(operator_env, engine, capsys):
    seed_day(engine)
    assert main(["status"]) == 1  # the delivery rate and billing checks fail
    out = capsys.readouterr().out
    assert "planned 20  sent 19  delivered 13  failed 4" in out
    assert "FAILED ERROR no_billing_transport_errors" in out and REFUSAL in out


def test_status_as_json_is_the_apis_status(operator_env, engine, capsys):
    seed_day(engine)
    main(["status", "--json"])
    assert json.loads(capsys.readouterr().out)["billing"]["charged"] == 4


def test_files_refused_lists_only_the_refused_with_their_reason(operator_env, engine, capsys):
    seed_day(engine)
    assert main(["files", "--refused"]) == 0
    out = capsys.readouterr().out
    assert "forecasts-forecasts_bad.csv-cccccccccc" in out and REFUSAL in out
    assert "unknown-notes.csv" in out and "forecasts_ghana" not in out


def test_rerun_names_the_webserver_it_could_not_reach(operator_env, capsys):
    assert main(["rerun", "2026-12-01"]) == 2
    assert "ISKA_DAGSTER_URL" in capsys.readouterr().err


def test_rerun_refuses_a_key_that_is_no_partition(operator_env, capsys):
    assert main(["rerun", "yesterday"]) == 2
    assert "neither a day" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key, job",
    [
        ("2026-12-01", "sms_job"),
        ("forecasts-grid.csv-0123456789", "ingest_forecasts"),
        ("cancellations-d.csv-0123456789", "ingest_subscriptions"),
    ],
)
def test_each_partition_key_belongs_to_its_job(key, job):
    assert job_for_partition(key) == job
