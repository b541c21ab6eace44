"""Files the sensor sets aside without a run: duplicates and names that route nowhere.

They get an `ingested_files` row of their own (outcome `duplicate` or `unknown`), so the day's
`file_intake` counts them, `iska files` and the status page list them, and `task_status` can say
which earlier file an uploaded duplicate matched. The record of the file they repeat is never
touched.
"""

from __future__ import annotations

import sqlalchemy as sa

from iska_pipelines.lib.inbox.files import FileRecord, record_set_aside
from iska_pipelines.lib.inbox.folders import HASH_CHARS, UNKNOWN, DroppedFile, partition_key, sanitise
from iska_pipelines.lib.vocabulary import FileOutcome


def duplicate_detail(same_as: str) -> str:
    return f"same content as {same_as}, not applied again"


def record_duplicate(engine: sa.Engine, dropped: DroppedFile, sha: str, same_as: str) -> str:
    """Returns the duplicate's own key (the one an upload's task_id names)."""
    assert dropped.kind is not None, "only a file of a known kind is found a duplicate"
    key = partition_key(dropped.kind, dropped.path.name, sha)
    if key != same_as:
        with engine.begin() as connection:
            record_set_aside(
                connection,
                FileRecord(
                    partition_key=key,
                    kind=str(dropped.kind),
                    name=dropped.path.name,
                    sha256=sha,
                    outcome=FileOutcome.DUPLICATE,
                    error=duplicate_detail(same_as),
                ),
            )
    return key


def record_unknown(engine: sa.Engine, dropped: DroppedFile, sha: str, error: str) -> str:
    key = f"{UNKNOWN}-{sanitise(dropped.path.name)}-{sha[:HASH_CHARS]}"
    with engine.begin() as connection:
        record_set_aside(
            connection,
            FileRecord(
                partition_key=key,
                kind=UNKNOWN,
                name=dropped.path.name,
                sha256=sha,
                outcome=FileOutcome.UNKNOWN,
                error=error,
            ),
        )
    return key
