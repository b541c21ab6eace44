"""The steps every ingest asset takes with its file, in this order (SPEC §2–3): take it
(`take_file`), read it (`refusing_whole_file` around the reader), apply it and `record_applied`
in one transaction, then `archive_applied`.

The order matters for crash safety: nothing moves until the transaction has committed, so a
crash leaves the file in the inbox and nothing of it in the database; re-running applies it once.

Re-running an applied partition applies its rows again (after a database restore that brings
them back) but changes nothing that is already there: its events are stale or unchanged
(lib/subscriptions/events.py), and the file's `ingested_files` row and `.rejected.csv` keep the account of
when the file was applied. What the re-run itself found is in its run's metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.inbox.files import FileRecord, file_outcome, first_taken_at, record_file
from iska_pipelines.lib.inbox.folders import InboxFolders, parse_key, rejected_rows_path, sha256_of
from iska_pipelines.lib.inbox.reading import ROW, FileRefused, ParsedFile
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.settings import DEFAULT_LANGUAGES, DEFAULT_REGIONS, DEFAULTS
from iska_pipelines.lib.vocabulary import FileKind, FileOutcome


@dataclass(frozen=True)
class IngestRules:
    max_reject_fraction: float = DEFAULTS.max_reject_fraction
    max_grid_distance_km: float = DEFAULTS.max_grid_distance_km
    timezone: str = DEFAULTS.timezone
    max_future_minutes: int = DEFAULTS.max_future_minutes
    # the codes the `language` column accepts (ISO 639-1 and the templates file's, SPEC §14)
    languages: frozenset[str] = DEFAULT_LANGUAGES
    # the codes the `region` column accepts, and the prefixes that pick one (SPEC §15)
    regions: Regions = DEFAULT_REGIONS


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
    refused: pl.DataFrame = field(default_factory=pl.DataFrame)  # every refused row, as it came

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.refused_by_reason.items())
        return (
            f"{'re-applied' if self.rerun else 'applied'} {self.rows_applied} of {self.rows_in} "
            f"rows from {self.name}" + (f" ({reasons})" if reasons else "")
        )


@dataclass(frozen=True)
class TakenFile:
    """A partition's file as found: where it is, its content hash, and the moment its rows are
    judged against (when it was first taken, so a re-run judges `future_ts` as the first run did)."""

    key: str
    kind: FileKind
    path: Path
    sha256: str
    taken_at: datetime

    @property
    def name(self) -> str:
        return self.path.name


def take_file(engine: sa.Engine, folders: InboxFolders, key: str) -> TakenFile:
    source = folders.locate(key)
    with engine.connect() as connection:
        taken_at = first_taken_at(connection, key) or utcnow()
    return TakenFile(key, parse_key(key).kind, source, sha256_of(source), taken_at)


@contextmanager
def refusing_whole_file(
    engine: sa.Engine, folders: InboxFolders, taken: TakenFile, run_id: str | None = None
) -> Iterator[None]:
    """Around reading: a `FileRefused` is recorded and the file moved to rejected/ beside its
    error file, then raised on for the run to fail."""
    try:
        yield
    except FileRefused as refusal:
        refuse_file(engine, folders, taken.key, taken.kind, taken.path, taken.sha256, str(refusal), run_id)
        raise


def applied_before(connection: sa.Connection, taken: TakenFile) -> datetime | None:
    """When the file was first taken, if it was applied before (this run is a re-run), else None."""
    return taken.taken_at if file_outcome(connection, taken.key) == FileOutcome.APPLIED else None


def record_applied(
    connection: sa.Connection,
    taken: TakenFile,
    parsed: ParsedFile,
    applied: Applied,
    rerun_of: datetime | None,
    run_id: str | None = None,
) -> FileApplied:
    """In the apply transaction: the file's `ingested_files` row (a re-run keeps the first
    run's), and the account of every row, applied or refused."""
    refused = _all_refused(parsed, applied)
    by_reason = ParsedFile(pl.DataFrame(), refused, parsed.rows_in).refused_by_reason()
    if rerun_of is None:
        record_file(
            connection,
            FileRecord(
                partition_key=taken.key,
                kind=taken.kind,
                name=taken.name,
                sha256=taken.sha256,
                rows_in=parsed.rows_in,
                rows_applied=applied.rows_applied,
                rows_refused=refused.height,
                outcome=FileOutcome.APPLIED,
                run_id=run_id,
                refused_by_reason=json.dumps(by_reason) if by_reason else None,
            ),
        )
    return FileApplied(
        key=taken.key,
        kind=taken.kind,
        name=taken.name,
        archived=taken.path,
        rejected_rows=None,
        rows_in=parsed.rows_in,
        rows_applied=applied.rows_applied,
        rows_refused=refused.height,
        refused_by_reason=by_reason,
        counts=applied.counts,
        preview=parsed.good.drop(ROW, strict=False).head(10),
        rerun=rerun_of is not None,
        refused=refused,
    )


def archive_applied(folders: InboxFolders, taken: TakenFile, result: FileApplied) -> FileApplied:
    """After the commit (a crash before it leaves the file in the inbox): the file to archive/,
    its refused rows beside it as `<name>.rejected.csv`."""
    try:
        archived = folders.archive_applied(taken.path, taken.kind, taken.sha256)
    except FileNotFoundError:  # moved away by hand after the commit: the data is in all the same
        archived = folders.archive / taken.kind / taken.name
    rejected_rows = rejected_rows_path(archived)
    if result.rerun and archived == taken.path:  # an archived file run again keeps its first account
        pass
    elif result.rows_refused:
        result.refused.sort(ROW).drop(ROW).write_csv(rejected_rows)
    else:
        rejected_rows.unlink(missing_ok=True)
    return replace(result, archived=archived, rejected_rows=rejected_rows if result.rows_refused else None)


def refuse_file(
    engine: sa.Engine,
    folders: InboxFolders,
    key: str,
    kind: FileKind,
    source: Path,
    sha: str,
    error: str,
    run_id: str | None,
) -> Path:
    """Record a whole-file refusal, then move the file to rejected/ beside its error file."""
    with engine.begin() as connection:
        record_file(
            connection,
            FileRecord(
                partition_key=key,
                kind=kind,
                name=source.name,
                sha256=sha,
                outcome=FileOutcome.REJECTED,
                error=error,
                run_id=run_id,
            ),
        )
    return folders.reject(source, kind, sha, error)


def _all_refused(parsed: ParsedFile, applied: Applied) -> pl.DataFrame:
    if applied.refused is None or applied.refused.height == 0:
        return parsed.refused
    if parsed.refused.height == 0:
        return applied.refused
    return pl.concat([parsed.refused, applied.refused], how="diagonal_relaxed")
