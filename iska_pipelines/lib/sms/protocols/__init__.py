"""SMS gateway protocols (SPEC §17): one small adapter per wire format, all behind one shape.

An adapter turns an outbox message into the gateway's request and the gateway's answer into
accepted / rejected / retry; and it reads the gateway's delivery reports and inbound messages
into ISKA's own. Everything else (outbox, claims, caps, failover, retries, consent, regions)
is the same for every protocol and lives elsewhere.
"""

from __future__ import annotations

from iska_pipelines.lib.sms.protocols.africastalking import AFRICAS_TALKING
from iska_pipelines.lib.sms.protocols.base import Adapter
from iska_pipelines.lib.sms.protocols.infobip import INFOBIP
from iska_pipelines.lib.sms.protocols.iska import ISKA
from iska_pipelines.lib.sms.protocols.kannel import KANNEL
from iska_pipelines.lib.sms.protocols.twilio import TWILIO

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (ISKA, KANNEL, AFRICAS_TALKING, TWILIO, INFOBIP)}


def adapter_for(protocol: str | None) -> Adapter:
    """The adapter of a protocol name; KeyError names the known ones."""
    try:
        return ADAPTERS[protocol or ISKA.name]
    except KeyError:
        raise KeyError(f"unknown SMS protocol {protocol!r} (known: {', '.join(ADAPTERS)})") from None
