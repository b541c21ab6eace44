"""One look at the inbox: which files are new, which are duplicates, which route nowhere.

The sensor calls `look_at_inbox` each tick and carries out the plan; only files waiting in the
inbox are stat'ed, and a file's content hash is computed once per (path, size, mtime).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.inbox.files import applied_key_for_content, file_outcome
from iska_pipelines.lib.inbox.folders import DroppedFile, InboxFolders, is_settled, partition_key, sha256_of
from iska_pipelines.lib.vocabulary import FileKind, FileOutcome

HashCache = dict[str, list[Any]]  # path -> [size, mtime_ns, sha256]


@dataclass(frozen=True)
class NewFile:
    key: str
    kind: FileKind
    path: Path
    sha256: str
    run_key: str


@dataclass
class InboxLook:
    new: list[NewFile] = field(default_factory=list)
    duplicates: list[tuple[DroppedFile, str, str]] = field(default_factory=list)  # file, sha, of key
    unknown: list[DroppedFile] = field(default_factory=list)
    unsettled: list[DroppedFile] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    hashes: HashCache = field(default_factory=dict)


def unknown_file_error(name: str) -> str:
    return (
        f"{name}: the name does not say what kind of file this is. Drop it into "
        "inbox/forecasts/, inbox/additions/, inbox/cancellations/ or inbox/updates/, or name it "
        "with forecast, addition, deletion/cancel or locupdate/update in it."
    )


def look_at_inbox(
    folders: InboxFolders,
    engine: sa.Engine,
    previous_hashes: HashCache,
    now: float,
    settle_seconds: float,
    partition_exists: Callable[[FileKind, str], bool],
    run_in_progress: Callable[[str], bool],
) -> InboxLook:
    """`run_in_progress(key)`: a run of that partition is queued or running. Its file stays in the
    inbox until the run has committed and moved it, so it is neither new nor a duplicate."""
    look = InboxLook()
    seen_this_tick: dict[tuple[FileKind, str], str] = {}
    with engine.connect() as connection:
        for dropped in folders.waiting():
            if not is_settled(dropped.mtime, now, settle_seconds):
                look.unsettled.append(dropped)
                continue
            if dropped.kind is None:
                look.unknown.append(dropped)
                continue
            sha = _hash(dropped, previous_hashes, look.hashes)
            key = partition_key(dropped.kind, dropped.path.name, sha)
            if partition_exists(dropped.kind, key):
                outcome = file_outcome(connection, key)
                if outcome is None or run_in_progress(key):
                    # queued, running, committing, or failed and awaiting a re-run from the UI
                    look.in_flight.append(key)
                elif outcome == FileOutcome.REJECTED:  # dropped again after a refusal: try again,
                    # unless the same content has been applied since under another name (SPEC §2)
                    applied = applied_key_for_content(connection, dropped.kind, sha)
                    if applied:
                        look.duplicates.append((dropped, sha, applied))
                    else:
                        look.new.append(
                            NewFile(key, dropped.kind, dropped.path, sha, f"{key}@{dropped.mtime_ns}")
                        )
                else:
                    look.duplicates.append((dropped, sha, key))
                continue
            earlier = seen_this_tick.get((dropped.kind, sha)) or applied_key_for_content(
                connection, dropped.kind, sha
            )
            if earlier:
                look.duplicates.append((dropped, sha, earlier))
                continue
            seen_this_tick[(dropped.kind, sha)] = key
            look.new.append(NewFile(key, dropped.kind, dropped.path, sha, key))
    return look


def _hash(dropped: DroppedFile, previous: HashCache, current: HashCache) -> str:
    cached = previous.get(str(dropped.path))
    if cached and cached[0] == dropped.size and cached[1] == dropped.mtime_ns:
        sha: str = cached[2]
    else:
        sha = sha256_of(dropped.path)
    current[str(dropped.path)] = [dropped.size, dropped.mtime_ns, sha]
    return sha
