"""`sms_job`: one run per local day (per day and region with several regions, SPEC §15).
Expire stale reports, plan the outbox, send it, check it.

The senders are dynamic outputs, one mapped `send_sms_batch` step per `ISKA_SMS_BATCH_SIZE`
pending messages, at most as many as the executor runs at once (parallelism.py): the
multiprocess executor runs them in parallel processes (the GIL caps one process near 1,200
requests/s), and the Celery executor (ISKA_SMS_EXECUTOR=celery, executors.py) or another run
launcher spreads them over more workers without changing the job. A sender is not handed its messages: it claims the day's
pending ones from the outbox until none is left, so a re-executed step, a retry run or a new run
of the day sends whatever is still pending, and `report_sms_day` sends the rest before it counts
— a day's run is green only when none of its messages is left pending.
"""

import uuid
from dataclasses import dataclass
from datetime import date

import dagster as dg

from iska_pipelines.defs.health.events import SMS_DELIVERIES, report_day
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.defs.sms.executors import sms_executor
from iska_pipelines.defs.sms.parallelism import sender_count
from iska_pipelines.defs.sms.partitions import day_and_region, region_day_key, sms_job_partitions
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.health.checks import send_window_fits
from iska_pipelines.lib.regions.config import Region, Regions
from iska_pipelines.lib.regions.gateways import gateways_for
from iska_pipelines.lib.regions.window import send_window
from iska_pipelines.lib.sms.claims import day_statuses, pending_count
from iska_pipelines.lib.sms.delivery import EXPIRY_HOURS, expire_unreported
from iska_pipelines.lib.sms.gateway import SmsAuthError
from iska_pipelines.lib.sms.outbox import OutboxPlan, plan_outbox
from iska_pipelines.lib.sms.report import day_languages, day_metrics, plan_metrics, still_pending
from iska_pipelines.lib.sms.sending import CLAIM_CHUNK, BatchSent, Sender, finish_pending, send_pending

CATCH_UP_TAG = "iska/sms_catch_up"  # runs the catch-up sensor starts: they respect the cut-off


@dg.op(retry_policy=STEP_RETRY)
def expire_unreported_sms(context: dg.OpExecutionContext, database: IskaDatabase) -> dg.Output[int]:
    """Accepted messages without a delivery report after 72 h become `expired`."""
    with database.engine().begin() as connection:
        expired = expire_unreported(connection)
    context.log.info(f"expired {expired} accepted messages without a report after {EXPIRY_HOURS} h")
    return dg.Output(expired, metadata={"expired": expired})


@dataclass(frozen=True)
class RegionDay:
    """The run's partition: a day of one region, with the deployment's regions around it."""

    day: date
    region: Region
    regions: Regions

    @property
    def in_region(self) -> str:
        """The SQL condition on `sms_messages.region` of this region's messages."""
        return self.regions.in_region("region", self.region.code)


def region_day(context: dg.OpExecutionContext, sms_outbox: SmsOutbox, sms_gateway: SmsGateway) -> RegionDay:
    regions = sms_outbox.regions(sms_gateway)
    day, code = day_and_region(context.partition_key, regions)
    return RegionDay(day, regions.get(code), regions)


def sender(context: dg.OpExecutionContext, sms_outbox: SmsOutbox, where: RegionDay) -> Sender:
    """This step as a claim owner; catch-up runs stop at ISKA_SMS_LATEST_HOUR."""
    name = context.get_mapping_key() or context.op.name
    catch_up = context.run.tags.get(CATCH_UP_TAG) is not None
    return Sender(
        owner=f"{context.run_id}/{name}/{uuid.uuid4().hex[:8]}"[:64],
        public_url=sms_outbox.public_url,
        secret=sms_outbox.callback_secret,
        chunk=min(sms_outbox.batch_size, CLAIM_CHUNK),
        claim_seconds=sms_outbox.claim_seconds,
        cutoff=sms_outbox.cutoff(where.day, where.region.timezone) if catch_up else None,
        in_region=where.in_region,
    )


def warn_if_late(context: dg.OpExecutionContext, where: RegionDay, pending: int, window_minutes: int) -> dict:
    """The plan's finish time (messages / the region's total TPS), as the day's
    `send_window_fits` check, before any message goes out."""
    window = send_window(where.region, where.day, pending, window_minutes, utcnow())
    verdict = send_window_fits(window)
    if not verdict.passed:
        context.log.warning(verdict.description)
    # an op may log a check evaluation (Dagster stores and shows it), though log_event's
    # annotation names only materializations, observations and expectations
    context.log_event(
        dg.AssetCheckEvaluation(  # type: ignore[arg-type]
            asset_key=dg.AssetKey(SMS_DELIVERIES),
            check_name=verdict.name,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=verdict.description,
            metadata=verdict.metadata,
            partition=region_day_key(where.day, where.region.code, where.regions),
        )
    )
    return {"send_seconds_planned": round(window.seconds, 1), "send_window_fits": int(window.fits)}


