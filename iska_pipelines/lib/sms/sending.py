"""Sending day D's outbox: claim pending messages a chunk at a time, send them, write outcomes.

Every sender works from the outbox itself, not from a list handed to it: it claims what is still
pending (claims.py) until nothing claimable is left, so any number of senders in any number of
runs share a day without sending a msgid twice, and whichever runs last finishes the day.
Outcomes are written in small chunks while sending, which also releases their claims; a crash
loses at most a chunk of bookkeeping, and those messages go out again (same msgids, which a
gateway recognises as repeats) once their claims expire.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.sms.claims import (
    EVERYONE,
    claim,
    extend_claims,
    next_claim_expiry,
    pending_count,
    skip_too_late,
)
from iska_pipelines.lib.sms.delivery import record_outcomes
from iska_pipelines.lib.sms.gateway import OutgoingSms, SmsClient
from iska_pipelines.lib.sms.signing import callback_url

CLAIM_CHUNK = 1000  # messages claimed at once; the claim is extended while they are sent


@dataclass(frozen=True)
class Sender:
    """Who sends (the claim owner) and the rules it sends by."""

    owner: str
    public_url: str
    secret: str
    chunk: int = CLAIM_CHUNK
    claim_seconds: float = 300.0
    cutoff: datetime | None = None  # past it, claimable messages end skipped_too_late
    in_region: str = EVERYONE  # the region whose day this is (Regions.in_region on `region`)


@dataclass(frozen=True)
class BatchSent:
    sent: int
    accepted: int
    failed: int
    rejected: int
    started: float  # wall-clock epoch seconds, so batches in other processes compare
    finished: float
    too_late: int = 0

    def summary(self, owner: str) -> str:
        late = f", {self.too_late} skipped_too_late" if self.too_late else ""
        return (
            f"{owner} sent {self.sent} ({self.accepted} accepted, {self.rejected} rejected, "
            f"{self.failed} failed{late}) in {self.finished - self.started:.1f} s"
        )


def _claimed(engine: sa.Engine, day: date, sender: Sender, too_late: list[int]) -> Iterator[OutgoingSms]:
    """Day D's pending messages, claimed a chunk at a time as the client asks for more."""
    while True:
        with engine.begin() as connection:
            if sender.cutoff is not None and utcnow() >= sender.cutoff:
                too_late.append(skip_too_late(connection, day, in_region=sender.in_region))
                return
            rows = claim(
                connection, day, sender.owner, sender.chunk, sender.claim_seconds, in_region=sender.in_region
            )
        if not rows:
            return
        for row in rows:
            yield OutgoingSms(
                row.msgid, row.msisdn, row.text, callback_url(sender.public_url, row.msgid, sender.secret)
            )


def send_pending(engine: sa.Engine, day: date, client: SmsClient, sender: Sender) -> BatchSent:
    """Send day D's pending messages until none is left to claim; outcomes written a batch per
    statement as they come (lib/http/fanout.py decides the batches: by count or by time)."""
    started = time.time()
    too_late: list[int] = []
    accepted = failed = rejected = 0
    last_extend = time.monotonic()
    for batch in client.send_batches(_claimed(engine, day, sender, too_late)):
        with engine.begin() as connection:
            record_outcomes(connection, batch)
            if time.monotonic() - last_extend >= sender.claim_seconds / 3:
                extend_claims(connection, sender.owner, sender.claim_seconds)
                last_extend = time.monotonic()
        for outcome in batch:
            if outcome.accepted:
                accepted += 1
            elif outcome.rejected:
                rejected += 1
            else:
                failed += 1
    return BatchSent(
        accepted + rejected + failed, accepted, failed, rejected, started, time.time(), sum(too_late)
    )


def combined(parts: list[BatchSent]) -> BatchSent:
    if not parts:
        now = time.time()
        return BatchSent(0, 0, 0, 0, now, now)
    return BatchSent(
        sum(p.sent for p in parts),
        sum(p.accepted for p in parts),
        sum(p.failed for p in parts),
        sum(p.rejected for p in parts),
        min(p.started for p in parts),
        max(p.finished for p in parts),
        sum(p.too_late for p in parts),
    )


def finish_pending(
    engine: sa.Engine, day: date, client: SmsClient, sender: Sender, poll_seconds: float = 1.0
) -> BatchSent:
    """Send what is left of day D, waiting (at most one claim lifetime) for messages another
    sender holds: if it finishes them, good; if it died, its claims expire and are taken here."""
    deadline = time.monotonic() + sender.claim_seconds + poll_seconds
    parts = [send_pending(engine, day, client, sender)]
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if not pending_count(connection, day, sender.in_region):
                break
            expiry = as_utc(next_claim_expiry(connection, day, sender.in_region))
        wait = (expiry - utcnow()).total_seconds() if expiry else 0.0
        time.sleep(min(max(wait, 0.05), poll_seconds))
        parts.append(send_pending(engine, day, client, sender))
    return combined(parts)
