"""Environment -> one typed settings model, validated once; every knob has its default here.

This class is the only place a variable's name, type, bounds and default are written (SPEC §10,
docs/configuration.md, .env-example). Everything else reads `Settings` (or `DEFAULTS`, the
values with an empty environment, for a default it needs before the environment is known).
Adding a setting is one field below plus its line in docs/configuration.md and .env-example.

Bad values fail fast with a `ConfigurationError` naming the variable, so an operator knows what
to fix. A blank value counts as unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, PrivateAttr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from iska_pipelines.lib.billing.prices import parse_price
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.regions.config import Gateway, Regions, load_regions, single_region
from iska_pipelines.lib.sms.languages import normalise
from iska_pipelines.lib.sms.templates import FIELDS, Catalog, build_catalog, check_fields

__all__ = ["DEFAULTS", "DEFAULT_SMS_TEMPLATE", "DEV_CALLBACK_SECRET", "ConfigurationError", "Settings"]

DEFAULT_SMS_URLS = (
    "http://127.0.0.1:8010/sms/a",
    "http://127.0.0.1:8010/sms/b",
    "http://127.0.0.1:8010/sms/c",
)
DEFAULT_BILLING_URL = "http://127.0.0.1:8010/billing"
# BILLING_PROTOCOL=momo without a BILLING_URL: the simulator's MoMo Collections
DEFAULT_MOMO_URL = "http://127.0.0.1:8010/collection/v1_0/requesttopay"
MOMO_PATH_END = "/requesttopay"
DEFAULT_SMS_TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"
# for development only: anyone who knows it can forge delivery reports (see .env-example)
DEV_CALLBACK_SECRET = "iska-dev-callback-secret"


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a known time zone") from None
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _cron(value: str) -> str:
    """Five cron fields; Dagster checks the rest when it loads the schedule."""
    if len(value.split()) != 5:
        raise ValueError("must be a cron expression of five fields")
    return value


def _url_list(value: Any) -> Any:
    """A comma-separated list of http(s) URLs, in order."""
    if isinstance(value, str):
        return tuple(url.strip() for url in value.split(",") if url.strip())
    return value


def _word_list(value: Any) -> Any:
    """Comma-separated words."""
    if isinstance(value, str):
        return tuple(word.strip() for word in value.split(",") if word.strip())
    return value


def _sms_template(value: str | None) -> str | None:
    """Its fields here; its length with the templates, in `Settings._texts_fit`."""
    if value is not None:
        check_fields(value, FIELDS["forecast"], "ISKA_SMS_TEMPLATE")
    return value


def _price(value: str) -> str:
    parse_price(value)
    return " ".join(value.split())


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
BaseUrl = Annotated[HttpUrl, AfterValidator(lambda url: url.rstrip("/"))]
HttpUrls = Annotated[tuple[HttpUrl, ...], NoDecode, BeforeValidator(_url_list), Field(min_length=1)]
Hour = Annotated[int, Field(ge=0, le=23)]
PriceText = Annotated[str, AfterValidator(_price)]


def describe(error: ValidationError) -> str:
    """The first problem, led by the variable's name (the field's alias)."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigurationError):
        return str(cause)  # already names the variable
    name, message = first["loc"][0] if first["loc"] else "settings", first["msg"]
    if message.startswith("Value error, "):
        problem = " " + message.removeprefix("Value error, ")
    else:
        problem = ": " + message[:1].lower() + message[1:]
    return f"{name}{problem}, got {first['input']!r}"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'iska.sqlite3').resolve()}"


