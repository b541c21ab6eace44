"""Bulk loading of a Polars frame into a temporary staging table.

PostgreSQL gets the rows through `COPY ... FROM STDIN` (the fastest path it has); SQLite gets
batched executemany. Everything after the load is the same set-based SQL on both.

`copy_binary` is the lean variant for wide numeric frames (the forecast grid): the rows go in
PostgreSQL's binary COPY format, encoded column-wise with NumPy in bounded chunks, so the server
parses no text (numbers, timestamps) and the client never holds the whole file as text.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from polars.datatypes import DataTypeClass

SQLITE_BATCH_ROWS = 50_000
BINARY_CHUNK_ROWS = 100_000
# a column's Polars type: a class (pl.Int64) or an instance (pl.Datetime("us", "UTC"))
ColumnType = pl.DataType | DataTypeClass


def _driver_cursor(connection: sa.Connection) -> Any:
    """The driver's own cursor: COPY (psycopg2's copy_expert) and executemany on SQLite's."""
    raw = connection.connection.dbapi_connection
    assert raw is not None, "the connection is closed"
    return raw.cursor()


def create_staging(connection: sa.Connection, name: str, columns: dict[str, str]) -> None:
    """A temporary table that lives until the end of the transaction (PostgreSQL) or is replaced
    on next use (SQLite, which has no ON COMMIT DROP). Either way a second use within the same
    transaction replaces it (settling several MoMo charges in one transaction stages each)."""
    cols = ", ".join(f"{col} {sqltype}" for col, sqltype in columns.items())
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{name}")
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
        with _driver_cursor(connection) as cursor:
            cursor.copy_expert(
                f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '')", buffer
            )
            # temporary tables get no statistics from autovacuum; the joins that follow need them
            cursor.execute(f"ANALYZE {name}")
        return frame.height
    frame = _sqlite_values(frame)
    placeholders = ", ".join("?" for _ in columns)
    statement = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({placeholders})"
    cursor = _driver_cursor(connection)
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


def read_frame(connection: sa.Connection, query: str, schema: Mapping[str, ColumnType]) -> pl.DataFrame:
    """A query's rows as a typed Polars frame; PostgreSQL streams them out with COPY.

    Dates, times and booleans travel as text/integers (their spelling differs between the two
    databases) and are parsed here once.
    """
    wire = {c: _wire_type(t) for c, t in schema.items()}
    if connection.dialect.name == "postgresql":
        buffer = io.BytesIO()
        with _driver_cursor(connection) as cursor:
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


def _wire_type(dtype: ColumnType) -> ColumnType:
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return pl.String
    if dtype == pl.Boolean:
        return pl.String
    return dtype


def _from_wire(column: str, dtype: ColumnType) -> pl.Expr:
    text = pl.col(column)
    if dtype == pl.Date:
        return text.str.slice(0, 10).str.to_date("%Y-%m-%d").alias(column)
    if dtype == pl.Boolean:
        return text.str.to_lowercase().is_in(["t", "true", "1"]).alias(column)
    # PostgreSQL (session time zone UTC) writes `+00`; SQLite stores naive UTC
    parsed = (
        text.str.replace("T", " ")
        .str.replace(r"(\+00(:?00)?|Z)$", "")
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f")
    )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        parsed = parsed.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
    return parsed.cast(dtype).alias(column)


# --- PostgreSQL binary COPY -------------------------------------------------------------------

