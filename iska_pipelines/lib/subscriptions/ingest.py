"""What applying a subscription file means inside its transaction (SPEC §4–5)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.forecasts.assignment import with_nearest_lids
from iska_pipelines.lib.inbox.ingest import Applied, IngestRules
from iska_pipelines.lib.inbox.reading import REASON, ROW, ParsedFile
from iska_pipelines.lib.subscriptions.events import OUTCOME
from iska_pipelines.lib.subscriptions.storage import apply_file_events
from iska_pipelines.lib.vocabulary import FileKind


def apply_subscriptions(
    connection: sa.Connection,
    parsed: ParsedFile,
    kind: FileKind,
    rules: IngestRules,
    rerun_of: datetime | None = None,
    detail: str = "",
) -> Applied:
    """`rerun_of`: when the file was first taken, if it was applied before (its partition is
    run again); None for a first run. `detail`: the file as the consent log names it."""
    events = parsed.good
    if kind is not FileKind.CANCELLATIONS:
        events = with_nearest_lids(connection, events, rules.max_grid_distance_km)
    today = datetime.now(ZoneInfo(rules.timezone)).date()
    result = apply_file_events(connection, events, kind, today, rerun_of, detail=detail)
    refused = result.outcomes.filter(pl.col(REASON).is_not_null())
    counts = {name: 0 for name in _COUNTED[kind]} | result.counts()
    counts["without_grid_point"] = _without_grid_point(connection)
    return Applied(
        rows_applied=result.outcomes.filter(pl.col(OUTCOME).is_not_null()).height,
        counts=counts,
        refused=parsed.refuse(refused.select(ROW, REASON)) if refused.height else None,
    )


def _without_grid_point(connection: sa.Connection) -> int:
    return int(
        connection.execute(
            sa.text("SELECT count(*) FROM subscriptions WHERE status = 'active' AND lid IS NULL")
        ).scalar_one()
    )


_COUNTED = {
    FileKind.ADDITIONS: ["new", "reactivated", "already_active", "unchanged"],
    FileKind.CANCELLATIONS: ["cancelled", "already_cancelled", "unchanged"],
    FileKind.UPDATES: ["updated", "unchanged"],
}
