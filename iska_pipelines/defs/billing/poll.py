"""`pending_charges_poll`: settles the MoMo charges whose callback never came (SPEC §18).

Every minute it looks up the charges pending for more than ISKA_BILLING_POLL_MINUTES, settles
those the gateway has an answer for, and gives up on those pending for ISKA_BILLING_PENDING_HOURS
(`expired`: not a decline, cancels nobody). The work is a few lookups and small transactions,
bounded per tick (lib/billing/poll.py), so the sensor does it itself rather than starting a run
a minute. Running by default only with BILLING_PROTOCOL=momo: the `iska` protocol never leaves
a charge pending.
"""

import dagster as dg

from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.lib.billing.poll import poll_pending
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.vocabulary import BillingProtocol

POLL_SECONDS = 60
LOOKUP_TRIES = 1  # a lookup that gets no answer is asked again at the next tick


class CredentialsRefused(RuntimeError):
    """The gateway refused our token on a status lookup: the tick fails, naming BILLING_TOKEN."""


@dg.sensor(
    minimum_interval_seconds=POLL_SECONDS,
    default_status=(
        dg.DefaultSensorStatus.RUNNING
        if SETTINGS.billing_protocol == BillingProtocol.MOMO
        else dg.DefaultSensorStatus.STOPPED
    ),
    description="Looks up the MoMo charges pending longer than ISKA_BILLING_POLL_MINUTES, settles "
    "what the gateway says and expires those pending for ISKA_BILLING_PENDING_HOURS.",
)
def pending_charges_poll(
    context: dg.SensorEvaluationContext,
    database: IskaDatabase,
    billing_gateway: BillingGateway,
    billing_policy: BillingPolicy,
) -> dg.SkipReason:
    if not billing_gateway.asynchronous:
        return dg.SkipReason("BILLING_PROTOCOL is iska: every charge is answered at once, none is pending")
    engine = database.engine()
    with billing_gateway.momo_client(engine, tries=LOOKUP_TRIES) as client:
        summary = poll_pending(engine, client, billing_policy.poll_rules(billing_gateway.concurrency), utcnow)
    if summary.auth_error:
        raise CredentialsRefused(
            f"the billing gateway at {billing_gateway.url} refused our credentials on a status lookup "
            f"({summary.auth_error}); check BILLING_TOKEN. " + summary.summary()
        )
    context.log.info(summary.summary())
    return dg.SkipReason(summary.summary())
