"""Applying one dropped file: parse, apply in one transaction, then archive (SPEC §2–3).

The order matters for crash safety: nothing moves until the transaction has committed, so a
crash leaves the file in the inbox and nothing of it in the database; re-running applies it once.

Re-running an applied partition applies its rows again (after a database restore that brings
them back) but changes nothing that is already there: its events are stale or unchanged
(lib/events.py), and the file's `ingested_files` row and `.rejected.csv` keep the account of
when the file was applied. What the re-run itself found is in its run's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.csv.reading import ROW, FileRefused, ParsedFile, enforce_reject_limit
from iska_pipelines.lib.inbox import InboxFolders, parse_key, rejected_rows_path, sha256_of
from iska_pipelines.lib.settings import DEFAULT_LANGUAGES, DEFAULTS
from iska_pipelines.lib.storage.files import FileRecord, file_outcome, first_taken_at, record_file
from iska_pipelines.lib.storage.timestamps import utcnow
from iska_pipelines.lib.vocabulary import FileKind, FileOutcome


@dataclass(frozen=True)
class IngestRules:
    max_reject_fraction: float = DEFAULTS.max_reject_fraction
    max_grid_distance_km: float = DEFAULTS.max_grid_distance_km
    timezone: str = DEFAULTS.timezone
    max_future_minutes: int = DEFAULTS.max_future_minutes
    # the codes the `language` column accepts (ISO 639-1 and the templates file's, SPEC §14)
    languages: frozenset[str] = DEFAULT_LANGUAGES


@dataclass
class Applied:
    """What the apply step did inside the transaction."""

    rows_applied: int
    counts: dict[str, int] = field(default_factory=dict)
    refused: pl.DataFrame | None = None  # rows refused against the database (stale, unknown, ...)


@dataclass
class FileApplied:
    key: str
    kind: FileKind
    name: str
    archived: Path
    rejected_rows: Path | None
    rows_in: int
    rows_applied: int
    rows_refused: int
    refused_by_reason: dict[str, int]
    counts: dict[str, int]
    preview: pl.DataFrame
    rerun: bool = False  # the file had been applied already: its record was left as it was

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.refused_by_reason.items())
        return (f"{'re-applied' if self.rerun else 'applied'} {self.rows_applied} of {self.rows_in} "
                f"rows from {self.name}"
                + (f" ({reasons})" if reasons else ""))


Parser = Callable[[Path, datetime], ParsedFile]  # datetime: the moment the rows are judged against
# datetime | None: when the file was first taken, if it was applied before (a re-run), else None
Applier = Callable[[sa.Connection, ParsedFile, datetime | None], Applied]


def ingest_file(
    engine: sa.Engine,
    folders: InboxFolders,
    key: str,
    parse: Parser,
    apply: Applier,
    rules: IngestRules,
    run_id: str | None = None,
) -> FileApplied:
    kind = parse_key(key).kind
    source = folders.locate(key)
    sha = sha256_of(source)
    with engine.connect() as connection:  # a re-run judges the rows (future_ts) as the first run did
        taken_at = first_taken_at(connection, key) or utcnow()
    try:
        parsed = parse(source, taken_at)
        enforce_reject_limit(parsed, rules.max_reject_fraction, source.name)
    except FileRefused as refusal:
        refuse_file(engine, folders, key, kind, source, sha, str(refusal), run_id)
        raise
    with engine.begin() as connection:
        rerun = file_outcome(connection, key) == FileOutcome.APPLIED
        applied = apply(connection, parsed, taken_at if rerun else None)
        refused = _all_refused(parsed, applied)
        if not rerun:
            record_file(connection, FileRecord(
                partition_key=key, kind=kind, name=source.name, sha256=sha, rows_in=parsed.rows_in,
                rows_applied=applied.rows_applied, rows_refused=refused.height,
                outcome=FileOutcome.APPLIED, run_id=run_id,
            ))
    try:
        archived = folders.archive_applied(source, kind, sha)
    except FileNotFoundError:  # moved away by hand after the commit: the data is in all the same
        archived = folders.archive / kind / source.name
    rejected_rows = rejected_rows_path(archived)
    if rerun and archived == source:  # an archived file run again keeps its first account
        pass
    elif refused.height:
        refused.sort(ROW).drop(ROW).write_csv(rejected_rows)
    else:
        rejected_rows.unlink(missing_ok=True)
    by_reason = ParsedFile(pl.DataFrame(), refused, parsed.rows_in).refused_by_reason()
    return FileApplied(
        key=key, kind=kind, name=source.name, archived=archived,
        rejected_rows=rejected_rows if refused.height else None, rows_in=parsed.rows_in,
        rows_applied=applied.rows_applied, rows_refused=refused.height,
        refused_by_reason=by_reason, counts=applied.counts,
        preview=parsed.good.drop(ROW, strict=False).head(10), rerun=rerun,
    )


def refuse_file(engine: sa.Engine, folders: InboxFolders, key: str, kind: FileKind, source: Path,
                sha: str, error: str, run_id: str | None) -> Path:
    """Record a whole-file refusal, then move the file to rejected/ beside its error file."""
    with engine.begin() as connection:
        record_file(connection, FileRecord(
            partition_key=key, kind=kind, name=source.name, sha256=sha,
            outcome=FileOutcome.REJECTED, error=error, run_id=run_id,
        ))
    return folders.reject(source, kind, sha, error)


def _all_refused(parsed: ParsedFile, applied: Applied) -> pl.DataFrame:
    if applied.refused is None or applied.refused.height == 0:
        return parsed.refused
    if parsed.refused.height == 0:
        return applied.refused
    return pl.concat([parsed.refused, applied.refused], how="diagonal_relaxed")
