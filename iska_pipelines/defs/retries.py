"""Step retry policy shared by ingest, billing and SMS steps (MAX_TASK_RETRY)."""

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS

STEP_RETRY = dg.RetryPolicy(
    max_retries=SETTINGS.max_task_retry, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