@dg.op(out={"plan": dg.Out(), "senders": dg.DynamicOut()}, retry_policy=STEP_RETRY)
def plan_sms(
    context: dg.OpExecutionContext, database: IskaDatabase, sms_outbox: SmsOutbox, sms_gateway: SmsGateway
):
    """Write the day's outbox in one transaction, say when it will finish, then start one sender
    per batch of pending rows."""
    where = region_day(context, sms_outbox, sms_gateway)
    day = where.day
    try:
        catalog = sms_outbox.catalog()
    except ConfigurationError as error:  # a text too long for ISKA_MAX_SEGMENTS: retrying cannot help
        raise dg.Failure(str(error), allow_retries=False) from error
    engine = database.engine()
    with engine.begin() as connection:
        plan = plan_outbox(
            connection,
            day,
            catalog,
            sms_outbox.forecast_max_age_hours,
            region=where.region,
            in_region=where.regions.in_region("s.region", where.region.code),
        )
    context.log.info(plan.summary() + (f" in region {where.region.code}" if where.regions.several else ""))
    with engine.connect() as connection:
        pending = pending_count(connection, day, where.in_region)
    senders = sender_count(context, pending, sms_outbox.batch_size)
    window = warn_if_late(context, where, pending, sms_outbox.send_window_minutes)
    metadata = {**plan_metrics(plan), "pending": pending, "batches": senders, **window}
    yield dg.Output(plan, "plan", metadata=metadata)
    for number in range(senders):
        yield dg.DynamicOutput(day, output_name="senders", mapping_key=f"batch_{number:05d}")


@dg.op(retry_policy=STEP_RETRY)
def send_sms_batch(
    context: dg.OpExecutionContext,
    day: date,
    database: IskaDatabase,
    sms_outbox: SmsOutbox,
    sms_gateway: SmsGateway,
) -> dg.Output[BatchSent]:
    """Claim and send the day's pending messages over pooled connections until none is left,
    through the region's gateways."""
    where = region_day(context, sms_outbox, sms_gateway)
    me = sender(context, sms_outbox, where)
    engine = database.engine()
    try:
        with sms_gateway.client(engine, gateways_for(where.regions, where.region.code)) as client:
            sent = send_pending(engine, day, client, me)
    except SmsAuthError as error:  # the token is wrong for every message: retrying cannot help
        raise dg.Failure(str(error), allow_retries=False) from error
    context.log.info(sent.summary(me.owner))
    return dg.Output(
        sent,
        metadata={
            "sent": sent.sent,
            "accepted": sent.accepted,
            "rejected": sent.rejected,
            "failed": sent.failed,
            "skipped_too_late": sent.too_late,
        },
    )


@dg.op
def report_sms_day(
    context: dg.OpExecutionContext,
    plan: OutboxPlan,
    sent: list[BatchSent],
    expired: int,
    database: IskaDatabase,
    sms_outbox: SmsOutbox,
    sms_gateway: SmsGateway,
) -> dg.Output[dict]:
    """Send what is still pending (a sender that died, a step never started), then the day's
    numbers in one place; fails while any message of the day is left pending."""
    day = plan.day
    where = region_day(context, sms_outbox, sms_gateway)
    me = sender(context, sms_outbox, where)
    engine = database.engine()
    try:
        with sms_gateway.client(engine, gateways_for(where.regions, where.region.code)) as client:
            rest = finish_pending(engine, day, client, me)
    except SmsAuthError as error:
        raise dg.Failure(str(error), allow_retries=False) from error
    if rest.sent or rest.too_late:
        context.log.info(f"left pending by the senders: {rest.summary(me.owner)}")
    with engine.connect() as connection:
        statuses = day_statuses(connection, day, where.in_region)
        languages = day_languages(connection, day, where.in_region)
    batches = [*sent, rest] if rest.sent else list(sent)
    metrics = day_metrics(plan, batches, expired, statuses, languages)
    context.log.info(", ".join(f"{k}={v}" for k, v in metrics.items()))
    report_day(
        context, engine, SMS_DELIVERIES, day, SETTINGS.timezone, utcnow(), where.regions, where.region.code
    )
    if metrics["pending"]:
        raise dg.Failure(still_pending(plan, statuses), metadata=metrics)
    return dg.Output(metrics, metadata=metrics)


# one SMS run at a time (dagster.yaml); a run whose worker died unseen is failed (and retried)
# by run monitoring after MAX_RUNTIME_SECONDS instead of holding that slot for ever
MAX_RUNTIME_SECONDS = 3600


def build_sms_job(
    partitions_def: dg.PartitionsDefinition, executor: str = SETTINGS.sms_executor
) -> dg.JobDefinition:
    """The job over `partitions_def` (defs/sms/partitions.py: by day, or by day and region), its
    steps run by `executor` (ISKA_SMS_EXECUTOR: executors.py)."""
    executor_def, run_config = sms_executor(executor)

    @dg.job(
        name="sms_job",
        partitions_def=partitions_def,
        executor_def=executor_def,
        config=run_config,
        tags={"iska/serial": "sms", "dagster/max_runtime": str(MAX_RUNTIME_SECONDS)},
        description="Send the day's forecast SMS to every paid subscriber.",
    )
    def sms_job():
        expired = expire_unreported_sms()
        plan, senders = plan_sms()
        sent = senders.map(send_sms_batch)
        report_sms_day(plan, sent.collect(), expired)

    return sms_job


sms_job = build_sms_job(sms_job_partitions)
