"""`sms_job`: one run per local day. Expire stale reports, plan the outbox, send it in batches.

The batches are dynamic outputs, one mapped `send_sms_batch` step each: the multiprocess
executor runs them in parallel processes (the GIL caps one process near 1,200 requests/s), and
another executor or run launcher spreads them over more workers without changing the job.
"""

from datetime import date

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.defs.sms.partitions import sms_days
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.gateways.sms import SmsAuthError
from iska_pipelines.lib.sms.delivery import EXPIRY_HOURS, expire_unreported
from iska_pipelines.lib.sms.outbox import Batch, OutboxPlan, pending_batches, plan_outbox
from iska_pipelines.lib.sms.report import day_metrics, plan_metrics
from iska_pipelines.lib.sms.sending import BatchSent, send_batch
from iska_pipelines.lib.sms.text import validate_template


@dg.op(retry_policy=STEP_RETRY)
def expire_unreported_sms(context: dg.OpExecutionContext, database: IskaDatabase) -> dg.Output[int]:
    """Accepted messages without a delivery report after 72 h become `expired`."""
    with database.engine().begin() as connection:
        expired = expire_unreported(connection)
    context.log.info(f"expired {expired} accepted messages without a report after {EXPIRY_HOURS} h")
    return dg.Output(expired, metadata={"expired": expired})


@dg.op(out={"plan": dg.Out(), "batches": dg.DynamicOut()}, retry_policy=STEP_RETRY)
def plan_sms(context: dg.OpExecutionContext, database: IskaDatabase, sms_outbox: SmsOutbox):
    """Write the day's outbox in one transaction, then hand its pending rows out in batches."""
    day = date.fromisoformat(context.partition_key)
    template = validate_template(sms_outbox.template)
    engine = database.engine()
    with engine.begin() as connection:
        plan = plan_outbox(connection, day, template, sms_outbox.forecast_max_age_hours)
    context.log.info(plan.summary())
    with engine.connect() as connection:
        batches = pending_batches(connection, day, sms_outbox.batch_size)
    yield dg.Output(plan, "plan", metadata={**plan_metrics(plan), "batches": len(batches)})
    for number, batch in enumerate(batches):
        yield dg.DynamicOutput(batch, output_name="batches", mapping_key=f"batch_{number:05d}")


@dg.op(retry_policy=STEP_RETRY)
def send_sms_batch(context: dg.OpExecutionContext, batch: Batch, database: IskaDatabase,
                   sms_outbox: SmsOutbox, sms_gateway: SmsGateway) -> dg.Output[BatchSent]:
    """Send one batch concurrently over pooled connections; outcomes written as they come."""
    try:
        with sms_gateway.client() as client:
            sent = send_batch(database.engine(), batch, client, sms_outbox.public_url,
                              sms_outbox.callback_secret)
    except SmsAuthError as error:  # the token is wrong for every message: retrying cannot help
        raise dg.Failure(str(error), allow_retries=False) from error
    context.log.info(sent.summary(batch))
    return dg.Output(sent, metadata={"sent": sent.sent, "accepted": sent.accepted,
                                     "rejected": sent.rejected, "failed": sent.failed})


@dg.op
def report_sms_day(context: dg.OpExecutionContext, plan: OutboxPlan, sent: list[BatchSent],
                   expired: int) -> dg.Output[dict]:
    """The run's numbers in one place: eligible, sent, accepted, rejected, failed, skipped, rate."""
    metrics = day_metrics(plan, sent, expired)
    context.log.info(", ".join(f"{k}={v}" for k, v in metrics.items()))
    return dg.Output(metrics, metadata=metrics)


@dg.job(partitions_def=sms_days, tags={"iska/serial": "sms"},  # one SMS run at a time (dagster.yaml)
        description="Send the day's forecast SMS to every paid subscriber.")
def sms_job():
    expired = expire_unreported_sms()
    plan, batches = plan_sms()
    sent = batches.map(send_sms_batch)
    report_sms_day(plan, sent.collect(), expired)
