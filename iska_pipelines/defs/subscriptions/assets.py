"""The subscriptions asset: one partition per dropped additions, cancellations or updates file."""

from functools import partial

import dagster as dg

from iska_pipelines.defs.health.events import report_intake
from iska_pipelines.defs.inbox.failures import refusals_fail_without_retry
from iska_pipelines.defs.inbox.partitions import subscription_files
from iska_pipelines.defs.metadata import file_metadata, refused_rows_check
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox, IskaRules
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.lib.inbox.ingest import (
    applied_before,
    archive_applied,
    record_applied,
    refusing_whole_file,
    take_file,
)
from iska_pipelines.lib.inbox.reading import enforce_reject_limit
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.subscriptions.ingest import apply_subscriptions


@dg.asset(
    partitions_def=subscription_files,
    retry_policy=STEP_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "no_refused_rows",
            asset="subscriptions",
            description="Every row of the file was applied (WARN when some were refused).",
        )
    ],
    group_name="ingest",
    kinds={"polars", "sql"},
)
def subscriptions(
    context: dg.AssetExecutionContext, database: IskaDatabase, inbox: IskaInbox, rules: IskaRules
) -> dg.MaterializeResult:
    """Apply one subscription file in one transaction, strictly one file at a time."""
    engine, folders, ingest = database.engine(), inbox.folders(), rules.ingest_rules()
    report = partial(report_intake, context, engine, ingest.timezone)
    with refusals_fail_without_retry(context, report):
        taken = take_file(engine, folders, context.partition_key)
        with refusing_whole_file(engine, folders, taken, context.run_id):
            parsed = read_subscription_file(
                taken.path,
                taken.kind,
                ingest.timezone,
                ingest.max_future_minutes,
                taken.taken_at,
                ingest.languages,
                ingest.regions,
            )
            enforce_reject_limit(parsed, ingest.max_reject_fraction, taken.name)
    with engine.begin() as connection:
        rerun_of = applied_before(connection, taken)
        result = apply_subscriptions(
            connection, parsed, taken.kind, ingest, rerun_of, detail=f"{taken.name} sha256 {taken.sha256}"
        )
        applied = record_applied(connection, taken, parsed, result, rerun_of, context.run_id)
    applied = archive_applied(folders, taken, applied)
    context.log.info(applied.summary())
    report()
    return dg.MaterializeResult(
        metadata={**file_metadata(applied), "kind": str(taken.kind)},
        check_results=[refused_rows_check(applied)],
    )
