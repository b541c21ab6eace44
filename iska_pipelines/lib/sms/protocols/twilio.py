"""Twilio's Messages API (SPEC §17): a form POST per message, basic auth with the Account SID.

201 takes the message (its `sid` is kept); 400 refuses it (21211 invalid number, 21610
unsubscribed, ...); 429 and 5xx are tried again. Twilio posts each status change to the
message's StatusCallback: `delivered`, `undelivered` and `failed` are final (with `ErrorCode`),
`queued`/`sending`/`sent`/`accepted`/`scheduled` are not. Twilio signs every request it makes
(`X-Twilio-Signature`); ISKA checks it with Twilio's own RequestValidator and the account's
auth token, besides the msgid's signature in the URL.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from twilio.request_validator import RequestValidator

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
    protocol_callback,
    refused_credentials,
    required,
)
from iska_pipelines.lib.vocabulary import MessageStatus

SIGNATURE_HEADER = "x-twilio-signature"
NOT_FINAL = ("queued", "sending", "sent", "accepted", "scheduled", "receiving", "received", "read")
DLR_STATUS: dict[str, MessageStatus | None] = {
    "delivered": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    **dict.fromkeys(NOT_FINAL, None),
}


class TwilioProtocol:
    name = "twilio"

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        fields = {
            "To": e164(message.msisdn),
            "From": gateway.sender,
            "Body": message.text,
            "StatusCallback": protocol_callback(message.callback, self.name, msgid=message.msgid),
        }
        credentials = base64.b64encode(f"{gateway.username}:{secret}".encode()).decode()
        path = f"/2010-04-01/Accounts/{gateway.username}/Messages.json"
        return WireRequest(
            "POST",
            endpoint(gateway.url, path),
            body=form_body(fields),
            headers={**FORM, "Authorization": f"Basic {credentials}"},
        )

    refused_credentials = staticmethod(refused_credentials)

    def verdict(self, reply: Reply) -> SendVerdict:
        if reply.status == 201 and isinstance(reply.payload, dict) and reply.payload.get("sid"):
            return SendVerdict(Verdict.ACCEPTED, str(reply.payload["sid"]))
        if reply.status == 400:
            return SendVerdict(Verdict.REJECTED)
        return SendVerdict(Verdict.RETRY)

    def reports(self, callback: Callback) -> list[Report]:
        fields = callback.form()
        (msgid,) = required(callback.query, "msgid")
        sid, said = required(fields, "MessageSid", "MessageStatus")
        if said not in DLR_STATUS:
            raise BadCallback(f"MessageStatus {said!r} is not a Twilio message status")
        error = fields.get("ErrorCode") or None
        return [Report(msgid, sid, DLR_STATUS[said], said, f"Twilio error {error}" if error else None)]

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        fields = callback.form()
        sender, sid = required(fields, "From", "MessageSid")
        return [{"msisdn": sender, "text": fields.get("Body", ""), "id": sid}]


def signed_by_twilio(callback: Callback, auth_tokens: Iterable[str]) -> bool:
    """Whether `X-Twilio-Signature` is Twilio's for this URL and form, under any of the
    accounts' auth tokens (RequestValidator also tries the URL with and without its port)."""
    signature = next((v for k, v in callback.headers.items() if k.lower() == SIGNATURE_HEADER), "")
    if not signature:
        return False
    try:
        params = callback.form()
    except BadCallback:  # not a form: nothing Twilio signed
        return False
    return any(
        RequestValidator(token).validate(callback.url, params, signature) for token in auth_tokens if token
    )


TWILIO = TwilioProtocol()
