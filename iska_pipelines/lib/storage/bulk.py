"""Bulk loading of a Polars frame into a temporary staging table.

PostgreSQL gets the rows through `COPY ... FROM STDIN` (the fastest path it has); SQLite gets
batched executemany. Everything after the load is the same set-based SQL on both.
"""

from __future__ import annotations

import io

import polars as pl
import sqlalchemy as sa

SQLITE_BATCH_ROWS = 50_000


def create_staging(connection: sa.Connection, name: str, columns: dict[str, str]) -> None:
    """A temporary table that lives until the end of the transaction (PostgreSQL) or is replaced
    on next use (SQLite, which has no ON COMMIT DROP)."""
    cols = ", ".join(f"{col} {sqltype}" for col, sqltype in columns.items())
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP")
    else:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{name}")
        connection.exec_driver_sql(f"CREATE TEMP TABLE {name} ({cols})")


def load_staging(connection: sa.Connection, name: str, frame: pl.DataFrame) -> int:
    """Copy every row of `frame` (columns named as in the staging table) into it."""
    if frame.height == 0:
        return 0
    columns = frame.columns
    if connection.dialect.name == "postgresql":
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="", quote_style="necessary")
        buffer.seek(0)
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '')", buffer
            )
            # temporary tables get no statistics from autovacuum; the joins that follow need them
            cursor.execute(f"ANALYZE {name}")
        return frame.height
    frame = _sqlite_values(frame)
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({placeholders})"
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        for batch in frame.iter_slices(SQLITE_BATCH_ROWS):
            cursor.executemany(statement, batch.rows())
    finally:
        cursor.close()
    return frame.height


def _sqlite_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates and times as the strings SQLAlchemy's SQLite types write, so SQL compares them
    consistently with rows written through SQLAlchemy (UTC, microseconds)."""
    conversions = []
    for column, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            expr = pl.col(column)
            if dtype.time_zone is not None:
                expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            conversions.append(expr.dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias(column))
        elif dtype == pl.Date:
            conversions.append(pl.col(column).dt.strftime("%Y-%m-%d").alias(column))
        elif dtype == pl.Decimal or isinstance(dtype, pl.Decimal):
            conversions.append(pl.col(column).cast(pl.String).alias(column))
    return frame.with_columns(conversions) if conversions else frame


def read_frame(connection: sa.Connection, query: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A query's rows as a typed Polars frame; PostgreSQL streams them out with COPY.

    Dates, times and booleans travel as text/integers (their spelling differs between the two
    databases) and are parsed here once.
    """
    wire = {c: _wire_type(t) for c, t in schema.items()}
    if connection.dialect.name == "postgresql":
        buffer = io.BytesIO()
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER false)", buffer)
        if buffer.tell() == 0:
            frame = pl.DataFrame(schema=wire)
        else:
            buffer.seek(0)
            frame = pl.read_csv(buffer, has_header=False, new_columns=list(wire), schema=wire)
    else:
        rows = connection.exec_driver_sql(query).fetchall()
        frame = pl.DataFrame(rows, schema=wire, orient="row", strict=False)
    return frame.with_columns([_from_wire(c, t) for c, t in schema.items() if t != wire[c]])


def _wire_type(dtype: pl.DataType) -> pl.DataType:
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return pl.String
    if dtype == pl.Boolean:
        return pl.String
    return dtype


def _from_wire(column: str, dtype: pl.DataType) -> pl.Expr:
    text = pl.col(column)
    if dtype == pl.Date:
        return text.str.slice(0, 10).str.to_date("%Y-%m-%d").alias(column)
    if dtype == pl.Boolean:
        return text.str.to_lowercase().is_in(["t", "true", "1"]).alias(column)
    # PostgreSQL (session time zone UTC) writes `+00`; SQLite stores naive UTC
    parsed = (text.str.replace("T", " ").str.replace(r"(\+00(:?00)?|Z)$", "")
              .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f"))
    if dtype.time_zone:
        parsed = parsed.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
    return parsed.cast(dtype).alias(column)
