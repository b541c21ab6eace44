"""ISKA's own protocol (SPEC §7): a JSON POST per message, `{"status": "accepted"}` back, and
`{"msgid", "status"}` reports posted to the message's callback URL."""

from __future__ import annotations

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.encoding import encoding_of
from iska_pipelines.lib.sms.protocols.base import (
    JSON,
    BadCallback,
    Callback,
    Outgoing,
    Report,
    SendVerdict,
    Verdict,
    WireRequest,
    json_body,
    refused_credentials,
    required,
)
from iska_pipelines.lib.vocabulary import REPORT_STATUSES, MessageStatus

VERDICTS = {"accepted": Verdict.ACCEPTED, "rejected": Verdict.REJECTED}


class IskaProtocol:
    name = "iska"

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        payload = {
            "msisdn": message.msisdn,
            "msgid": message.msgid,
            "text": message.text,
            "callback": message.callback,
            "encoding": encoding_of(message.text),
        }
        return WireRequest("POST", gateway.url, body=json_body(payload), headers={**JSON, "Auth-Key": secret})

    refused_credentials = staticmethod(refused_credentials)

    def verdict(self, reply: Reply) -> SendVerdict:
        if reply.status == 200 and isinstance(reply.payload, dict):
            return SendVerdict(VERDICTS.get(str(reply.payload.get("status")), Verdict.RETRY))
        return SendVerdict(Verdict.RETRY)

    def reports(self, callback: Callback) -> list[Report]:
        body = callback.json_object()
        msgid, said = required(body, "msgid", "status")
        status = said.lower()
        if status not in REPORT_STATUSES:
            raise BadCallback(f"unknown status {said!r}; expected one of {', '.join(REPORT_STATUSES)}")
        return [Report(msgid, None, MessageStatus(status), said)]

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        body = callback.json_object() if callback.body.lstrip().startswith(b"{") else callback.form()
        return [{k: str(v) for k, v in body.items() if v is not None}]


ISKA = IskaProtocol()
