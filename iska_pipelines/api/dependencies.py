"""What routes ask FastAPI for: the settings the app was built with, and ISKA's database."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Request

from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.storage.database import engine_for


def settings(request: Request) -> Settings:
    return request.app.state.settings


def database(request: Request) -> sa.Engine:
    """The app's engine (one pool per process; the schema is upgraded on first use)."""
    return engine_for(request.app.state.settings.database_url)
