"""Which job runs a partition key: a day (or a region's day, `2026-12-03|NG`) is `sms_job`'s, a
file key its kind's ingest job.

`iska rerun <key>` launches that job's partition through the Dagster webserver, like the
UI's "Launch run" does, so the run shows on the job's and the asset's partition pages.
"""

from __future__ import annotations

from datetime import date

from iska_pipelines.lib.inbox.folders import parse_key
from iska_pipelines.lib.vocabulary import FileKind

SMS_JOB = "sms_job"


def job_for_partition(key: str) -> str:
    """ValueError names what a key looks like when `key` is none of them."""
    try:
        date.fromisoformat(key.split("|", 1)[0])
        return SMS_JOB
    except ValueError:
        pass
    try:
        kind = parse_key(key).kind
    except ValueError:
        raise ValueError(
            f"{key!r} is neither a day (2026-12-03, or 2026-12-03|NG with regions: sms_job) nor a file partition key "
            "(<kind>-<name>-<hash>, as `iska files` lists them)"
        ) from None
    return "ingest_forecasts" if kind is FileKind.FORECASTS else "ingest_subscriptions"
