"""The resources, built once from the settings model (SPEC §10).

`SETTINGS` is the environment read once for this code location: the resources below and the
definition-time values (schedules' crons and time zone, the SMS hour, the sensor interval, retry
counts) all come from it, so the time zone of the ingest rules and of the schedules is one value.
A resource field's default is `DEFAULTS.<setting>`, never a literal of its own.
"""

import os
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.inbox.folders import InboxFolders
from iska_pipelines.lib.inbox.ingest import IngestRules
from iska_pipelines.lib.settings import DEFAULTS, Settings

SETTINGS = Settings.from_env()


class IskaDatabase(dg.ConfigurableResource):
    """ISKA's own SQL database; the schema is upgraded on first use."""

    url: str

    def engine(self) -> sa.Engine:
        return engine_for(self.url)


class IskaInbox(dg.ConfigurableResource):
    """The watched folder under ISKA_DATA_DIR."""

    data_dir: str
    settle_seconds: float = DEFAULTS.file_settle_seconds

    def folders(self) -> InboxFolders:
        folders = InboxFolders(Path(self.data_dir))
        folders.ensure()
        return folders


class IskaRules(dg.ConfigurableResource):
    """The data rules of SPEC §3–4 that operators may tune; the time zone is ISKA_TIMEZONE's,
    the one the schedules and partitions use."""

    max_reject_fraction: float = DEFAULTS.max_reject_fraction
    max_grid_distance_km: float = DEFAULTS.max_grid_distance_km
    max_future_minutes: int = DEFAULTS.max_future_minutes

    def ingest_rules(self) -> IngestRules:
        return IngestRules(
            self.max_reject_fraction,
            self.max_grid_distance_km,
            SETTINGS.timezone,
            max_future_minutes=self.max_future_minutes,
            languages=SETTINGS.catalog().codes,
            regions=SETTINGS.regions(),
        )


def from_env(names: tuple[str, ...], default: str) -> str | dg.EnvVar:
    """The first of `names` that is set, as an EnvVar (secrets and passwords stay out of the UI
    and run config), else the settings' default as a plain value."""
    for name in names:
        if os.environ.get(name, "").strip():
            return dg.EnvVar(name)
    return default


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "database": IskaDatabase(url=from_env(("ISKA_DATABASE_URL",), settings.database_url)),
        "inbox": IskaInbox(data_dir=str(settings.data_dir), settle_seconds=settings.file_settle_seconds),
        "rules": IskaRules(
            max_reject_fraction=settings.max_reject_fraction,
            max_grid_distance_km=settings.max_grid_distance_km,
            max_future_minutes=settings.max_future_minutes,
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(SETTINGS))
