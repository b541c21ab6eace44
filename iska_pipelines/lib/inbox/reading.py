"""Reading a dropped CSV by header name, and the bookkeeping of refused rows (SPEC §3).

Every column is read as text first: validation then knows the exact value each row carried,
and `<name>.rejected.csv` repeats the row as it came.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

ROW = "_row"
REASON = "reason"
TS_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")
# after the time: `Z`/`z`, or a sign with hours and optional minutes (`+01`, `+0100`, `+01:00`)
TS_OFFSET = r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
MAX_OFFSET_MINUTES = 14 * 60
EVENT = pl.Datetime("us", "UTC")


class FileRefused(Exception):
    """The whole file is refused (SPEC §3); the message goes into `<name>.error.txt`."""


@dataclass
class ParsedFile:
    """The outcome of reading one file: typed good rows and refused rows with their reason."""

    good: pl.DataFrame
    refused: pl.DataFrame  # `_row`, the original columns and `reason`, in file order
    rows_in: int
    source: pl.DataFrame | None = None  # the file as text, for refusals found later
    originals: dict[str, str] | None = None

    def refuse(self, bad: pl.DataFrame) -> pl.DataFrame:
        """Rows refused after parsing (`_row`, `reason`) as the file had them."""
        assert self.source is not None and self.originals is not None, "read without its source"
        return original_rows(bad, self.source, self.originals)

    @property
    def rows_refused(self) -> int:
        return self.refused.height

    def refused_by_reason(self) -> dict[str, int]:
        if self.refused.height == 0:
            return {}
        counts = self.refused.group_by(REASON).len().sort(REASON)
        return dict(zip(counts[REASON].to_list(), counts["len"].to_list(), strict=True))


def normalise_header(name: str) -> str:
    return name.replace("\ufeff", "").strip().strip('"').strip().lower()


def read_text_table(path: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """All columns as strings with normalised header names, plus the original names.

    Blank lines (empty, or only spaces and commas) are dropped here: they are not rows.
    Raises FileRefused for a file that is empty or cannot be read as UTF-8 CSV.
    """
    if path.stat().st_size == 0:
        raise FileRefused(f"{path.name} is empty (0 bytes): nothing to apply")
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8", truncate_ragged_lines=True)
    except pl.exceptions.NoDataError:
        raise FileRefused(f"{path.name} is empty: no header row") from None
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise FileRefused(f"{path.name} is not a readable UTF-8 CSV file: {error}") from None
    frame = _without_blank_lines(frame.with_columns(pl.all().str.strip_chars()))
    originals: dict[str, str] = {}
    renamed: dict[str, str] = {}
    for column in frame.columns:
        normal = normalise_header(column)
        if not normal or normal in originals:
            continue  # blank or repeated header: the first column of that name counts
        originals[normal] = column.replace("\ufeff", "")
        renamed[column] = normal
    frame = frame.select([pl.col(old).alias(new) for old, new in renamed.items()]).with_row_index(ROW)
    return frame, originals


def _without_blank_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """Drops the rows whose every cell (ignored columns included) is missing or empty."""
    if frame.width == 0 or frame.height == 0:
        return frame
    has_text = pl.any_horizontal([pl.col(c).is_not_null() & (pl.col(c) != "") for c in frame.columns])
    kept = frame.select(has_text.alias("_kept")).to_series()
    return frame if kept.all() else frame.filter(kept)


def require_columns(frame: pl.DataFrame, required: list[str], name: str, kind: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        present = ", ".join(c for c in frame.columns if c != ROW) or "none"
        raise FileRefused(
            f"{name} is not a {kind} file: missing column(s) {', '.join(missing)} (columns found: {present})"
        )


def first_failure(checks: list[tuple[pl.Expr, str]]) -> pl.Expr:
    """The first reason whose check fails for the row, else null."""
    expr = pl.lit(None, dtype=pl.String)
    for failed, reason in reversed(checks):
        expr = pl.when(failed).then(pl.lit(reason)).otherwise(expr)
    return expr


def split_refused(
    checked: pl.DataFrame, original: pl.DataFrame, originals: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows on their `reason` column: (good, refused as the file had them + reason)."""
    good = checked.filter(pl.col(REASON).is_null()).drop(REASON)
    bad = checked.filter(pl.col(REASON).is_not_null()).select(ROW, REASON)
    return good, original_rows(bad, original, originals)


