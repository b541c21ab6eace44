"""How a refused or missing file fails its run: visibly, and without pointless retries."""

from contextlib import contextmanager

import dagster as dg

from iska_pipelines.lib.csv.reading import FileRefused


@contextmanager
def refusals_fail_without_retry():
    try:
        yield
    except FileRefused as refusal:
        raise dg.Failure(description=f"file refused: {refusal}", allow_retries=False) from refusal
    except FileNotFoundError as missing:
        raise dg.Failure(description=str(missing), allow_retries=False) from missing