class Settings(BaseSettings):
    """Every ISKA setting; the alias is the environment variable (SPEC §10)."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, extra="ignore")
    _regions: Regions | None = PrivateAttr(default=None)

    # the watched folder and the data rules (SPEC §2–4)
    data_dir: Path = Field(Path("data"), alias="ISKA_DATA_DIR")
    database_url: str = Field("", alias="ISKA_DATABASE_URL")  # unset: SQLite under data_dir
    timezone: TimeZoneName = Field("Africa/Accra", alias="ISKA_TIMEZONE")
    sensor_interval_seconds: int = Field(15, ge=1, alias="ISKA_SENSOR_INTERVAL_SECONDS")
    file_settle_seconds: float = Field(5.0, ge=0, alias="ISKA_FILE_SETTLE_SECONDS")
    max_reject_fraction: float = Field(0.2, ge=0, le=1, alias="ISKA_MAX_REJECT_FRACTION")
    max_future_minutes: int = Field(60, ge=0, alias="ISKA_MAX_FUTURE_MINUTES")
    max_grid_distance_km: float = Field(50.0, ge=0.001, alias="ISKA_MAX_GRID_DISTANCE_KM")
    forecast_max_age_hours: float = Field(30.0, ge=0, alias="ISKA_FORECAST_MAX_AGE_HOURS")
    # below it the day's delivery check fails (SPEC §16)
    min_delivery_rate: float = Field(0.9, ge=0, le=1, alias="ISKA_MIN_DELIVERY_RATE")
    max_task_retry: int = Field(3, ge=0, alias="MAX_TASK_RETRY")
    # billing (SPEC §6)
    billing_url: HttpUrl = Field(DEFAULT_BILLING_URL, alias="BILLING_URL")
    billing_token: str = Field("", alias="BILLING_TOKEN")
    max_billing_try_limit: int = Field(5, ge=1, alias="MAX_BILLING_TRY_LIMIT")
    billing_retry_minutes: int = Field(60, ge=0, alias="ISKA_BILLING_RETRY_MINUTES")
    billing_cron: Annotated[str, AfterValidator(_cron)] = Field("0 * * * *", alias="ISKA_BILLING_CRON")
    http_concurrency: int = Field(32, ge=1, alias="ISKA_HTTP_CONCURRENCY")
    http_timeout_seconds: float = Field(10.0, ge=0.01, alias="ISKA_HTTP_TIMEOUT_SECONDS")
    http_tries: int = Field(4, ge=1, alias="ISKA_HTTP_TRIES")
    max_retry_after_seconds: float = Field(300.0, ge=0, alias="ISKA_MAX_RETRY_AFTER_SECONDS")
    billing_max_tps: float = Field(0.0, ge=0, alias="BILLING_MAX_TPS")  # calls/s to BILLING_URL; 0: no cap
    # asynchronous billing (SPEC §18): MTN MoMo Collections' requesttopay, its callback and its poll
    billing_protocol: Literal["iska", "momo"] = Field("iska", alias="BILLING_PROTOCOL")
    billing_target_environment: str = Field(
        "sandbox", min_length=1, max_length=64, alias="BILLING_TARGET_ENVIRONMENT"
    )
    billing_subscription_key: str = Field("", alias="BILLING_SUBSCRIPTION_KEY")  # unset: not sent
    billing_price_daily: PriceText = Field("0.20 GHS", alias="BILLING_PRICE_DAILY")
    billing_price_weekly: PriceText = Field("1.00 GHS", alias="BILLING_PRICE_WEEKLY")
    billing_poll_minutes: int = Field(10, ge=1, alias="ISKA_BILLING_POLL_MINUTES")
    billing_pending_hours: int = Field(24, ge=1, alias="ISKA_BILLING_PENDING_HOURS")
    # daily SMS and the HTTP API (SPEC §7, §8)
    sms_urls: HttpUrls = Field(DEFAULT_SMS_URLS, alias="SMS_URLS")
    sms_token: str = Field("", alias="SMS_TOKEN")  # unset: BILLING_TOKEN
    sms_max_tps: float = Field(0.0, ge=0, alias="SMS_MAX_TPS")  # calls/s to each of SMS_URLS; 0: no cap
    # how SMS_URLS are spoken to (SPEC §17): the wire format, the account and the sender id
    sms_protocol: Literal["iska", "kannel", "africastalking", "twilio", "infobip"] = Field(
        "iska", alias="SMS_PROTOCOL"
    )
    sms_username: str = Field("", max_length=64, alias="SMS_USERNAME")
    sms_sender: str = Field("", max_length=64, alias="SMS_SENDER")
    max_sms_try_limit: int = Field(5, ge=1, alias="MAX_SMS_TRY_LIMIT")
    sms_hour: Hour = Field(5, alias="ISKA_SMS_HOUR")
    sms_latest_hour: Hour = Field(10, alias="ISKA_SMS_LATEST_HOUR")
    sms_batch_size: int = Field(5000, ge=1, alias="ISKA_SMS_BATCH_SIZE")
    # where sms_job's steps run (docs/scaling.md): the multiprocess executor on the run's machine,
    # or Celery workers (the `celery` extra) fed through ISKA_CELERY_BROKER_URL
    sms_executor: Literal["multiprocess", "celery"] = Field("multiprocess", alias="ISKA_SMS_EXECUTOR")
    celery_broker_url: str | None = Field(None, alias="ISKA_CELERY_BROKER_URL")
    # how many Celery workers serve the queue; unset: unknown, and a day gets a sender per batch
    celery_workers: int | None = Field(None, ge=1, alias="ISKA_CELERY_WORKERS")
    # regions and send windows (SPEC §15); unset: one region from the variables above
    regions_file: Path | None = Field(None, alias="ISKA_REGIONS_FILE")
    send_window_minutes: int = Field(60, ge=1, alias="ISKA_SEND_WINDOW_MINUTES")
    # unset: the templates file's forecast of ISKA_DEFAULT_LANGUAGE (DEFAULT_SMS_TEMPLATE for en)
    sms_template: Annotated[str | None, AfterValidator(_sms_template)] = Field(
        None, alias="ISKA_SMS_TEMPLATE"
    )
    # languages and encodings (SPEC §14); every text is checked at start-up (`_texts_fit`)
    templates_file: Path | None = Field(None, alias="ISKA_TEMPLATES_FILE")  # unset: the shipped one
    default_language: Annotated[str, AfterValidator(normalise)] = Field("en", alias="ISKA_DEFAULT_LANGUAGE")
    # at most 3: sms_messages.text holds 480 characters (3 GSM-7 parts of 153 septets, plus room)
    max_segments: int = Field(1, ge=1, le=3, alias="ISKA_MAX_SEGMENTS")
    gsm7_fallback: bool = Field(False, alias="ISKA_GSM7_FALLBACK")
    public_url: BaseUrl = Field("http://127.0.0.1:8000", alias="ISKA_PUBLIC_URL")
    callback_secret: str = Field(DEV_CALLBACK_SECRET, alias="ISKA_CALLBACK_SECRET")
    self_callback: bool = Field(False, alias="SELF_CALLBACK")
    api_token: str | None = Field(None, alias="ISKA_API_TOKEN")
    # consent and inbound SMS (SPEC §13): unset token = the inbound route refuses every message
    inbound_token: str | None = Field(None, alias="ISKA_INBOUND_TOKEN")
    stop_words: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_word_list)] = Field(
        (), alias="ISKA_STOP_WORDS"
    )
    # the {price} of the HELP and rejoin replies, as the subscriber should read it
    price_daily: str = Field("GHS 0.20 a day", min_length=1, max_length=16, alias="ISKA_PRICE_DAILY")
    price_weekly: str = Field("GHS 1 a week", min_length=1, max_length=16, alias="ISKA_PRICE_WEEKLY")
    # the API's uploads and task status (SPEC §8)
    max_upload_mb: int = Field(512, ge=1, alias="ISKA_MAX_UPLOAD_MB")
    task_timeout_seconds: int = Field(3600, ge=1, alias="TASK_TIMEOUT")
    dagster_url: BaseUrl = Field("http://127.0.0.1:3000", alias="ISKA_DAGSTER_URL")
    dagster_home: str | None = Field(None, alias="DAGSTER_HOME")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        """Strip values, drop blank ones, and fill the two defaults derived from other settings."""
        if not isinstance(data, Mapping):
            return data
        values = {name: value.strip() if isinstance(value, str) else value for name, value in data.items()}
        values = {name: value for name, value in values.items() if value != ""}
        if "SMS_TOKEN" not in values and "BILLING_TOKEN" in values:
            values["SMS_TOKEN"] = values["BILLING_TOKEN"]
        if values.get("BILLING_PROTOCOL") == "momo" and "BILLING_URL" not in values:
            values["BILLING_URL"] = DEFAULT_MOMO_URL
        if "ISKA_DATABASE_URL" not in values:
            data_dir = Path(values.get("ISKA_DATA_DIR", cls.model_fields["data_dir"].default))
            values["ISKA_DATABASE_URL"] = default_database_url(data_dir)
        return values

    @model_validator(mode="after")
    def _celery_has_a_broker(self) -> Settings:
        """Celery workers are reached through a broker only this variable names."""
        if self.sms_executor == "celery" and not self.celery_broker_url:
            raise ConfigurationError(
                "ISKA_SMS_EXECUTOR=celery needs ISKA_CELERY_BROKER_URL, the broker the workers "
                "listen on (e.g. pyamqp://guest:guest@rabbitmq:5672//; see deploy/celery.yaml)"
            )
        return self

    @model_validator(mode="after")
    def _momo_fits(self) -> Settings:
        """MoMo's endpoint is the requesttopay collection (its status lookup hangs below it),
        and a charge must be able to stay pending longer than the poll waits before asking."""
        if self.billing_protocol == "momo" and not self.billing_url.rstrip("/").endswith(MOMO_PATH_END):
            raise ConfigurationError(
                "BILLING_URL must be MoMo's requesttopay endpoint (…/collection/v1_0/requesttopay) "
                f"when BILLING_PROTOCOL is momo, got {self.billing_url!r}"
            )
        if self.billing_pending_hours * 60 <= self.billing_poll_minutes:
            raise ConfigurationError(
                f"ISKA_BILLING_PENDING_HOURS ({self.billing_pending_hours} h) must be longer than "
                f"ISKA_BILLING_POLL_MINUTES ({self.billing_poll_minutes} min): every pending charge "
                "would expire before it is looked up"
            )
        return self

    @model_validator(mode="after")
    def _texts_fit(self) -> Settings:
        """Start-up check: every text of every language within ISKA_MAX_SEGMENTS at its widest."""
        self.catalog()
        self.regions()
        return self

    def regions(self) -> Regions:
        """The regions file's regions (checked, ConfigurationError naming file, region and
        field), else the one region of ISKA_TIMEZONE, ISKA_SMS_HOUR, SMS_URLS and SMS_MAX_TPS.
        Read once, at start-up (a changed file takes a restart, docs/operations.md), not on
        every request that needs them."""
        if self._regions is None:
            self._regions = self._read_regions()
        return self._regions

    def _read_regions(self) -> Regions:
        if self.regions_file is None:
            return single_region(
                self.timezone, self.sms_hour, None, self.sms_urls, self.sms_max_tps, self.sms_gateway_shape()
            )
        return load_regions(self.regions_file, sms_hour=self.sms_hour, languages=self.catalog().codes)

    def sms_gateway_shape(self) -> Gateway:
        """What every one of SMS_URLS shares without a regions file: protocol, account, sender."""
        return Gateway("", protocol=self.sms_protocol, username=self.sms_username, sender=self.sms_sender)

    def catalog(self) -> Catalog:
        """The templates with this deployment's rules, checked (ConfigurationError otherwise)."""
        return build_catalog(
            self.templates_file,
            default_language=self.default_language,
            gsm7_fallback=self.gsm7_fallback,
            max_segments=self.max_segments,
            sms_template=self.sms_template,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of `env` (default: the process environment); ConfigurationError names
        the first variable that is wrong."""
        try:
            return cls() if env is None else cls.model_validate(dict(env))
        except ValidationError as error:
            raise ConfigurationError(describe(error)) from None
        except SettingsError as error:
            raise ConfigurationError(str(error)) from None


# the values with nothing set: where a default is needed outside this module, it is read here
DEFAULTS = Settings.from_env({})
DEFAULT_LANGUAGES = DEFAULTS.catalog().codes  # what the `language` column accepts by default
DEFAULT_REGIONS = DEFAULTS.regions()  # the one region of an empty environment
