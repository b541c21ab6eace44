"""What routes ask FastAPI for: the settings the app was built with, and ISKA's database."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Request

from iska_pipelines.lib.db.engine import engine_for, normalise_url
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.settings import Settings

BACKENDS = ("sqlite", "postgresql")
URL_EXAMPLES = "sqlite:///data/iska.sqlite3 or postgresql://user:password@host:5432/iska"
# the database is out of reach or refused the work for now: 503, not a fault of ours
UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def settings(request: Request) -> Settings:
    return request.app.state.settings


def database(request: Request) -> sa.Engine:
    """The app's engine (one pool per process; the schema is upgraded on first use)."""
    return engine_for(request.app.state.settings.database_url)


def unreachable(error: Exception) -> str:
    """Why the database did not answer, in the driver's words (first line; no password)."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"ISKA's database (ISKA_DATABASE_URL) does not answer: {reason[0] if reason else type(error).__name__}"


def check_database_url(url: str) -> None:
    """A URL that can never work stops start-up, naming the variable (SPEC §8, §10)."""
    try:
        parsed = sa.engine.make_url(normalise_url(url))
        if parsed.get_backend_name() not in BACKENDS:
            raise ValueError(f"ISKA runs on SQLite or PostgreSQL, not {parsed.get_backend_name()!r}")
        parsed.get_dialect().import_dbapi()
    except (sa.exc.ArgumentError, ValueError, ImportError) as error:
        raise ConfigurationError(
            f"ISKA_DATABASE_URL is not a usable database URL ({error}); "
            f"expected {URL_EXAMPLES} (see .env-example)"
        ) from None
