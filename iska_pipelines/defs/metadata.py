"""Turning an applied file into run metadata the UI can plot and show."""

from typing import Any

import dagster as dg
import polars as pl

from iska_pipelines.lib.inbox.ingest import FileApplied


def preview_table(frame: pl.DataFrame) -> dg.MetadataValue:
    records = [
        dg.TableRecord(
            {
                k: (v if isinstance(v, (int, float, bool, str)) or v is None else str(v))
                for k, v in row.items()
            }
        )
        for row in frame.iter_rows(named=True)
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
    )
    return dg.MetadataValue.table(records=records, schema=schema)


def file_metadata(applied: FileApplied) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": applied.rows_applied,
        "rows_in": applied.rows_in,
        "rows_applied": applied.rows_applied,
        "rows_refused": applied.rows_refused,
        **{name: int(value) for name, value in applied.counts.items()},
        **{f"refused_{reason}": n for reason, n in applied.refused_by_reason.items()},
        "file": applied.name,
        "archive_path": dg.MetadataValue.path(str(applied.archived)),
        "preview": preview_table(applied.preview),
    }
    if applied.rejected_rows:
        metadata["rejected_rows_path"] = dg.MetadataValue.path(str(applied.rejected_rows))
    return metadata


def refused_rows_check(applied: FileApplied, check_name: str = "no_refused_rows") -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=applied.rows_refused == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_refused": applied.rows_refused,
            **{f"refused_{r}": n for r, n in applied.refused_by_reason.items()},
        },
    )
