"""The watched folder (SPEC §2): routing, the settle rule, partition keys and the moves.

Only the inbox is ever listed; archived and rejected files are never read again, so the cost of
looking at the folder grows with the files waiting, not with history.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from iska_pipelines.lib.vocabulary import FileKind

TEMPORARY_SUFFIXES = (".part", ".tmp", "~")
# ISKA's own reports beside archived and rejected files; never data to apply
REPORT_SUFFIXES = (".rejected.csv", ".error.txt")
KEY_NAME_MAX = 180
HASH_CHARS = 10

# name routing at the inbox root, first match wins (case-insensitive)
NAME_ROUTES: tuple[tuple[str, FileKind], ...] = (
    ("forecast", FileKind.FORECASTS),
    ("addition", FileKind.ADDITIONS),
    ("deletion", FileKind.CANCELLATIONS),
    ("cancel", FileKind.CANCELLATIONS),
    ("locupdate", FileKind.UPDATES),
    ("update", FileKind.UPDATES),
)
UNKNOWN = "unknown"


def route_by_name(name: str) -> FileKind | None:
    lowered = name.lower()
    for fragment, kind in NAME_ROUTES:
        if fragment in lowered:
            return kind
    return None


def is_candidate(name: str) -> bool:
    """Hidden files, files still being written under a temporary name and ISKA's own reports
    are never taken."""
    return not name.startswith(".") and not name.endswith(TEMPORARY_SUFFIXES + REPORT_SUFFIXES)


def is_settled(mtime: float, now: float, settle_seconds: float) -> bool:
    """Settled = not modified for `settle_seconds`: a write that changes the size or the content
    moves the mtime, so an unchanged mtime that old means an unchanged file."""
    return now - mtime >= settle_seconds


def sanitise(name: str) -> str:
    """Dynamic partition keys are not validated by Dagster; keep them to [A-Za-z0-9._-]."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "file"
    return cleaned[:KEY_NAME_MAX]


def partition_key(kind: FileKind, name: str, sha256: str) -> str:
    return f"{kind}-{sanitise(name)}-{sha256[:HASH_CHARS]}"


@dataclass(frozen=True)
class KeyParts:
    kind: FileKind
    sanitised_name: str
    hash_prefix: str


def parse_key(key: str) -> KeyParts:
    kind, _, rest = key.partition("-")
    name, _, digest = rest.rpartition("-")
    if not name or len(digest) != HASH_CHARS:
        raise ValueError(f"not an ISKA file partition key: {key!r}")
    return KeyParts(FileKind(kind), name, digest)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    kind: FileKind | None  # None: the name routes nowhere
    size: int
    mtime_ns: int

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


class InboxFolders:
    """The folder layout under ISKA_DATA_DIR."""

    def __init__(self, data_dir: Path | str):
        self.root = Path(data_dir)
        self.inbox = self.root / "inbox"
        self.archive = self.root / "archive"
        self.rejected = self.root / "rejected"

    def ensure(self) -> None:
        for kind in FileKind:
            (self.inbox / kind).mkdir(parents=True, exist_ok=True)
            (self.archive / kind).mkdir(parents=True, exist_ok=True)
            (self.rejected / kind).mkdir(parents=True, exist_ok=True)
        (self.rejected / UNKNOWN).mkdir(parents=True, exist_ok=True)

    def waiting(self) -> list[DroppedFile]:
        """Every candidate file in the inbox, oldest first (mtime, then name)."""
        found: list[DroppedFile] = []
        folders: list[tuple[Path, FileKind | None]] = [(self.inbox, None)]
        folders += [(self.inbox / kind, kind) for kind in FileKind]
        for folder, folder_kind in folders:
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or not is_candidate(entry.name):
                    continue
                stat = entry.stat(follow_symlinks=False)
                kind = folder_kind or route_by_name(entry.name)
                found.append(DroppedFile(Path(entry.path), kind, stat.st_size, stat.st_mtime_ns))
        found.sort(key=lambda f: (f.mtime_ns, f.path.name))
        return found

    def locate(self, key: str) -> Path:
        """The file behind a partition key: waiting in the inbox, or already archived (re-run)."""
        parts = parse_key(key)
        places = [self.inbox / parts.kind, self.inbox, self.archive / parts.kind, self.rejected / parts.kind]
        for folder in places:
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if not entry.is_file() or not is_candidate(entry.name):
                    continue
                if sanitise(entry.name) != parts.sanitised_name and not (
                    folder.parent == self.archive and _unsuffixed(entry.name, parts)
                ):
                    continue
                path = Path(entry.path)
                if sha256_of(path).startswith(parts.hash_prefix):
                    return path
        raise FileNotFoundError(
            f"no file for partition {key} in {self.inbox} or {self.archive / parts.kind}; "
            "it was moved or deleted by hand"
        )

    def is_in_inbox(self, path: Path) -> bool:
        return path.parent.resolve() in {
            self.inbox.resolve(),
            *((self.inbox / kind).resolve() for kind in FileKind),
        }

    def archive_applied(self, path: Path, kind: FileKind, sha256: str) -> Path:
        """Move an applied file into archive/<kind>/ (a no-op when re-running an archived file)."""
        return self._move(path, self.archive / kind, sha256)

    def archive_duplicate(self, path: Path, kind: FileKind, sha256: str) -> Path:
        return self._move(path, self.archive / kind / "duplicates", sha256)

    def reject(self, path: Path, kind: FileKind | None, sha256: str | None, error: str) -> Path:
        """Move a file refused as a whole into rejected/<kind>/ beside `<name>.error.txt`."""
        target = self._move(path, self.rejected / (kind or UNKNOWN), sha256)
        target.with_name(target.name + ".error.txt").write_text(error.rstrip() + "\n", "utf-8")
        return target

    def _move(self, path: Path, folder: Path, sha256: str | None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if path.parent.resolve() == folder.resolve():
            return path
        target = folder / path.name
        if target.exists():
            tag = (sha256 or sha256_of(path))[:HASH_CHARS]
            target = folder / f"{path.stem}-{tag}{path.suffix}"
            if target.exists():  # the same content under the same name is already there
                target.unlink()
        os.replace(path, target) if _same_device(path, folder) else shutil.move(path, target)
        return target


def rejected_rows_path(archived: Path) -> Path:
    return archived.with_name(archived.name + ".rejected.csv")


def _unsuffixed(name: str, parts: KeyParts) -> bool:
    """Archived files renamed `<stem>-<hash10><suffix>` on a name clash still match their key."""
    stem, dot, suffix = name.rpartition(".")
    base = stem if dot else name
    tail = f"-{parts.hash_prefix}"
    if not base.endswith(tail):
        return False
    original = base[: -len(tail)] + (dot + suffix if dot else "")
    return sanitise(original) == parts.sanitised_name


def _same_device(path: Path, folder: Path) -> bool:
    try:
        return path.stat().st_dev == folder.stat().st_dev
    except OSError:
        return False