def original_rows(bad: pl.DataFrame, original: pl.DataFrame, originals: dict[str, str]) -> pl.DataFrame:
    return (
        original.join(bad.select(ROW, REASON), on=ROW, how="inner")
        .sort(ROW)
        .select(
            [pl.col(ROW)]
            + [pl.col(normal).alias(orig) for normal, orig in originals.items()]
            + [pl.col(REASON)]
        )
    )


def enforce_reject_limit(parsed: ParsedFile, max_fraction: float, name: str) -> None:
    if parsed.rows_in == 0:
        return
    fraction = parsed.rows_refused / parsed.rows_in
    if fraction > max_fraction:
        reasons = ", ".join(f"{n} {reason}" for reason, n in parsed.refused_by_reason().items())
        raise FileRefused(
            f"{name}: {parsed.rows_refused} of {parsed.rows_in} rows refused ({fraction:.0%}, "
            f"more than ISKA_MAX_REJECT_FRACTION={max_fraction:g}): {reasons}. "
            "Nothing from this file was applied."
        )


# --- value parsing shared by the file kinds -------------------------------------------------

# ASCII digits only: the regex engine's \d would also take Arabic-Indic or full-width digits.
# Up to 4 decimal places; trailing zeros past them do not count (`0.10500` is `0.105`).
DECIMAL_4 = r"^[+-]?([0-9]+(\.[0-9]{0,4}0*)?|\.[0-9]{1,4}0*)$"
NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def as_float(column: str) -> pl.Expr:
    text = pl.col(column)
    return pl.when(text.str.contains(NUMBER)).then(text.cast(pl.Float64, strict=False))


def latitude_invalid(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | expr.is_nan() | (expr < -90) | (expr > 90)


def longitude_invalid(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | expr.is_nan() | (expr < -180) | (expr > 180)


# --- timestamps, as every file kind writes them ---------------------------------------------


def parse_timestamp(column: str, timezone: str) -> pl.Expr:
    """`YYYY-MM-DD HH:MM:SS` or ISO 8601 (`T`, `t` or space; offsets `Z`/`z`, `+01`, `+0100`,
    `+01:00`, at most ±14:00) -> UTC; without an offset the time is local to `timezone`."""
    return pl.col(column).map_batches(lambda texts: timestamps(texts, timezone), return_dtype=EVENT)


def timestamps(texts: pl.Series, timezone: str) -> pl.Series:
    """The column at once, in stages: each intermediate (the text, its offset) is computed
    once, where one nested expression would recompute it at every use."""
    stripped = pl.col("text").str.strip_chars()
    frame = texts.to_frame("text").select(
        text=pl.when(stripped.str.slice(10, 1).is_in(["T", "t"]))  # where YYYY-MM-DD ends
        .then(stripped.str.slice(0, 10) + " " + stripped.str.slice(11))
        .otherwise(stripped)
    )
    frame = frame.with_columns(offset=pl.col("text").str.slice(10).str.extract(TS_OFFSET))
    text, offset = pl.col("text"), pl.col("offset")
    digits = offset.str.replace_all(r"[^0-9]", "")
    frame = frame.with_columns(
        body=pl.when(offset.is_not_null())
        .then(text.str.slice(0, text.str.len_chars() - offset.str.len_chars()).str.strip_chars())
        .otherwise(text),
        hours=digits.str.slice(0, 2).cast(pl.Int64, strict=False),
        minutes=digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0),
    )
    body, minutes, east = pl.col("body"), pl.col("minutes"), pl.col("hours") * 60 + pl.col("minutes")
    frame = frame.select(
        "offset",
        naive=pl.coalesce([body.str.strptime(pl.Datetime("us"), fmt, strict=False) for fmt in TS_FORMATS]),
        offset_minutes=pl.when(offset.str.to_lowercase() == "z")
        .then(0)
        .when((minutes < 60) & (east <= MAX_OFFSET_MINUTES))
        .then(pl.when(offset.str.starts_with("-")).then(-east).otherwise(east)),
    )  # offset_minutes: null (invalid_ts) beyond ±14:00 or with 60 minutes or more
    naive = pl.col("naive")
    with_offset = (naive - pl.duration(minutes=pl.col("offset_minutes"))).dt.replace_time_zone("UTC")
    local = naive.dt.replace_time_zone(
        timezone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    return frame.select(
        pl.when(pl.col("offset").is_not_null())
        .then(with_offset)
        .otherwise(local)
        .cast(EVENT)
        .alias(texts.name)
    ).to_series()
