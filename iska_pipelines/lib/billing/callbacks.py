"""Reading a MoMo callback (SPEC §18): which charge it is about and how it ended.

MoMo posts (or puts) the same JSON its status lookup answers: `status` SUCCESSFUL, FAILED or
PENDING, a `reason` when it failed, the `externalId` ISKA sent (the reference), and sometimes a
`referenceId`. The reference is first taken from the callback URL ISKA signed (`ref`), since
that is what the `sig` covers; a body naming a different reference is refused. A PENDING callback
settles nothing. Anything that cannot be read is a `BadCallback` (4xx, nothing changes).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from iska_pipelines.lib.billing.momo import status_of
from iska_pipelines.lib.billing.settle import Settlement
from iska_pipelines.lib.vocabulary import ChargeOutcome, MomoStatus, SettledBy

ENDS = {MomoStatus.SUCCESSFUL: ChargeOutcome.SUCCESS, MomoStatus.FAILED: ChargeOutcome.DECLINED}


class BadCallback(ValueError):
    """The callback says nothing ISKA can act on; the message says why."""


@dataclass(frozen=True, slots=True)
class MomoCallback:
    reference: str
    status: MomoStatus
    reason: str
    excerpt: str  # the body as received, kept on the settled attempt

    def settlement(self) -> Settlement | None:
        """What it settles; None for a PENDING callback (the payer has not answered yet)."""
        outcome = ENDS.get(self.status)
        return (
            None if outcome is None else Settlement(self.reference, outcome, self.excerpt, SettledBy.CALLBACK)
        )


def parse_callback(body: bytes, ref: str | None) -> MomoCallback:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadCallback("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise BadCallback("the body must be a JSON object")
    named = [str(payload[k]) for k in ("referenceId", "externalId") if payload.get(k)]
    reference = ref or (named[0] if named else "")
    if not reference:
        raise BadCallback("no reference: neither ?ref= nor referenceId/externalId")
    if ref and any(n != ref and _is_uuid(n) for n in named):
        raise BadCallback(f"the body names another reference than the signed URL ({ref})")
    if not _is_uuid(reference):
        raise BadCallback(f"reference {reference!r} is not a UUID")
    status, reason = status_of(payload)
    if status is None:
        raise BadCallback(f"status must be SUCCESSFUL, FAILED or PENDING, got {payload.get('status')!r}")
    return MomoCallback(reference, status, reason, body.decode("utf-8", "replace"))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
