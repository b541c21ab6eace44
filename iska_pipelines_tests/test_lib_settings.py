"""The settings model (SPEC §10): its names and defaults are the documented ones, a bad value
names its variable, and every consumer takes its default and its time zone from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from iska_pipelines.lib.settings import DEFAULTS, ConfigurationError, Settings

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = {field.alias for field in Settings.model_fields.values()}


def test_every_variable_is_documented():
    documented = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(name for name in VARIABLES if f"`{name}`" not in documented)
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_the_example_file_shows_the_defaults():
    example = {
        name: value for name, value in dotenv_values(ROOT / ".env-example").items() if value is not None
    }
    assert set(example) <= VARIABLES
    del example["BILLING_TOKEN"]  # no default: the example shows the simulator's token
    assert Settings.from_env(example) == DEFAULTS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ISKA_SMS_HOUR", "25"),
        ("ISKA_SENSOR_INTERVAL_SECONDS", "0"),
        ("ISKA_MAX_REJECT_FRACTION", "1.5"),
        ("ISKA_HTTP_TRIES", "four"),
        ("ISKA_TIMEZONE", "Mars/Olympus"),
        ("BILLING_URL", "ftp://billing"),
        ("SMS_URLS", "http://127.0.0.1:8010/sms/a,ftp://b"),
        ("SMS_URLS", " , "),
        ("ISKA_BILLING_CRON", "0 * *"),
        ("SELF_CALLBACK", "maybe"),
        ("ISKA_SMS_TEMPLATE", "Rain {fcat72}"),
        ("ISKA_SMS_EXECUTOR", "dask"),
        ("ISKA_CELERY_WORKERS", "0"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_the_variable(name, value):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})


def test_the_process_environment_is_read_the_same_way(monkeypatch):
    monkeypatch.setenv("ISKA_SMS_HOUR", "7")
    monkeypatch.setenv("SMS_URLS", "http://a.example/sms, https://b.example/sms")
    settings = Settings.from_env()
    assert settings.sms_hour == 7
    assert settings.sms_urls == ("http://a.example/sms", "https://b.example/sms")
    monkeypatch.setenv("ISKA_SMS_HOUR", "24")
    with pytest.raises(ConfigurationError, match="ISKA_SMS_HOUR"):
        Settings.from_env()


def test_blank_is_unset_and_derived_defaults_follow_their_source(tmp_path):
    settings = Settings.from_env(
        {
            "ISKA_TIMEZONE": "  ",
            "ISKA_API_TOKEN": "",
            "BILLING_TOKEN": " t0k ",
            "ISKA_DATA_DIR": str(tmp_path),
            "ISKA_PUBLIC_URL": "http://api.example/",
        }
    )
    assert settings.timezone == DEFAULTS.timezone
    assert settings.api_token is None
    assert (settings.billing_token, settings.sms_token) == ("t0k", "t0k")
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'iska.sqlite3'}"
    assert settings.public_url == "http://api.example"
    assert Settings.from_env({"BILLING_TOKEN": "a", "SMS_TOKEN": "b"}).sms_token == "b"


def test_rules_and_schedules_share_one_time_zone_and_the_model_defaults():
    from iska_pipelines.defs.billing.resources import BillingPolicy
    from iska_pipelines.defs.billing.schedules import billing_schedule
    from iska_pipelines.defs.resources import SETTINGS, IskaRules
    from iska_pipelines.defs.sms.partitions import sms_days
    from iska_pipelines.defs.sms.resources import SmsOutbox
    from iska_pipelines.lib.inbox.ingest import IngestRules

    zones = {
        IskaRules().ingest_rules().timezone,
        BillingPolicy().rules(1).timezone,
        sms_days.timezone,
        billing_schedule.execution_timezone,
    }
    assert zones == {SETTINGS.timezone}
    assert IngestRules().max_grid_distance_km == DEFAULTS.max_grid_distance_km
    assert SmsOutbox().batch_size == DEFAULTS.sms_batch_size


def test_celery_without_a_broker_fails_fast_naming_the_variable():
    with pytest.raises(ConfigurationError, match="ISKA_CELERY_BROKER_URL"):
        Settings.from_env({"ISKA_SMS_EXECUTOR": "celery"})
    settings = Settings.from_env({"ISKA_SMS_EXECUTOR": "celery", "ISKA_CELERY_BROKER_URL": "pyamqp://b//"})
    assert settings.sms_executor == "celery"
