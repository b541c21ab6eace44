"""Sending one batch of the outbox: read its pending rows, send them, write outcomes as they come.

Outcomes are written in small chunks while the batch is still sending, so a crash loses at most
a chunk of bookkeeping; a retried step then re-sends those few with the same msgids, which a
gateway recognises as repeats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from iska_pipelines.lib.gateways.sms import SmsClient, SmsOutcome
from iska_pipelines.lib.sms.delivery import messages_to_send, record_outcomes
from iska_pipelines.lib.sms.outbox import Batch

FLUSH_EVERY = 500
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class BatchSent:
    sent: int
    accepted: int
    failed: int
    rejected: int
    started: float  # wall-clock epoch seconds, so batches in other processes compare
    finished: float

    def summary(self, batch: Batch) -> str:
        return (f"sent {self.sent} of batch {batch.first_msgid[:8]}..{batch.last_msgid[:8]} "
                f"({self.accepted} accepted, {self.rejected} rejected, {self.failed} failed) in {self.finished - self.started:.1f} s")


def send_batch(engine: sa.Engine, batch: Batch, client: SmsClient, public_url: str,
               secret: str) -> BatchSent:
    with engine.connect() as connection:
        messages = messages_to_send(connection, batch, public_url, secret)
    started = time.time()
    buffered: list[SmsOutcome] = []
    accepted = failed = rejected = 0
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if buffered:
            with engine.begin() as connection:
                record_outcomes(connection, buffered)
            buffered.clear()
        last_flush = time.monotonic()

    try:
        for outcome in client.send_all(messages):
            buffered.append(outcome)
            accepted += outcome.accepted
            rejected += outcome.rejected
            failed += not (outcome.accepted or outcome.rejected)
            if len(buffered) >= FLUSH_EVERY or time.monotonic() - last_flush >= FLUSH_SECONDS:
                flush()
    finally:
        flush()  # what went out before an error is recorded, so a retry does not resend it
    return BatchSent(accepted + rejected + failed, accepted, failed, rejected, started, time.time())
