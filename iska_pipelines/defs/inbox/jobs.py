"""The ingest jobs the inbox sensor launches, one run per dropped file."""

import dagster as dg

from iska_pipelines.defs.inbox.partitions import forecast_files, subscription_files

ingest_forecasts = dg.define_asset_job(
    "ingest_forecasts",
    selection="forecasts",
    partitions_def=forecast_files,
    executor_def=dg.in_process_executor,  # one step: no second process per run
    description="Apply one dropped forecasts file.",
)

ingest_subscriptions = dg.define_asset_job(
    "ingest_subscriptions",
    selection="subscriptions",
    partitions_def=subscription_files,
    executor_def=dg.in_process_executor,
    # the run queue admits one run with this tag at a time (dagster.yaml), in submission order
    tags={"iska/serial": "subscriptions"},
    description="Apply one dropped additions, cancellations or updates file.",
)