_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_BINARY_TRAILER = struct.pack("!h", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_PG_EPOCH_DAYS = 10_957
_NUMERIC_BASE = 10_000
_NUMERIC_NEGATIVE = 0x4000


def copy_binary(connection: sa.Connection, name: str, frame: pl.DataFrame, freeze: bool = False) -> int:
    """COPY `frame` into table `name` (PostgreSQL) in binary format.

    The table's columns must have the types the frame's dtypes map to: Int64 -> BIGINT,
    Int32 -> INTEGER, Float64 -> DOUBLE PRECISION, Boolean -> BOOLEAN, Decimal -> NUMERIC
    (absolute value below 10^8), Datetime -> TIMESTAMP[TZ], Date -> DATE. `freeze` writes the
    rows frozen (the table must have been created or truncated in this transaction).
    """
    if frame.height == 0:
        return 0
    with _driver_cursor(connection) as cursor:
        cursor.copy_expert(
            f"COPY {name} ({', '.join(frame.columns)}) FROM STDIN "
            f"WITH (FORMAT binary{', FREEZE' if freeze else ''})",
            _ChunkReader(_binary_chunks(frame)),
        )
    return frame.height


_FIXED_TYPES: dict[ColumnType, str] = {pl.Int64: ">i8", pl.Int32: ">i4", pl.Float64: ">f8", pl.Boolean: "u1"}


def read_binary(connection: sa.Connection, query: str, schema: Mapping[str, ColumnType]) -> pl.DataFrame:
    """A query's rows through binary `COPY ... TO STDOUT` (PostgreSQL), decoded with NumPy.

    For NOT NULL fixed-width columns only: Int64, Int32, Float64, Boolean, and Datetime (read from
    TIMESTAMP[TZ]; naive UTC unless the dtype names a zone). Every row then has the same layout,
    so the whole answer is one structured array and no value is parsed as text.
    """
    fields: list[tuple[str, str]] = [("_fields", ">i2")]
    for column, dtype in schema.items():
        code = ">i8" if isinstance(dtype, pl.Datetime) else _FIXED_TYPES[dtype]
        fields += [(f"_len_{column}", ">i4"), (column, code)]
    layout = np.dtype(fields)
    buffer = io.BytesIO()
    with _driver_cursor(connection) as cursor:
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buffer)
    data = buffer.getvalue()
    buffer.close()
    start = len(_BINARY_HEADER) + struct.unpack_from("!i", data, len(_BINARY_HEADER) - 4)[0]
    count, rest = divmod(len(data) - start - len(_BINARY_TRAILER), layout.itemsize)
    rows = np.frombuffer(data, dtype=layout, count=count, offset=start)
    if rest or (
        count
        and (
            np.any(rows["_fields"] != len(schema))
            or any(np.any(rows[f"_len_{c}"] != layout[c].itemsize) for c in schema)
        )
    ):
        # a NULL is shorter than its field: the rows no longer line up (rest), or do by chance
        raise ValueError("read_binary: a NULL or variable-width value in the answer")
    columns = {}
    for column, dtype in schema.items():
        values = rows[column]
        if isinstance(dtype, pl.Datetime):
            micros = values.astype(np.int64) + _PG_EPOCH_US
            series = pl.Series(column, micros).cast(pl.Datetime("us"))
            if dtype.time_zone:
                series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
        elif dtype == pl.Boolean:
            series = pl.Series(column, values.astype(bool))
        else:
            series = pl.Series(column, values.astype(values.dtype.newbyteorder("=")))
        columns[column] = series
    return pl.DataFrame(columns, schema=schema)


