"""Infobip's SMS API v3 (SPEC §17): a JSON POST to `/sms/3/messages` with `Authorization: App`.

ISKA gives each destination its own `messageId` (our msgid), so reports name the message
directly. The answer's `status.groupName` PENDING takes it, REJECTED refuses it; 429 and 5xx
are tried again. Reports come as `{"results": [...]}`, up to 100 a POST: `status.groupName`
DELIVERED, UNDELIVERABLE, EXPIRED and REJECTED are final, PENDING is not. Inbound SMS come
the same way, as `results` with `from`, `text`, `messageId` and `receivedAt`.
"""

from __future__ import annotations

from typing import Any

from iska_pipelines.lib.http.client import Reply
from iska_pipelines.lib.regions.config import Gateway
from iska_pipelines.lib.sms.protocols.base import (
    JSON,
    BadCallback,
    Callback,
    Outgoing,
    Report,
    SendVerdict,
    Verdict,
    WireRequest,
    endpoint,
    json_body,
    protocol_callback,
    refused_credentials,
    required,
)
from iska_pipelines.lib.vocabulary import MessageStatus

PATH = "/sms/3/messages"
MAX_RESULTS = 100
DLR_STATUS: dict[str, MessageStatus | None] = {
    "DELIVERED": MessageStatus.DELIVERED,
    "UNDELIVERABLE": MessageStatus.UNDELIVERED,
    "EXPIRED": MessageStatus.EXPIRED,
    "REJECTED": MessageStatus.REJECTED,
    "PENDING": None,
}


class InfobipProtocol:
    name = "infobip"

    def request(self, message: Outgoing, gateway: Gateway, secret: str) -> WireRequest:
        one: dict[str, Any] = {
            "destinations": [{"to": message.msisdn, "messageId": message.msgid}],
            "content": {"text": message.text},
            "webhooks": {
                "delivery": {"url": protocol_callback(message.callback, self.name, msgid=message.msgid)}
            },
        }
        if gateway.sender:
            one["sender"] = gateway.sender
        return WireRequest(
            "POST",
            endpoint(gateway.url, PATH),
            body=json_body({"messages": [one]}),
            headers={**JSON, "Authorization": f"App {secret}"},
        )

    refused_credentials = staticmethod(refused_credentials)

    def verdict(self, reply: Reply) -> SendVerdict:
        if reply.status is None or not 200 <= reply.status < 300 or not isinstance(reply.payload, dict):
            return SendVerdict(Verdict.RETRY)
        messages = reply.payload.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        group = _group(first)
        if group in ("PENDING", "DELIVERED"):
            ref = first.get("messageId") if isinstance(first, dict) else None
            return SendVerdict(Verdict.ACCEPTED, str(ref) if ref else None)
        if group in ("REJECTED", "UNDELIVERABLE"):
            return SendVerdict(Verdict.REJECTED)
        return SendVerdict(Verdict.RETRY)

    def reports(self, callback: Callback) -> list[Report]:
        reports = []
        for result in _results(callback):
            (msgid,) = required(result, "messageId")
            group = _group(result)
            if group not in DLR_STATUS:
                raise BadCallback(f"status.groupName {group!r} is not an Infobip status group")
            error = result.get("error")
            detail = error.get("name") if isinstance(error, dict) and error.get("groupName") != "OK" else None
            reports.append(Report(msgid, msgid, DLR_STATUS[group], group or "", detail))
        return reports

    def inbound(self, callback: Callback) -> list[dict[str, str]]:
        messages = []
        for result in _results(callback):
            sender, ref = required(result, "from", "messageId")
            message = {"msisdn": sender, "text": str(result.get("text") or ""), "id": ref}
            if result.get("receivedAt"):
                message["received_at"] = str(result["receivedAt"])
            messages.append(message)
        return messages


def _group(item: object) -> str | None:
    status = item.get("status") if isinstance(item, dict) else None
    group = status.get("groupName") if isinstance(status, dict) else None
    return str(group) if group is not None else None


def _results(callback: Callback) -> list[dict[str, Any]]:
    results = callback.json_object().get("results")
    if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
        raise BadCallback('expected {"results": [...]} with at least one result')
    if len(results) > MAX_RESULTS:
        raise BadCallback(f"at most {MAX_RESULTS} results a callback, got {len(results)}")
    return results


INFOBIP = InfobipProtocol()
