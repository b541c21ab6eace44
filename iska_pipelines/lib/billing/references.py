"""The `X-Reference-Id` of an asynchronous charge (SPEC §18): a UUID derived from its
Idempotency-Key, so the same intent is asked under the same reference on every retry, in every
re-run and after a crash, and a gateway that already holds it answers 409 instead of charging
again.

MoMo documents the reference as a version 4 UUID. A random one would be lost with the process
that drew it, so the 16 bytes come from SHA-256 of the key and only the version and variant
bits are set as version 4 wants them: deterministic, and shaped as the gateway expects.
"""

from __future__ import annotations

import hashlib
import uuid

PURPOSE = b"iska billing reference\x00"  # keeps these UUIDs apart from any other use of the key


def reference_for(idempotency_key: str) -> str:
    digest = hashlib.sha256(PURPOSE + idempotency_key.encode("ascii")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))
