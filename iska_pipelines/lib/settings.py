"""Environment -> typed settings, validated once; every knob has a default.

Bad values fail fast with a message naming the variable, so an operator knows what to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _raw(env: dict[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(env: dict[str, str], name: str, default: float, minimum: float = 0.0,
              maximum: float | None = None) -> float:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigurationError(f"{name} must be {bound}, got {value}")
    return value


def env_bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = _raw(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def env_timezone(env: dict[str, str], name: str, default: str) -> str:
    value = _raw(env, name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{name} is not a known time zone: {value!r}") from None
    return value


def env_url(env: dict[str, str], name: str, default: str) -> str:
    value = _raw(env, name) or default
    if not value.startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


def env_cron(env: dict[str, str], name: str, default: str) -> str:
    """Five cron fields; Dagster checks the rest when it loads the schedule."""
    value = _raw(env, name) or default
    if len(value.split()) != 5:
        raise ConfigurationError(f"{name} must be a cron expression of five fields, got {value!r}")
    return value


DEFAULT_SMS_URLS = ("http://127.0.0.1:8010/sms/a", "http://127.0.0.1:8010/sms/b",
                    "http://127.0.0.1:8010/sms/c")
DEFAULT_SMS_TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"
# for development only: anyone who knows it can forge delivery reports (see .env-example)
DEV_CALLBACK_SECRET = "iska-dev-callback-secret"


def env_urls(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of http(s) URLs, in order."""
    raw = _raw(env, name)
    if raw is None:
        return default
    urls = tuple(url.strip() for url in raw.split(",") if url.strip())
    if not urls:
        raise ConfigurationError(f"{name} must list at least one URL, got {raw!r}")
    for url in urls:
        env_url({name: url}, name, url)
    return urls


def env_hour(env: dict[str, str], name: str, default: int) -> int:
    value = env_int(env, name, default)
    if value > 23:
        raise ConfigurationError(f"{name} must be an hour from 0 to 23, got {value}")
    return value


