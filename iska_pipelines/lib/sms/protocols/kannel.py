"""Kannel's smsbox (SPEC §17): `GET /cgi-bin/sendsms`, DLRs to the `dlr-url`, MO by sms-service.

Kannel answers 202 `0: Accepted for delivery` or `3: Queued for later delivery`; 503 when it
cannot take messages now (retried); 403 `Authorization failed for sendsms` to wrong credentials
(sending stops); any other 4xx (403 `Not routable`, a blacklisted number, ...) refuses the
message. Kannel calls the
dlr-url it was given with `%d` replaced by the report type: 1 delivered to the phone, 2 not
delivered to it, 16 refused by the SMSC, 4 and 8 steps on the way (queued, delivered to the
SMSC) that change nothing. The message is named by our msgid in that URL: Kannel's own `%p`/`%P`
are swapped in DLRs, so they name nothing reliably.
"""

from __future__ import annotations

from urllib.parse import urlencode

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.encoding import Encoding, encoding_of
from iska_pipelines.lib.sms.protocols.base import (
    BadCallback,
    Callback,
    Outgoing,
    Report,
    SendVerdict,
    Verdict,
    WireRequest,
    endpoint,
    protocol_callback,
    required,
)
from iska_pipelines.lib.vocabulary import MessageStatus

PATH = "/cgi-bin/sendsms"
DLR_MASK = 1 | 2 | 8 | 16  # delivered, undelivered, to the SMSC, refused by the SMSC
DLR_STATUS = {
    1: MessageStatus.DELIVERED,
    2: MessageStatus.UNDELIVERED,
    16: MessageStatus.REJECTED,
    4: None,  # queued on the SMSC: not final
    8: None,  # delivered to the SMSC: not final
}


class KannelProtocol:
    name = "kannel"

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        fields = {
            "username": gateway.username,
            "password": secret,
            "to": message.msisdn,
            "text": message.text,
            "charset": "utf-8",  # the text's bytes; Kannel converts them for the link
            "dlr-mask": str(DLR_MASK),
            "dlr-url": protocol_callback(message.callback, self.name, msgid=message.msgid) + "&status=%d",
        }
        if gateway.sender:
            fields["from"] = gateway.sender
        if encoding_of(message.text) == Encoding.UCS2:
            fields["coding"] = "2"
        return WireRequest("GET", endpoint(gateway.url, PATH), query=urlencode(fields))

    def refused_credentials(self, reply: Reply) -> bool:
        """Kannel answers 403 both to a wrong sendsms-user and to a message it cannot route
        ("Not routable. Do not try again."): only the first stops sending."""
        return reply.status in (401, 403) and "authorization failed" in reply.text.lower()

    def verdict(self, reply: Reply) -> SendVerdict:
        if reply.status == 202 and reply.text.lstrip().startswith(("0:", "3:")):
            return SendVerdict(Verdict.ACCEPTED)
        if reply.status is not None and 400 <= reply.status < 500 and reply.status != 429:
            return SendVerdict(Verdict.REJECTED)
        return SendVerdict(Verdict.RETRY)

    def reports(self, callback: Callback) -> list[Report]:
        msgid, said = required(callback.query, "msgid", "status")
        try:
            kind = int(said)
        except ValueError:
            raise BadCallback(f"status {said!r} is not a Kannel DLR type (1, 2, 4, 8 or 16)") from None
        if kind not in DLR_STATUS:
            raise BadCallback(f"status {said!r} is not a Kannel DLR type (1, 2, 4, 8 or 16)")
        return [Report(msgid, None, DLR_STATUS[kind], said)]

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        sender, text = callback.query.get("from"), callback.query.get("text")
        if sender is None or text is None:
            raise BadCallback("Kannel's get-url must carry from=%p and text=%a (and id=%I)")
        fields = {"msisdn": sender, "text": text}
        if callback.query.get("id"):
            fields["id"] = callback.query["id"]
        return [fields]


KANNEL = KannelProtocol()
