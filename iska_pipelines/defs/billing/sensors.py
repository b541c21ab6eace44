"""New subscribers are charged right away: one billing run after each applied additions file."""

import dagster as dg

from iska_pipelines.defs.billing.jobs import billing_job
from iska_pipelines.defs.inbox.jobs import ingest_subscriptions
from iska_pipelines.lib.vocabulary import FileKind


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_subscriptions],
    request_job=billing_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests billing_job once per successfully applied additions file.",
)
def billing_after_additions(context: dg.RunStatusSensorContext):
    partition = context.dagster_run.tags.get("dagster/partition", "")
    if not partition.startswith(f"{FileKind.ADDITIONS}-"):
        return None  # not ours: the sensor moves on to the next finished run
    context.log.info(f"additions file {partition} applied; requesting billing")
    return dg.RunRequest(run_key=f"after-{partition}", tags={"iska/after": partition})
