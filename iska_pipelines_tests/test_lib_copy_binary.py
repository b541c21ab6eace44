"""PostgreSQL's binary COPY format, our encoder and decoder (lib/db/bulk.py), as round trips.

The codec is hand-written (NumPy, column-wise) because it is the fast path of the forecast grid;
these properties hold it to PostgreSQL's own reading and writing of the same values: what
`copy_binary` writes, PostgreSQL stores exactly (read back as text through SQLAlchemy), and what
`read_binary` decodes equals what PostgreSQL answers the ordinary way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iska_pipelines.lib.db.bulk import copy_binary, read_binary

TABLE = "copy_round_trip"
COLUMNS = {
    "i64": ("BIGINT", pl.Int64),
    "i32": ("INTEGER", pl.Int32),
    "f64": ("DOUBLE PRECISION", pl.Float64),
    "flag": ("BOOLEAN", pl.Boolean),
    "num": ("NUMERIC(12, 4)", pl.Decimal(12, 4)),
    "at": ("TIMESTAMP WITH TIME ZONE", pl.Datetime("us", "UTC")),
    "day": ("DATE", pl.Date),
}
FIXED = ["i64", "i32", "f64", "flag", "at"]  # what read_binary decodes (NOT NULL, fixed width)

instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
numerics = st.decimals(
    min_value=Decimal("-99999999.9999"),
    max_value=Decimal("99999999.9999"),
    places=4,
    allow_nan=False,
    allow_infinity=False,
)
VALUES = {
    "i64": st.integers(-(2**63), 2**63 - 1),
    "i32": st.integers(-(2**31), 2**31 - 1),
    "f64": st.floats(allow_nan=False, allow_infinity=False, width=64),
    "flag": st.booleans(),
    "num": numerics,
    "at": instants,
    "day": st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
}


def rows_of(nullable: bool):
    def value(column: str):
        return st.none() | VALUES[column] if nullable else VALUES[column]

    return st.lists(st.fixed_dictionaries({c: value(c) for c in COLUMNS}), max_size=40)


@pytest.fixture
def postgres(postgres_databases) -> sa.Engine:
    """One throwaway database per test; a property's examples share it (each makes its table anew)."""
    engine = sa.create_engine(postgres_databases("iska_copy"))
    yield engine
    engine.dispose()


def fresh_table(connection: sa.Connection) -> None:
    columns = ", ".join(f"{name} {sql}" for name, (sql, _) in COLUMNS.items())
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
    connection.exec_driver_sql(f"CREATE TABLE {TABLE} (n INTEGER, {columns})")


def frame_of(rows: list[dict]) -> pl.DataFrame:
    schema = {"n": pl.Int32} | {name: dtype for name, (_, dtype) in COLUMNS.items()}
    return pl.DataFrame([{"n": i} | row for i, row in enumerate(rows)], schema=schema, orient="row")


def stored(connection: sa.Connection) -> list[tuple]:
    names = ", ".join(COLUMNS)
    return [tuple(row) for row in connection.exec_driver_sql(f"SELECT {names} FROM {TABLE} ORDER BY n")]


def expected(rows: list[dict]) -> list[tuple]:
    def normal(column: str, value):
        if value is None:
            return None
        if column == "num":
            return value.quantize(Decimal("0.0001"))
        return value

    return [tuple(normal(c, row[c]) for c in COLUMNS) for row in rows]


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=rows_of(nullable=True))
def test_what_copy_binary_writes_postgresql_stores_exactly(postgres, rows):
    with postgres.begin() as connection:
        fresh_table(connection)
        assert copy_binary(connection, TABLE, frame_of(rows)) == len(rows)
        assert stored(connection) == expected(rows)


@SETTINGS
@given(rows=rows_of(nullable=False))
def test_what_read_binary_decodes_equals_postgresql_s_own_answer(postgres, rows):
    with postgres.begin() as connection:
        fresh_table(connection)
        copy_binary(connection, TABLE, frame_of(rows))
        schema = {c: COLUMNS[c][1] for c in FIXED}
        decoded = read_binary(connection, f"SELECT {', '.join(FIXED)} FROM {TABLE} ORDER BY n", schema)
        plain = [
            tuple(row)
            for row in connection.exec_driver_sql(f"SELECT {', '.join(FIXED)} FROM {TABLE} ORDER BY n")
        ]
    assert decoded.rows() == plain


def test_read_binary_refuses_a_null_instead_of_misreading_it(postgres):
    with postgres.begin() as connection:
        fresh_table(connection)
        copy_binary(connection, TABLE, frame_of([{c: None for c in COLUMNS}]))
        with pytest.raises(ValueError, match="NULL"):
            read_binary(connection, f"SELECT i64 FROM {TABLE}", {"i64": pl.Int64})


def test_a_numeric_beyond_numeric_12_4_fails_the_copy_naming_its_column_and_stores_nothing(postgres):
    with postgres.begin() as connection:
        fresh_table(connection)
    fine = frame_of([dict.fromkeys(COLUMNS) | {"num": Decimal("1.5")}]).select("num")
    too_big = pl.DataFrame({"num": [Decimal("100000000")]}, schema={"num": pl.Decimal(20, 4)})
    with pytest.raises(Exception, match=r"num: a value of 10\^8 or more does not fit NUMERIC"):
        with postgres.begin() as connection:
            copy_binary(connection, TABLE, fine)
            copy_binary(connection, TABLE, too_big)
    with postgres.connect() as connection:
        assert stored(connection) == []


def test_instants_keep_their_microseconds_across_the_epoch_of_2000(postgres):
    """PostgreSQL counts from 2000-01-01; values on both sides of it must survive."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    near = [epoch + timedelta(microseconds=d) for d in (-1_000_001, -1, 0, 1, 999_999)]
    rows = [dict.fromkeys(COLUMNS) | {"at": at} for at in near]
    with postgres.begin() as connection:
        fresh_table(connection)
        copy_binary(connection, TABLE, frame_of(rows))
        assert [r[list(COLUMNS).index("at")] for r in stored(connection)] == near
