"""Replies to inbound SMS left pending (SPEC §13): the API sends each reply as soon as it stored
the inbound message; this sensor starts `sms_replies_job` for any reply still pending a little
later (the API crashed between commit and send, the gateway was down), so a reply never waits
for the next day's run. The job claims each reply before sending it, as the daily job does, so a
reply the API is sending at the same moment is not sent twice. Replies are never billed.
"""

from datetime import timedelta

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.consent.replies import pending_replies, send_replies
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.sms.sending import Sender

# what the API gets to send itself before the sensor steps in
GRACE_SECONDS = 30
REPLY_CHUNK = 100


@dg.op(retry_policy=STEP_RETRY)
def send_pending_replies(
    context: dg.OpExecutionContext, database: IskaDatabase, sms_gateway: SmsGateway, sms_outbox: SmsOutbox
) -> dg.Output[int]:
    """Send every pending reply until none is left to claim."""
    engine = database.engine()
    sender = Sender(
        owner=f"{context.run_id}/replies"[:64],
        public_url=sms_outbox.public_url,
        secret=sms_outbox.callback_secret,
        chunk=REPLY_CHUNK,
        claim_seconds=sms_outbox.claim_seconds,
    )
    regions = sms_outbox.regions(sms_gateway)
    sent = send_replies(engine, regions, lambda region: sms_gateway.client(engine, region.gateways), sender)
    context.log.info(f"sent {sent} pending replies")
    return dg.Output(sent, metadata={"sent": sent})


@dg.job(description="Send the replies to inbound SMS that are still pending (never billed).")
def sms_replies_job():
    send_pending_replies()


@dg.sensor(
    job=sms_replies_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts sms_replies_job when a reply to an inbound SMS is still pending.",
)
def sms_replies(context: dg.SensorEvaluationContext, database: IskaDatabase):
    with database.engine().connect() as connection:
        pending = pending_replies(connection, created_before=utcnow() - timedelta(seconds=GRACE_SECONDS))
    if not pending:
        return dg.SkipReason("no reply is pending")
    running = context.instance.get_runs(
        filters=dg.RunsFilter(
            job_name=sms_replies_job.name,
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
        ),
        limit=1,
    )
    if running:
        return dg.SkipReason(f"{pending} replies pending; a replies run is in progress")
    context.log.info(f"{pending} replies pending: starting a run")
    return dg.RunRequest()
