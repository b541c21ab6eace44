"""Africa's Talking's SMS API (SPEC §17): a form POST to `/version1/messaging` with `apiKey`.

The answer lists one recipient with a `statusCode`: 100 Processed, 101 Sent, 102 Queued take
the message (its `messageId` is kept: reports name the message by it); 401-407 (risk hold,
bad sender id, bad number, unsupported number, no balance, blacklisted, no route) refuse it;
500-502 and HTTP 5xx are tried again. Reports go to the one callback URL set in the account's
dashboard (not per message), so that URL is signed for the protocol, not for a msgid.
"""

from __future__ import annotations

from typing import Any

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.protocols.base import (
    FORM,
    BadCallback,
    Callback,
    Outgoing,
    Report,
    SendVerdict,
    Verdict,
    WireRequest,
    e164,
    endpoint,
    form_body,
    refused_credentials,
    required,
)
from iska_pipelines.lib.vocabulary import MessageStatus

PATH = "/version1/messaging"
ACCEPTED_CODES = range(100, 103)
REJECTED_CODES = range(401, 408)
DLR_STATUS: dict[str, MessageStatus | None] = {
    "Success": MessageStatus.DELIVERED,
    "Failed": MessageStatus.FAILED,
    "Rejected": MessageStatus.FAILED,
    "AbsentSubscriber": MessageStatus.UNDELIVERED,
    "Expired": MessageStatus.EXPIRED,
    "Sent": None,
    "Submitted": None,
    "Buffered": None,
}


class AfricasTalkingProtocol:
    name = "africastalking"

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        fields = {
            "username": gateway.username,
            "to": e164(message.msisdn),
            "message": message.text,
            "from": gateway.sender,
        }
        return WireRequest(
            "POST", endpoint(gateway.url, PATH), body=form_body(fields), headers={**FORM, "apiKey": secret}
        )

    refused_credentials = staticmethod(refused_credentials)

    def verdict(self, reply: Reply) -> SendVerdict:
        recipient = _recipient(reply)
        if recipient is None:
            return SendVerdict(Verdict.RETRY)
        code = recipient.get("statusCode")
        if isinstance(code, int) and code in ACCEPTED_CODES:
            ref = recipient.get("messageId")
            return SendVerdict(Verdict.ACCEPTED, str(ref) if ref else None)
        if isinstance(code, int) and code in REJECTED_CODES:
            return SendVerdict(Verdict.REJECTED)
        return SendVerdict(Verdict.RETRY)

    def reports(self, callback: Callback) -> list[Report]:
        fields = callback.form()
        ref, said = required(fields, "id", "status")
        if said not in DLR_STATUS:
            raise BadCallback(
                f"status {said!r} is not an Africa's Talking delivery status ({', '.join(DLR_STATUS)})"
            )
        reason = fields.get("failureReason") or None
        return [Report(None, ref, DLR_STATUS[said], said, reason)]

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        fields = callback.form()
        (sender,) = required(fields, "from")
        if "text" not in fields:
            raise BadCallback("no text in the callback")
        message = {"msisdn": sender, "text": fields["text"]}
        if fields.get("id"):
            message["id"] = fields["id"]
        if fields.get("date"):
            message["received_at"] = fields["date"]
        return [message]


def _recipient(reply: Reply) -> dict[str, Any] | None:
    """The one recipient of a well-formed answer (2xx with SMSMessageData.Recipients)."""
    if reply.status is None or not 200 <= reply.status < 300 or not isinstance(reply.payload, dict):
        return None
    data = reply.payload.get("SMSMessageData")
    recipients = data.get("Recipients") if isinstance(data, dict) else None
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
        return recipients[0]
    return None


AFRICAS_TALKING = AfricasTalkingProtocol()
