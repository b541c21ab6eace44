"""Shared fixtures: a real database per test (SQLite and PostgreSQL), a temporary data folder,
a throwaway Dagster instance, and a driver that ticks the inbox sensor and runs what it asks."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from iska_pipelines.lib.db.engine import dispose_engine, engine_for, normalise_url

pytest_plugins = [
    "iska_pipelines_tests.simulator_server",
    "iska_pipelines_tests.api_server",
    "iska_pipelines_tests.consent_world",
    "iska_pipelines_tests.kannel",
    "iska_pipelines_tests.momo_world",
]

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
POSTGRES_URL = os.environ.get("ISKA_TEST_DATABASE_URL", "").strip()
REQUIRE_POSTGRES = os.environ.get("ISKA_REQUIRE_POSTGRES", "") in {"1", "true", "yes"}
_skipped_postgres: list[str] = []


def sample_path(name: str) -> Path:
    """One of the repository's sample files (samples/)."""
    path = SAMPLES / name
    if not path.exists():
        pytest.fail(f"sample file {path} is missing from the repository's samples/ folder")
    return path


@pytest.fixture
def postgres_databases(request):
    """Creates throwaway PostgreSQL databases on demand (`create(prefix) -> url`), drops them after.

    Skipped, and listed at the end of the run, when ISKA_TEST_DATABASE_URL is not set; CI sets
    ISKA_REQUIRE_POSTGRES so that a missing server fails instead.
    """
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("ISKA_REQUIRE_POSTGRES is set but ISKA_TEST_DATABASE_URL is not")
        _skipped_postgres.append(request.node.nodeid)
        pytest.skip("PostgreSQL test: set ISKA_TEST_DATABASE_URL to run it")
    admin = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create(prefix: str) -> sa.URL:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return sa.engine.make_url(normalise_url(POSTGRES_URL)).set(database=name)

    yield create
    with admin.connect() as connection:
        for name in created:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty ISKA database: a SQLite file, or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'iska.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_databases")("iska_test").render_as_string(hide_password=False)
    yield url
    dispose_engine(url)


@pytest.fixture
def engine(database_url) -> sa.Engine:
    return engine_for(database_url)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


@pytest.fixture
def iska(database_url, data_dir, instance):
    from iska_pipelines_tests.driver import Iska

    return Iska(database_url=database_url, data_dir=data_dir, instance=instance)


def pytest_terminal_summary(terminalreporter):
    if _skipped_postgres:
        terminalreporter.write_sep(
            "-", f"{len(_skipped_postgres)} PostgreSQL tests skipped (ISKA_TEST_DATABASE_URL not set)"
        )
        for nodeid in _skipped_postgres:
            terminalreporter.write_line(f"skipped on PostgreSQL: {nodeid}")
