"""What applying a forecasts file means inside its transaction (SPEC §4)."""

import sqlalchemy as sa

from iska_pipelines.lib.forecasts.assignment import reassign_active
from iska_pipelines.lib.forecasts.storage import upsert_forecasts
from iska_pipelines.lib.inbox.ingest import Applied, IngestRules
from iska_pipelines.lib.inbox.reading import ParsedFile


def apply_forecasts(connection: sa.Connection, parsed: ParsedFile, rules: IngestRules) -> Applied:
    """Unchanged rows stay as they are, so a re-run of the file changes nothing."""
    upsert = upsert_forecasts(connection, parsed.good)
    reassigned = reassign_active(connection, rules.max_grid_distance_km) if upsert.grid_changed else 0
    return Applied(
        rows_applied=parsed.good.height,
        counts={
            "rows_inserted": upsert.rows_inserted,
            "rows_updated": upsert.rows_updated,
            "subscriptions_reassigned": reassigned,
        },
    )
