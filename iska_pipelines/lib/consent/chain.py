"""The consent log (SPEC §13): append-only, each row chained to the one before by SHA-256.

A row's `hash` is the SHA-256 of the previous row's hash and the row's own content (msisdn,
event, source, detail, at) in one canonical form; the first row chains to GENESIS. Editing any
stored field of a row breaks its own hash; deleting or inserting a row breaks the next row's
`prev_hash`. `verify` walks the chain in id order and names the first row that does not hold.

Appends are serialised, so two writers never chain on the same previous row: PostgreSQL takes a
transaction-level advisory lock before reading the last hash (held to the commit); SQLite's
transactions all begin IMMEDIATE and hold the write lock already. A batch (a whole file's
additions) is chained in Python under the lock and inserted in one statement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.db.locks import lock_consent
from iska_pipelines.lib.db.schema import consent_events
from iska_pipelines.lib.db.timestamps import as_utc, row_dict
from iska_pipelines.lib.vocabulary import ConsentEvent, ConsentSource

GENESIS = "0" * 64
DETAIL_CHARS = 500
VERIFY_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Consent:
    """One change of consent, before it is chained."""

    msisdn: str
    event: ConsentEvent
    source: ConsentSource
    detail: str
    at: datetime


def canonical(msisdn: str, event: str, source: str, detail: str, at: datetime) -> str:
    """The content a hash covers, one spelling on every database: `at` in UTC to the microsecond."""
    stamp = as_utc(at)
    assert stamp is not None
    return json.dumps(
        [msisdn, str(event), str(source), detail, stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chained_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def last_hash(connection: sa.Connection) -> str:
    found = connection.execute(
        sa.select(consent_events.c.hash).order_by(consent_events.c.id.desc()).limit(1)
    ).scalar()
    return found or GENESIS


def append(connection: sa.Connection, changes: Iterable[Consent]) -> int:
    """Chain and insert `changes` in order, inside the caller's transaction; returns how many."""
    changes = list(changes)
    if not changes:
        return 0
    lock_consent(connection)
    previous = last_hash(connection)
    rows: list[dict[str, Any]] = []
    for change in changes:
        detail = change.detail[:DETAIL_CHARS]
        at = as_utc(change.at)
        assert at is not None
        digest = chained_hash(previous, canonical(change.msisdn, change.event, change.source, detail, at))
        rows.append(
            {
                "msisdn": change.msisdn,
                "event": str(change.event),
                "source": str(change.source),
                "detail": detail,
                "at": at,
                "prev_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
    connection.execute(consent_events.insert(), rows)
    return len(rows)


@dataclass(frozen=True)
class Verified:
    rows: int
    broken_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(connection: sa.Connection) -> Verified:
    """Walk the whole chain in id order; the first row whose link or hash does not hold."""
    previous, checked, after = GENESIS, 0, 0
    while True:
        rows = connection.execute(
            sa.select(consent_events)
            .where(consent_events.c.id > after)
            .order_by(consent_events.c.id)
            .limit(VERIFY_CHUNK)
        ).all()
        if not rows:
            return Verified(checked)
        for row in rows:
            if row.prev_hash != previous:
                return Verified(checked, row.id, "its prev_hash is not the previous row's hash")
            content = canonical(row.msisdn, row.event, row.source, row.detail, row.at)
            if chained_hash(previous, content) != row.hash:
                return Verified(checked, row.id, "its content does not match its hash")
            previous, checked, after = row.hash, checked + 1, row.id


def history(connection: sa.Connection, msisdn: str) -> list[dict[str, Any]]:
    """One subscriber's consent events, oldest first."""
    rows = connection.execute(
        sa.select(consent_events).where(consent_events.c.msisdn == msisdn).order_by(consent_events.c.id)
    )
    return [row_dict(row) for row in rows]