def env_sms_template(env: dict[str, str], name: str, default: str) -> str:
    """The template must fit one GSM-7 SMS with any values (checked at start-up)."""
    from iska_pipelines.lib.sms.text import validate_template  # sms.text imports this module

    value = env.get(name)
    template = default if value is None or value.strip() == "" else value.strip()
    return validate_template(template, name)


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'iska.sqlite3').resolve()}"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    timezone: str = "Africa/Accra"
    sensor_interval_seconds: int = 15
    file_settle_seconds: float = 5.0
    max_reject_fraction: float = 0.2
    max_future_minutes: int = 60
    max_grid_distance_km: float = 50.0
    forecast_max_age_hours: float = 30.0
    max_task_retry: int = 3
    # billing (SPEC §6)
    billing_url: str = "http://127.0.0.1:8010/billing"
    billing_token: str = ""
    max_billing_try_limit: int = 5
    billing_retry_minutes: int = 60
    billing_cron: str = "0 * * * *"
    http_concurrency: int = 32
    http_timeout_seconds: float = 10.0
    http_tries: int = 4
    max_retry_after_seconds: float = 300.0
    billing_max_tps: float = 0.0  # calls per second to BILLING_URL; 0: no cap
    # daily SMS and the HTTP API (SPEC §7, §8)
    sms_urls: tuple[str, ...] = DEFAULT_SMS_URLS
    sms_token: str = ""
    max_sms_try_limit: int = 5
    sms_hour: int = 5
    sms_latest_hour: int = 10
    sms_batch_size: int = 5000
    sms_max_tps: float = 0.0  # calls per second to each of SMS_URLS; 0: no cap
    sms_template: str = DEFAULT_SMS_TEMPLATE
    public_url: str = "http://127.0.0.1:8000"
    callback_secret: str = DEV_CALLBACK_SECRET
    self_callback: bool = False
    api_token: str | None = None
    # the API's uploads and task status (SPEC §8)
    max_upload_mb: int = 512
    task_timeout_seconds: int = 3600
    dagster_url: str = "http://127.0.0.1:3000"
    dagster_home: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_dir = Path(_raw(env, "ISKA_DATA_DIR") or "data")
        return cls(
            data_dir=data_dir,
            database_url=_raw(env, "ISKA_DATABASE_URL") or default_database_url(data_dir),
            timezone=env_timezone(env, "ISKA_TIMEZONE", "Africa/Accra"),
            sensor_interval_seconds=env_int(env, "ISKA_SENSOR_INTERVAL_SECONDS", 15, minimum=1),
            file_settle_seconds=env_float(env, "ISKA_FILE_SETTLE_SECONDS", 5.0),
            max_reject_fraction=env_float(env, "ISKA_MAX_REJECT_FRACTION", 0.2, 0.0, 1.0),
            max_future_minutes=env_int(env, "ISKA_MAX_FUTURE_MINUTES", 60),
            max_grid_distance_km=env_float(env, "ISKA_MAX_GRID_DISTANCE_KM", 50.0, minimum=0.001),
            forecast_max_age_hours=env_float(env, "ISKA_FORECAST_MAX_AGE_HOURS", 30.0, minimum=0.0),
            max_task_retry=env_int(env, "MAX_TASK_RETRY", 3),
            billing_url=env_url(env, "BILLING_URL", "http://127.0.0.1:8010/billing"),
            billing_token=_raw(env, "BILLING_TOKEN") or "",
            max_billing_try_limit=env_int(env, "MAX_BILLING_TRY_LIMIT", 5, minimum=1),
            billing_retry_minutes=env_int(env, "ISKA_BILLING_RETRY_MINUTES", 60),
            billing_cron=env_cron(env, "ISKA_BILLING_CRON", "0 * * * *"),
            http_concurrency=env_int(env, "ISKA_HTTP_CONCURRENCY", 32, minimum=1),
            http_timeout_seconds=env_float(env, "ISKA_HTTP_TIMEOUT_SECONDS", 10.0, minimum=0.01),
            http_tries=env_int(env, "ISKA_HTTP_TRIES", 4, minimum=1),
            max_retry_after_seconds=env_float(env, "ISKA_MAX_RETRY_AFTER_SECONDS", 300.0, minimum=0.0),
            billing_max_tps=env_float(env, "BILLING_MAX_TPS", 0.0),
            sms_urls=env_urls(env, "SMS_URLS", DEFAULT_SMS_URLS),
            sms_token=_raw(env, "SMS_TOKEN") or _raw(env, "BILLING_TOKEN") or "",
            max_sms_try_limit=env_int(env, "MAX_SMS_TRY_LIMIT", 5, minimum=1),
            sms_hour=env_hour(env, "ISKA_SMS_HOUR", 5),
            sms_latest_hour=env_hour(env, "ISKA_SMS_LATEST_HOUR", 10),
            sms_batch_size=env_int(env, "ISKA_SMS_BATCH_SIZE", 5000, minimum=1),
            sms_max_tps=env_float(env, "SMS_MAX_TPS", 0.0),
            sms_template=env_sms_template(env, "ISKA_SMS_TEMPLATE", DEFAULT_SMS_TEMPLATE),
            public_url=env_url(env, "ISKA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            callback_secret=_raw(env, "ISKA_CALLBACK_SECRET") or DEV_CALLBACK_SECRET,
            self_callback=env_bool(env, "SELF_CALLBACK", False),
            api_token=_raw(env, "ISKA_API_TOKEN"),
            max_upload_mb=env_int(env, "ISKA_MAX_UPLOAD_MB", 512, minimum=1),
            task_timeout_seconds=env_int(env, "TASK_TIMEOUT", 3600, minimum=1),
            dagster_url=env_url(env, "ISKA_DAGSTER_URL", "http://127.0.0.1:3000").rstrip("/"),
            dagster_home=_raw(env, "DAGSTER_HOME"),
        )
