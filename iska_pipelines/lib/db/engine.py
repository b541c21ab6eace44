"""Engines for ISKA's database, and the automatic schema upgrade before first use."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# any constant works; it only has to be the same for every ISKA process on the server
_MIGRATION_LOCK_ID = 0x15CA_0001
SQLITE_BUSY_TIMEOUT_MS = 30_000

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """`postgresql://` would select psycopg 3 under SQLAlchemy 2.1; ISKA ships psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL + busy timeout so the daemon, runs and the API can write to one file at once.

    pysqlite's own transaction handling is switched off and every transaction starts with
    BEGIN IMMEDIATE: the write lock is taken up front, so two writers queue behind the busy
    timeout instead of failing on a lock upgrade.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_iska_engine(url: str, **kwargs: Any) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        _configure_sqlite(engine)
        return engine
    # UTC sessions: timestamps read back through COPY have one spelling
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"}, **kwargs)


def upgrade_schema(engine: sa.Engine) -> None:
    """Bring the schema to the newest Alembic revision (safe with several processes at once)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def engine_for(url: str) -> sa.Engine:
    """One engine per URL and process, upgraded to the newest schema on first use."""
    url = normalise_url(url)
    with _migrate_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_iska_engine(url)
            if url not in _migrated:
                upgrade_schema(engine)
                _migrated.add(url)
            _engines[url] = engine
    return engine


def dispose_engine(url: str) -> None:
    engine = _engines.pop(normalise_url(url), None)
    _migrated.discard(normalise_url(url))
    if engine is not None:
        engine.dispose()


_engines: dict[str, sa.Engine] = {}