class _ChunkReader(io.RawIOBase):
    """A file-like view over byte chunks, for `copy_expert` to read from."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:  # a writable buffer
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _binary_chunks(frame: pl.DataFrame) -> Iterator[bytes]:
    yield _BINARY_HEADER
    for chunk in frame.iter_slices(BINARY_CHUNK_ROWS):
        yield _encode_rows(chunk)
    yield _BINARY_TRAILER


def _encode_rows(frame: pl.DataFrame) -> bytes:
    """Every row as: field count, then per field its length (-1 for NULL) and its bytes."""
    columns = [_encode_column(frame[name]) for name in frame.columns]
    rows = frame.height
    width = 2 + sum(4 + data.shape[1] for data, _ in columns)
    matrix = np.empty((rows, width), dtype=np.uint8)
    matrix[:, :2] = np.frombuffer(struct.pack("!h", len(columns)), dtype=np.uint8)
    keep = None
    offset = 2
    for data, nulls in columns:
        size = data.shape[1]
        lengths = np.full(rows, size, dtype=">i4")
        if nulls is not None:
            lengths[nulls] = -1
            if keep is None:
                keep = np.ones((rows, width), dtype=bool)
            keep[np.ix_(nulls, np.arange(offset + 4, offset + 4 + size))] = False
        matrix[:, offset : offset + 4] = lengths.view(np.uint8).reshape(rows, 4)
        matrix[:, offset + 4 : offset + 4 + size] = data
        offset += 4 + size
    return (matrix[keep] if keep is not None else matrix.ravel()).tobytes()


def _encode_column(series: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """(rows x bytes matrix in network order, row numbers of NULLs or None)."""
    dtype = series.dtype
    null_rows = np.flatnonzero(series.is_null().to_numpy()) if series.null_count() else None
    if dtype == pl.Int64:
        values = series.fill_null(0).to_numpy().astype(">i8")
    elif dtype == pl.Int32:
        values = series.fill_null(0).to_numpy().astype(">i4")
    elif dtype == pl.Float64:
        values = series.fill_null(0.0).to_numpy().astype(">f8")
    elif dtype == pl.Boolean:
        values = series.fill_null(False).to_numpy().astype(np.uint8)
    elif isinstance(dtype, pl.Datetime):
        micros = series.dt.epoch("us").fill_null(0).to_numpy()
        values = (micros - _PG_EPOCH_US).astype(">i8")
    elif dtype == pl.Date:
        days = series.cast(pl.Int32).fill_null(0).to_numpy()
        values = (days - _PG_EPOCH_DAYS).astype(">i4")
    elif isinstance(dtype, pl.Decimal):
        return _encode_numeric(series, dtype.scale), null_rows
    else:
        raise TypeError(f"no binary COPY encoding for column {series.name} of type {dtype}")
    return values.view(np.uint8).reshape(len(series), -1), null_rows


def _encode_numeric(series: pl.Series, scale: int) -> np.ndarray:
    """NUMERIC as three base-10000 digits (weight 1, 0, -1) and the column's scale.

    PostgreSQL strips the leading and trailing zero digits itself, so every value can take the
    same width; that covers scales up to 4 and absolute values below 10^8 (NUMERIC(12, 4)).
    """
    if scale > 4:
        raise TypeError(f"binary COPY encodes NUMERIC with up to 4 decimals, {series.name} has {scale}")
    units = series.to_physical().cast(pl.Int64).fill_null(0).to_numpy() * 10 ** (4 - scale)
    magnitude = np.abs(units)
    if magnitude.size and magnitude.max() >= 10**12:
        raise ValueError(f"{series.name}: a value of 10^8 or more does not fit NUMERIC(12, 4)")
    fields = np.empty((len(units), 7), dtype=">i2")
    fields[:, 0] = 3  # digits
    fields[:, 1] = 1  # weight of the first digit
    fields[:, 2] = np.where(units < 0, _NUMERIC_NEGATIVE, 0)
    fields[:, 3] = scale
    fields[:, 4] = magnitude // _NUMERIC_BASE**2
    fields[:, 5] = (magnitude // _NUMERIC_BASE) % _NUMERIC_BASE
    fields[:, 6] = magnitude % _NUMERIC_BASE
    return fields.view(np.uint8).reshape(len(units), 14)


def insert_rows(
    connection: sa.Connection, table: str, columns: list[str], rows: Sequence[tuple[object, ...]]
) -> int:
    """Append plain rows (tuples in `columns` order) to `table` in one statement.

    PostgreSQL: `COPY ... FROM STDIN` in text format (no SQL compiled or parsed per row);
    SQLite: the driver's executemany. Values are str, int, float, date, aware datetime or None.
    The gateway runs write their outcomes this way, a batch at a time, because SQLAlchemy's
    multi-row INSERT costs about as much client CPU per row as the gateway call itself.
    """
    if not rows:
        return 0
    raw = connection.connection.dbapi_connection
    assert raw is not None
    names = ", ".join(columns)
    cursor: Any = raw.cursor()
    try:
        if connection.dialect.name == "postgresql":
            text = "".join("\t".join(_copy_text(v) for v in row) + "\n" for row in rows)
            cursor.copy_expert(f"COPY {table} ({names}) FROM STDIN", io.StringIO(text))
        else:
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})",
                [tuple(_sqlite_value(v) for v in row) for row in rows],
            )
    finally:
        cursor.close()
    return len(rows)


def stage_rows(
    connection: sa.Connection, name: str, columns: dict[str, str], rows: Sequence[tuple[object, ...]]
) -> int:
    """A staging table (`create_staging`) holding `rows`, analysed on PostgreSQL so the join
    that follows uses the index of the big table rather than scanning it."""
    create_staging(connection, name, columns)
    count = insert_rows(connection, name, list(columns), rows)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ANALYZE {name}")
    return count


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)  # int, float, date (ISO)


def _sqlite_value(value: object) -> object:
    """As SQLAlchemy's SQLite types write them: UTC timestamps without offset, ISO dates."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value
