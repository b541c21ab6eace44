"""`billing_job`: one op that charges every due subscription (SPEC §6).

Failures are visible and deliberate. A gateway outage fails the run after its in-run retries
with the counts, having cancelled nobody; a refused token stops the run naming BILLING_TOKEN.
Neither is retried as a step (the next scheduled run picks the same subscribers up again);
the step RetryPolicy and the run's `dagster/max_retries` are for the step or the process dying,
and re-executing then is safe because every charge reuses its Idempotency-Key.
"""

import dagster as dg

from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.health.events import BILLING_OUTCOMES, report_day
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.lib.billing.due import billing_day
from iska_pipelines.lib.billing.run import BillingAlreadyRunning, BillingSummary, bill_due
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.errors import ConfigurationError

BILLING_TAGS = {
    "iska/serial": "billing",  # dagster.yaml admits one run with this tag at a time
    "dagster/max_retries": str(SETTINGS.max_task_retry),
    "dagster/retry_on_asset_or_op_failure": "false",  # run retries only for crashed runs
}


@dg.op(retry_policy=STEP_RETRY, out=dg.Out(dg.Nothing), tags={"kind": "http"})
def charge_due_subscriptions(
    context: dg.OpExecutionContext,
    database: IskaDatabase,
    billing_gateway: BillingGateway,
    billing_policy: BillingPolicy,
):
    """Charge every due subscription concurrently; record each attempt with its outcome."""
    try:
        engine = database.engine()
        with billing_gateway.client(engine) as client:
            summary = bill_due(
                engine, client, billing_policy.rules(billing_gateway.concurrency), run_id=context.run_id
            )
    except (ConfigurationError, BillingAlreadyRunning) as refused:
        raise dg.Failure(description=str(refused), allow_retries=False) from refused
    context.log.info(summary.summary())
    report_billing_days(context, database)
    metadata = summary.metadata()
    if summary.auth_error:
        raise dg.Failure(
            description=_auth_failure(summary, billing_gateway.url), metadata=metadata, allow_retries=False
        )
    if summary.transport_errors:
        raise dg.Failure(
            description=(
                f"{summary.transport_errors} of {summary.due} charges got no answer from the "
                f"billing gateway after {billing_gateway.tries} tries each; nobody was cancelled "
                "for it and they stay due for the next run. " + summary.summary()
            ),
            metadata=metadata,
            allow_retries=False,
        )
    if summary.not_sendable:
        raise dg.Failure(
            description=(
                f"{summary.not_sendable} of {summary.due} charges could not be sent because of "
                "the subscriber's data (billing_attempts.response_excerpt says why); everyone "
                "else was charged. Fix or cancel those subscriptions. " + summary.summary()
            ),
            metadata=metadata,
            allow_retries=False,
        )
    yield dg.Output(None, metadata=metadata)


def report_billing_days(context: dg.OpExecutionContext, database: IskaDatabase) -> None:
    """billing_outcomes of the day just billed: each region's local day (SPEC §15), or the
    deployment's with one region."""
    now, regions = utcnow(), SETTINGS.regions()
    for region in regions.all:
        day = billing_day(now, region.timezone)
        report_day(
            context, database.engine(), BILLING_OUTCOMES, day, region.timezone, now, regions, region.code
        )


def _auth_failure(summary: BillingSummary, url: str) -> str:
    return (
        f"the billing gateway at {url} refused our credentials ({summary.auth_error}); "
        "check BILLING_TOKEN. The run stopped sending; " + summary.summary()
    )


# one step: running it in the run's own process saves a process start per run
@dg.job(
    tags=BILLING_TAGS,
    executor_def=dg.in_process_executor,
    description="Charge every due subscription once (SPEC §6).",
)
def billing_job():
    charge_due_subscriptions()
