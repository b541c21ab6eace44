"""The billing gateway and the billing rules as resources (SPEC §6, §10).

BILLING_URL and BILLING_TOKEN are read through `dg.EnvVar` when set, so the token never shows
in the UI; unset, the URL falls back to the simulator's default and an empty token fails the run
with a message naming BILLING_TOKEN.
"""

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.resources import SETTINGS, from_env
from iska_pipelines.lib.billing.gateway import BillingClient
from iska_pipelines.lib.billing.run import BillingRules
from iska_pipelines.lib.http.client import Backoff
from iska_pipelines.lib.http.limiter import DatabaseCaps
from iska_pipelines.lib.settings import DEFAULTS, Settings


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

    def client(self, engine: sa.Engine | None = None) -> BillingClient:
        """With `engine`, the cap is shared through its database by every process."""
        pacers = DatabaseCaps(engine, {self.url: self.max_tps}) if engine is not None else None
        return BillingClient(
            self.url,
            self.token,
            pool_size=self.concurrency,
            timeout_seconds=self.timeout_seconds,
            backoff=Backoff(
                tries=self.tries,
                base_seconds=self.backoff_seconds,
                max_retry_after_seconds=self.max_retry_after_seconds,
            ),
            pacers=pacers,
        )


class BillingPolicy(dg.ConfigurableResource):
    """When a decline cancels and how long a declined subscriber rests; the calendar day is
    each region's own (ISKA_TIMEZONE's when there is one region, SPEC §15)."""

    max_tries: int = DEFAULTS.max_billing_try_limit
    retry_minutes: int = DEFAULTS.billing_retry_minutes

    def rules(self, concurrency: int) -> BillingRules:
        return BillingRules(
            self.max_tries, self.retry_minutes, SETTINGS.timezone, concurrency, regions=SETTINGS.regions()
        )


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
        ),
        "billing_policy": BillingPolicy(
            max_tries=settings.max_billing_try_limit, retry_minutes=settings.billing_retry_minutes
        ),
    }


@dg.definitions
def billing_resources() -> dg.Definitions:
    return dg.Definitions(resources=build_billing_resources(SETTINGS))
