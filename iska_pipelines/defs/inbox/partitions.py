"""One dynamic partition per dropped file; the partition grid is the status of every file."""

import dagster as dg

from iska_pipelines.lib.vocabulary import FileKind

forecast_files = dg.DynamicPartitionsDefinition(name="forecast_files")
subscription_files = dg.DynamicPartitionsDefinition(name="subscription_files")


def partitions_for(kind: FileKind) -> dg.DynamicPartitionsDefinition:
    return forecast_files if kind is FileKind.FORECASTS else subscription_files
