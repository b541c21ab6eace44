"""How old the forecast grid is: the newest issue time among the active points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.db.timestamps import as_utc


@dataclass(frozen=True)
class GridAge:
    points: int  # active grid points
    issued: datetime | None  # newest coalesce(issued_at, updated_at) of an active point

    def age_hours(self, at: datetime) -> float | None:
        return None if self.issued is None else round((at - self.issued).total_seconds() / 3600, 2)


def grid_age(connection: sa.Connection) -> GridAge:
    points, issued = connection.execute(
        sa.text(
            "SELECT count(*), max(coalesce(issued_at, updated_at)) FROM forecasts WHERE is_active"
        ).columns(sa.column("n"), sa.column("issued", TIMESTAMP))
    ).one()
    return GridAge(int(points), as_utc(issued) if issued is not None else None)
