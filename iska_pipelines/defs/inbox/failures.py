"""How a refused or missing file fails its run: visibly, and without pointless retries.

A refused file's reason goes where the operator looks first: an observation on its own
partition (the partition's page in the UI shows it, no stack trace to read) and the failure's
metadata, beside `rejected/<kind>/<name>.error.txt`.
"""

from collections.abc import Callable
from contextlib import contextmanager

import dagster as dg

from iska_pipelines.lib.inbox.reading import FileRefused


@contextmanager
def refusals_fail_without_retry(
    context: dg.AssetExecutionContext | None = None, after_refusal: Callable[[], None] | None = None
):
    try:
        yield
    except FileRefused as refusal:
        metadata = {"outcome": "refused", "reason": str(refusal)}
        if context is not None:
            context.log_event(
                dg.AssetObservation(
                    asset_key=context.asset_key, partition=context.partition_key, metadata=metadata
                )
            )
        if after_refusal is not None:
            after_refusal()
        raise dg.Failure(
            description=f"file refused: {refusal}", metadata=metadata, allow_retries=False
        ) from refusal
    except FileNotFoundError as missing:
        raise dg.Failure(description=str(missing), allow_retries=False) from missing
