"""The forecasts asset: one partition per dropped forecasts file."""

from functools import partial

import dagster as dg

from iska_pipelines.defs.health.events import report_intake
from iska_pipelines.defs.inbox.failures import refusals_fail_without_retry
from iska_pipelines.defs.inbox.partitions import forecast_files
from iska_pipelines.defs.metadata import file_metadata, refused_rows_check
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox, IskaRules
from iska_pipelines.defs.retries import STEP_RETRY
from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.forecasts.ingest import apply_forecasts
from iska_pipelines.lib.forecasts.storage import table_health
from iska_pipelines.lib.inbox.ingest import (
    applied_before,
    archive_applied,
    record_applied,
    refusing_whole_file,
    take_file,
)
from iska_pipelines.lib.inbox.reading import enforce_reject_limit

CHECKS = [
    dg.AssetCheckSpec(
        "no_refused_rows",
        asset="forecasts",
        description="Every row of the file was applied (WARN when some were refused).",
    ),
    dg.AssetCheckSpec(
        "gid_unique", asset="forecasts", description="Each gid appears once in the forecasts table."
    ),
    dg.AssetCheckSpec(
        "coordinates_in_range",
        asset="forecasts",
        description="Every stored point has -90<=lat<=90 and -180<=lon<=180.",
    ),
]


@dg.asset(
    partitions_def=forecast_files,
    retry_policy=STEP_RETRY,
    check_specs=CHECKS,
    group_name="ingest",
    kinds={"polars", "sql"},
)
def forecasts(
    context: dg.AssetExecutionContext, database: IskaDatabase, inbox: IskaInbox, rules: IskaRules
) -> dg.MaterializeResult:
    """Upsert one forecasts file by gid in one transaction; reassign subscribers if the grid moved."""
    engine, folders, ingest = database.engine(), inbox.folders(), rules.ingest_rules()
    report = partial(report_intake, context, engine, ingest.timezone)
    with refusals_fail_without_retry(context, report):
        taken = take_file(engine, folders, context.partition_key)
        with refusing_whole_file(engine, folders, taken, context.run_id):
            parsed = read_forecasts(taken.path, ingest.timezone)
            enforce_reject_limit(parsed, ingest.max_reject_fraction, taken.name)
    with engine.begin() as connection:
        rerun_of = applied_before(connection, taken)
        result = apply_forecasts(connection, parsed, ingest)
        applied = record_applied(connection, taken, parsed, result, rerun_of, context.run_id)
    applied = archive_applied(folders, taken, applied)
    context.log.info(applied.summary())
    report()
    with engine.connect() as connection:
        health = table_health(connection)
    return dg.MaterializeResult(
        metadata=file_metadata(applied),
        check_results=[
            refused_rows_check(applied),
            dg.AssetCheckResult(
                check_name="gid_unique",
                passed=health.duplicate_gids == 0,
                metadata={"duplicate_gids": health.duplicate_gids},
            ),
            dg.AssetCheckResult(
                check_name="coordinates_in_range",
                passed=health.out_of_range == 0,
                metadata={"rows_out_of_range": health.out_of_range, "rows_in_table": health.rows},
            ),
        ],
    )
