"""The billing gateway and the billing rules as resources (SPEC §6, §10, §18).

BILLING_URL and BILLING_TOKEN are read through `dg.EnvVar` when set, so the token never shows
in the UI; unset, the URL falls back to the simulator's default and an empty token fails the run
with a message naming BILLING_TOKEN. BILLING_PROTOCOL picks the client: `iska` (one synchronous
POST) or `momo` (MTN MoMo Collections, answered later by callback or poll).
"""

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.resources import SETTINGS, from_env
from iska_pipelines.lib.billing.gateway import BillingClient, Charger
from iska_pipelines.lib.billing.momo import MomoAccount, MomoClient
from iska_pipelines.lib.billing.poll import PollRules
from iska_pipelines.lib.billing.prices import parse_price
from iska_pipelines.lib.billing.run import BillingRules
from iska_pipelines.lib.billing.settle import SettleRules
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.http.client import Backoff
from iska_pipelines.lib.http.limiter import DatabaseCaps
from iska_pipelines.lib.settings import DEFAULTS, Settings
from iska_pipelines.lib.vocabulary import BillingProtocol, Plan


class BillingGateway(dg.ConfigurableResource):
    """Where charges go, with which token, and how hard the gateway may be pushed."""

    url: str
    token: str
    concurrency: int = DEFAULTS.http_concurrency
    timeout_seconds: float = DEFAULTS.http_timeout_seconds
    tries: int = DEFAULTS.http_tries
    backoff_seconds: float = 0.5
    max_retry_after_seconds: float = DEFAULTS.max_retry_after_seconds
    max_tps: float = DEFAULTS.billing_max_tps  # BILLING_MAX_TPS; 0: no cap
    # BILLING_PROTOCOL and what only `momo` needs (SPEC §18)
    protocol: str = DEFAULTS.billing_protocol
    target_environment: str = DEFAULTS.billing_target_environment
    subscription_key: str = DEFAULTS.billing_subscription_key
    price_daily: str = DEFAULTS.billing_price_daily
    price_weekly: str = DEFAULTS.billing_price_weekly
    public_url: str = DEFAULTS.public_url  # where MoMo's callbacks reach the API
    callback_secret: str = DEFAULTS.callback_secret

    @property
    def asynchronous(self) -> bool:
        return self.protocol == BillingProtocol.MOMO

    def client(self, engine: sa.Engine | None = None) -> Charger:
        """With `engine`, the cap is shared through its database by every process."""
        if self.protocol not in set(BillingProtocol):
            raise ConfigurationError(f"BILLING_PROTOCOL must be iska or momo, got {self.protocol!r}")
        if self.asynchronous:
            return self.momo_client(engine)
        return BillingClient(
            self.url,
            self.token,
            pool_size=self.concurrency,
            timeout_seconds=self.timeout_seconds,
            backoff=self._backoff(),
            pacers=self._pacers(engine),
        )

    def momo_client(self, engine: sa.Engine | None = None, tries: int | None = None) -> MomoClient:
        """`tries`: fewer for the poll's lookups, which a later tick asks again anyway."""
        account = MomoAccount(
            url=self.url.rstrip("/"),
            token=self.token,
            target_environment=self.target_environment,
            prices={Plan.DAILY: parse_price(self.price_daily), Plan.WEEKLY: parse_price(self.price_weekly)},
            public_url=self.public_url,
            callback_secret=self.callback_secret,
            subscription_key=self.subscription_key,
        )
        return MomoClient(
            account,
            pool_size=self.concurrency,
            timeout_seconds=self.timeout_seconds,
            backoff=self._backoff(tries),
            pacers=self._pacers(engine),
        )

    def _backoff(self, tries: int | None = None) -> Backoff:
        return Backoff(
            tries=tries or self.tries,
            base_seconds=self.backoff_seconds,
            max_retry_after_seconds=self.max_retry_after_seconds,
        )

    def _pacers(self, engine: sa.Engine | None) -> DatabaseCaps | None:
        return DatabaseCaps(engine, {self.url: self.max_tps}) if engine is not None else None


class BillingPolicy(dg.ConfigurableResource):
    """When a decline cancels, how long a declined subscriber rests, and how long a pending charge
    is waited for; the calendar day is each region's own (ISKA_TIMEZONE's when there is one
    region, SPEC §15)."""

    max_tries: int = DEFAULTS.max_billing_try_limit
    retry_minutes: int = DEFAULTS.billing_retry_minutes
    poll_minutes: int = DEFAULTS.billing_poll_minutes
    pending_hours: int = DEFAULTS.billing_pending_hours

    def rules(self, concurrency: int) -> BillingRules:
        return BillingRules(
            self.max_tries, self.retry_minutes, SETTINGS.timezone, concurrency, regions=SETTINGS.regions()
        )

    def settle_rules(self) -> SettleRules:
        return SettleRules(self.max_tries, SETTINGS.regions())

    def poll_rules(self, concurrency: int) -> PollRules:
        return PollRules(self.poll_minutes, self.pending_hours, self.settle_rules(), concurrency)


def build_billing_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "billing_gateway": BillingGateway(
            url=from_env(("BILLING_URL",), settings.billing_url),
            token=from_env(("BILLING_TOKEN",), settings.billing_token),
            concurrency=settings.http_concurrency,
            timeout_seconds=settings.http_timeout_seconds,
            tries=settings.http_tries,
            max_retry_after_seconds=settings.max_retry_after_seconds,
            max_tps=settings.billing_max_tps,
            protocol=settings.billing_protocol,
            target_environment=settings.billing_target_environment,
            subscription_key=from_env(("BILLING_SUBSCRIPTION_KEY",), settings.billing_subscription_key),
            price_daily=settings.billing_price_daily,
            price_weekly=settings.billing_price_weekly,
            public_url=settings.public_url,
            callback_secret=from_env(("ISKA_CALLBACK_SECRET",), settings.callback_secret),
        ),
        "billing_policy": BillingPolicy(
            max_tries=settings.max_billing_try_limit,
            retry_minutes=settings.billing_retry_minutes,
            poll_minutes=settings.billing_poll_minutes,
            pending_hours=settings.billing_pending_hours,
        ),
    }


@dg.definitions
def billing_resources() -> dg.Definitions:
    return dg.Definitions(resources=build_billing_resources(SETTINGS))
