"""One dynamic partition per dropped file; the partition grid is the status of every file."""

import dagster as dg

from iska_pipelines.lib.vocabulary import FileKind

FORECAST_FILES, SUBSCRIPTION_FILES = "forecast_files", "subscription_files"
forecast_files = dg.DynamicPartitionsDefinition(name=FORECAST_FILES)
subscription_files = dg.DynamicPartitionsDefinition(name=SUBSCRIPTION_FILES)


def partitions_for(kind: FileKind) -> dg.DynamicPartitionsDefinition:
    return forecast_files if kind is FileKind.FORECASTS else subscription_files


def partitions_name(kind: FileKind) -> str:
    return FORECAST_FILES if kind is FileKind.FORECASTS else SUBSCRIPTION_FILES
