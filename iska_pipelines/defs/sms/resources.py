"""The SMS resources: the gateways (URLs, token, retries) and the outbox rules (text, batches,
callback). Secrets come through `dg.EnvVar` when set, so the UI never shows them."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.resources import SETTINGS, from_env
from iska_pipelines.lib.http.limiter import DatabaseCaps
from iska_pipelines.lib.regions.config import Gateway, Regions, load_regions, single_region
from iska_pipelines.lib.regions.gateways import caps_of
from iska_pipelines.lib.settings import DEFAULTS, Settings
from iska_pipelines.lib.sms.claims import cutoff
from iska_pipelines.lib.sms.gateway import SmsClient, split_urls
from iska_pipelines.lib.sms.templates import Catalog, build_catalog


class SmsGateway(dg.ConfigurableResource):
    """SMS_URLS (comma-separated, round robin) and how hard to try each message."""

    urls: str
    token: str
    max_tries: int = DEFAULTS.max_sms_try_limit
    concurrency: int = DEFAULTS.http_concurrency
    timeout_seconds: float = DEFAULTS.http_timeout_seconds
    backoff_seconds: float = 0.5
    max_retry_after_seconds: float = DEFAULTS.max_retry_after_seconds
    self_callback: bool = DEFAULTS.self_callback
    max_tps: float = DEFAULTS.sms_max_tps  # SMS_MAX_TPS, the cap of each URL; 0: no cap
    protocol: str = DEFAULTS.sms_protocol  # SMS_PROTOCOL: how SMS_URLS are spoken to (SPEC §17)
    username: str = DEFAULTS.sms_username  # SMS_USERNAME
    sender: str = DEFAULTS.sms_sender  # SMS_SENDER

    def shape(self) -> Gateway:
        return Gateway("", protocol=self.protocol, username=self.username, sender=self.sender)

    def gateways(self) -> tuple[Gateway, ...]:
        """SMS_URLS with SMS_MAX_TPS each: the gateways of a deployment with one region."""
        return single_region(
            "UTC", 0, None, split_urls(self.urls), self.max_tps, self.shape()
        ).default.gateways

    def client(
        self, engine: sa.Engine | None = None, gateways: tuple[Gateway, ...] | None = None
    ) -> SmsClient:
        """`gateways`: a region's (lib/regions/gateways.py); None: SMS_URLS. With `engine`, each
        URL's cap is shared through its database by every process."""
        chosen = gateways or self.gateways()
        pacers = DatabaseCaps(engine, caps_of(chosen)) if engine is not None else None
        return SmsClient(
            chosen,
            self.token,
            max_tries=self.max_tries,
            concurrency=self.concurrency,
            timeout_seconds=self.timeout_seconds,
            backoff_base_seconds=self.backoff_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
            self_callback=self.self_callback,
            pacers=pacers,
        )


class SmsOutbox(dg.ConfigurableResource):
    """What the day's messages say, how they are batched, and where reports come back. The
    day's cutoff is in its region's time zone (ISKA_TIMEZONE when there is one region)."""

    template: str | None = DEFAULTS.sms_template  # ISKA_SMS_TEMPLATE: the default language's forecast
    templates_file: str | None = None  # ISKA_TEMPLATES_FILE; unset: the shipped templates
    default_language: str = DEFAULTS.default_language
    max_segments: int = DEFAULTS.max_segments
    gsm7_fallback: bool = DEFAULTS.gsm7_fallback
    batch_size: int = DEFAULTS.sms_batch_size
    forecast_max_age_hours: float = DEFAULTS.forecast_max_age_hours
    public_url: str = DEFAULTS.public_url
    callback_secret: str = DEFAULTS.callback_secret
    claim_seconds: float = 300.0  # a dead sender's messages are taken again after this
    latest_hour: int = DEFAULTS.sms_latest_hour  # 24 = the end of the day
    regions_file: str | None = None  # ISKA_REGIONS_FILE; unset: one region (SPEC §15)
    send_window_minutes: int = DEFAULTS.send_window_minutes

    def catalog(self) -> Catalog:
        """Every language's texts, checked against ISKA_MAX_SEGMENTS (ConfigurationError)."""
        return build_catalog(
            Path(self.templates_file) if self.templates_file else None,
            default_language=self.default_language,
            gsm7_fallback=self.gsm7_fallback,
            max_segments=self.max_segments,
            sms_template=self.template,
        )

    def regions(self, gateway: SmsGateway | None = None) -> Regions:
        """The regions file's regions, else one region of ISKA_TIMEZONE, ISKA_SMS_HOUR and the
        gateway resource's SMS_URLS and SMS_MAX_TPS (none without `gateway`: days and zones only)."""
        if self.regions_file:
            return load_regions(Path(self.regions_file), sms_hour=SETTINGS.sms_hour)
        if gateway is None:
            return single_region(SETTINGS.timezone, SETTINGS.sms_hour, None, [], 0.0)
        urls, max_tps = split_urls(gateway.urls), gateway.max_tps
        return single_region(SETTINGS.timezone, SETTINGS.sms_hour, None, urls, max_tps, gateway.shape())

    def cutoff(self, day: date, timezone: str | None = None) -> datetime:
        """When day D's messages stop going out: ISKA_SMS_LATEST_HOUR in the region's time zone."""
        return cutoff(day, self.latest_hour, timezone or SETTINGS.timezone)


def build_sms_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "sms_gateway": SmsGateway(
            urls=",".join(settings.sms_urls),
            token=from_env(("SMS_TOKEN", "BILLING_TOKEN"), settings.sms_token),
            max_tries=settings.max_sms_try_limit,
            concurrency=settings.http_concurrency,
            timeout_seconds=settings.http_timeout_seconds,
            max_retry_after_seconds=settings.max_retry_after_seconds,
            self_callback=settings.self_callback,
            max_tps=settings.sms_max_tps,
            protocol=settings.sms_protocol,
            username=settings.sms_username,
            sender=settings.sms_sender,
        ),
        "sms_outbox": SmsOutbox(
            template=settings.sms_template,
            templates_file=str(settings.templates_file) if settings.templates_file else None,
            default_language=settings.default_language,
            max_segments=settings.max_segments,
            gsm7_fallback=settings.gsm7_fallback,
            batch_size=settings.sms_batch_size,
            forecast_max_age_hours=settings.forecast_max_age_hours,
            public_url=settings.public_url,
            callback_secret=from_env(("ISKA_CALLBACK_SECRET",), settings.callback_secret),
            latest_hour=settings.sms_latest_hour,
            regions_file=str(settings.regions_file) if settings.regions_file else None,
            send_window_minutes=settings.send_window_minutes,
        ),
    }


@dg.definitions
def sms_resources() -> dg.Definitions:
    return dg.Definitions(resources=build_sms_resources(SETTINGS))
