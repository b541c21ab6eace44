"""The subscriptions asset: one partition per dropped additions, cancellations or updates file."""

import dagster as dg

from iska_pipelines.defs.inbox.failures import refusals_fail_without_retry
from iska_pipelines.defs.inbox.partitions import subscription_files
from iska_pipelines.defs.metadata import file_metadata, refused_rows_check
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox, IskaRules
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.lib.csv.subscriptions import read_subscription_file
from iska_pipelines.lib.inbox import parse_key
from iska_pipelines.lib.ingest import ingest_file
from iska_pipelines.lib.subscription_ingest import apply_subscriptions


@dg.asset(
    partitions_def=subscription_files,
    retry_policy=STEP_RETRY,
    check_specs=[dg.AssetCheckSpec(
        "no_refused_rows", asset="subscriptions",
        description="Every row of the file was applied (WARN when some were refused).")],
    group_name="ingest",
    kinds={"polars", "sql"},
)
def subscriptions(
    context: dg.AssetExecutionContext, database: IskaDatabase, inbox: IskaInbox, rules: IskaRules
) -> dg.MaterializeResult:
    """Apply one subscription file in one transaction, strictly one file at a time."""
    kind = parse_key(context.partition_key).kind
    ingest_rules = rules.ingest_rules()
    with refusals_fail_without_retry():
        applied = ingest_file(
            database.engine(), inbox.folders(), context.partition_key,
            lambda path, taken_at: read_subscription_file(path, kind, ingest_rules.timezone,
                                                          ingest_rules.max_future_minutes, taken_at,
                                                          ingest_rules.languages),
            lambda connection, parsed, rerun_of: apply_subscriptions(connection, parsed, kind, ingest_rules,
                                                                     rerun_of),
            ingest_rules, run_id=context.run_id,
        )
    context.log.info(applied.summary())
    return dg.MaterializeResult(
        metadata={**file_metadata(applied), "kind": str(kind)},
        check_results=[refused_rows_check(applied)],
    )
