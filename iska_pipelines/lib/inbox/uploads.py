"""Files uploaded through the API go into the inbox like any dropped file (SPEC §2, §8).

The upload is written under `<name>.part` (which the sensor never takes) and renamed when
complete, so the sensor sees either nothing or the whole file. The name gets the upload time and
a random tag: two uploads of the same file name never clash, and the time travels with the
partition key, which is the upload's `task_id`.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iska_pipelines.lib.inbox.folders import InboxFolders, partition_key, sanitise
from iska_pipelines.lib.vocabulary import FileKind

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
STAMPED = re.compile(r"\.(?P<stamp>\d{8}T\d{12}Z)-[0-9a-f]{6}\.csv$")
STEM_MAX = 100


class UploadTooLarge(ValueError):
    """More bytes than ISKA_MAX_UPLOAD_MB allows; nothing was left in the inbox."""


@dataclass(frozen=True)
class StoredUpload:
    task_id: str
    path: Path
    size: int
    sha256: str


def upload_name(original: str | None, kind: FileKind, now: datetime) -> str:
    """`<sanitised stem>.<UTC time>-<tag>.csv`: unique, safe, and never a temporary name."""
    base = re.split(r"[\\/]", original or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = sanitise(stem)[:STEM_MAX] if stem.strip("._-") else str(kind)
    return f"{stem}.{now.astimezone(UTC).strftime(STAMP_FORMAT)}-{secrets.token_hex(3)}.csv"


def uploaded_at(name: str) -> datetime | None:
    """The upload time written into a name by `upload_name` (None for files dropped by hand)."""
    match = STAMPED.search(name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)


def write_upload(
    folders: InboxFolders,
    kind: FileKind,
    original: str | None,
    chunks: Iterable[bytes],
    max_bytes: int,
    now: datetime | None = None,
) -> StoredUpload:
    """Stream the upload into inbox/<kind>/ under a temporary name, then rename it into place."""
    folder = folders.inbox / kind
    folder.mkdir(parents=True, exist_ok=True)
    name = upload_name(original, kind, now or datetime.now(UTC))
    final, part = folder / name, folder / f"{name}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with part.open("xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(f"the file is larger than {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)
    sha = digest.hexdigest()
    return StoredUpload(task_id=partition_key(kind, name, sha), path=final, size=size, sha256=sha)
