"""Throwaway PostgreSQL databases for one benchmark run, created from an admin URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from iska_pipelines.lib.db.engine import dispose_engine, normalise_url

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("ISKA_BENCH_DATABASE_URL", "").strip() or DEFAULT_ADMIN_URL


def _admin() -> sa.Engine:
    return sa.create_engine(normalise_url(admin_url()), isolation_level="AUTOCOMMIT")


def create_database() -> str:
    name = f"iska_bench_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return (
        sa.engine.make_url(normalise_url(admin_url()))
        .set(database=name)
        .render_as_string(hide_password=False)
    )


def drop_database(url: str) -> None:
    dispose_engine(url)
    name = sa.engine.make_url(url).database
    admin = _admin()
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def scratch_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def server_version() -> str:
    admin = _admin()
    try:
        with admin.connect() as connection:
            return connection.exec_driver_sql("SHOW server_version").scalar_one()
    finally:
        admin.dispose()


def raw_connection(url: str):
    """A plain psycopg2 connection (for COPY and the per-row reference methods)."""
    import psycopg2

    parsed = sa.engine.make_url(url)
    return psycopg2.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        options="-c timezone=UTC",
    )
