"""`POST /sms/{name}/sms/3/messages`: Infobip's SMS API v3 (SPEC §17).

JSON `{"messages": [{"sender", "destinations": [{"to", "messageId"}], "content": {"text"},
"webhooks": {"delivery": {"url"}}}]}` with `Authorization: App <key>` (one of the `tokens`;
else 401). The answer is 200 `{"bulkId", "messages": [{"messageId", "destination", "status":
{"groupName": "PENDING", ...}}]}`, one entry a destination; a rejected subscriber's entry has
groupName REJECTED. Each report is a POST of `{"results": [...]}` (one result a POST) to the
message's `webhooks.delivery.url`, with `status.groupName` DELIVERED, UNDELIVERABLE, EXPIRED or
REJECTED and an `error` object. A destination's `messageId` identifies the message: a repeat
gets the first answer and no second SMS (a destination without one is never deduplicated).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from iska_pipelines.lib.sms.encoding import measure
from iska_pipelines.simulator.incoming import read_object
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Answer
from iska_pipelines.simulator.outbound import Outbound
from iska_pipelines.simulator.protocols.core import (
    Dialect,
    Due,
    Outgoing,
    Refused,
    Texted,
    digits,
    is_number,
    send,
)

router = APIRouter()


def _status(group_id: int, group: str, id_: int, name: str, description: str) -> dict[str, Any]:
    return {"groupId": group_id, "groupName": group, "id": id_, "name": name, "description": description}


def _error(
    group_id: int, group: str, id_: int, name: str, description: str, permanent: bool
) -> dict[str, Any]:
    return _status(group_id, group, id_, name, description) | {"permanent": permanent}


PENDING = _status(1, "PENDING", 26, "PENDING_ACCEPTED", "Message sent to next instance")
REFUSED = _status(5, "REJECTED", 14, "REJECTED_DESTINATION", "Message rejected by destination")
NO_ERROR = _error(0, "OK", 0, "NO_ERROR", "No Error", False)
ABSENT = _error(1, "HANDSET_ERRORS", 27, "EC_ABSENT_SUBSCRIBER", "Absent Subscriber", False)
REPORTS = {  # a report_statuses status -> (status, error)
    "delivered": (
        _status(3, "DELIVERED", 5, "DELIVERED_TO_HANDSET", "Message delivered to handset"),
        NO_ERROR,
    ),
    "undelivered": (
        _status(2, "UNDELIVERABLE", 9, "UNDELIVERABLE_NOT_DELIVERED", "Message sent not delivered"),
        ABSENT,
    ),
    "failed": (
        _status(2, "UNDELIVERABLE", 4, "UNDELIVERABLE_REJECTED_OPERATOR", "Message rejected by operator"),
        _error(3, "OPERATOR_ERRORS", 34, "EC_SYSTEM_FAILURE", "System Failure", False),
    ),
    "rejected": (
        _status(5, "REJECTED", 6, "REJECTED_NETWORK", "Network is forbidden"),
        _error(2, "USER_ERRORS", 13, "EC_CALL_BARRED", "Call Barred", True),
    ),
    "expired": (_status(4, "EXPIRED", 15, "EXPIRED_EXPIRED", "Message expired"), ABSENT),
}
EXCEPTIONS = {400: "BAD_REQUEST", 429: "TOO_MANY_REQUESTS", 500: "GENERAL_ERROR", 503: "SERVICE_UNAVAILABLE"}
PRICE = {"pricePerMessage": 0.0, "currency": "EUR"}


class Infobip(Dialect):
    name = "infobip"

    def credential(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return key.strip() if scheme.lower() == "app" else None

    def unauthorised(self) -> Response:
        return _exception(401, "UNAUTHORIZED", "Invalid login details")

    async def read(self, request: Request) -> list[Outgoing] | Refused:
        body, problem = await read_object(request)
        messages = body.get("messages")
        if problem is not None or not isinstance(messages, list) or not messages:
            return Refused("bad_request", self.refusal(400, problem or "messages: must not be empty"))
        bulk, sent_at = str(uuid.uuid4()), datetime.now(UTC)
        outgoing = []
        for n, message in enumerate(messages):
            read = _message(message, n, bulk, sent_at)
            if isinstance(read, str):
                return Refused("bad_request", self.refusal(400, read))
            outgoing.extend(read)
        return outgoing

    def accepted(self, sms: Outgoing, gateway: str) -> Answer:
        return Answer(200, {"bulkId": sms.details["bulk"], "message": _entry(sms, PENDING)})

    def rejected(self, sms: Outgoing) -> Answer:
        return Answer(200, {"bulkId": sms.details["bulk"], "message": _entry(sms, REFUSED)})

    def respond(self, answers: list[Answer]) -> Response:
        entries = [answer.body["message"] for answer in answers]
        return JSONResponse({"bulkId": answers[0].body["bulkId"], "messages": entries}, status_code=200)

    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        url = sms.details["webhook"]
        if not url:
            return []
        said, error = REPORTS.get(status, REPORTS["undelivered"])
        done_at = sms.details["sent_at"] + timedelta(seconds=knobs.report_delay_seconds)
        result = {
            "bulkId": sms.details["bulk"],
            "messageId": sms.ref,
            "to": sms.details["to"],
            "sentAt": _stamp(sms.details["sent_at"]),
            "doneAt": _stamp(done_at),
            "smsCount": sms.segments,
            "price": PRICE,
            "status": said,
            "error": error,
        }
        return [Due(Outbound("POST", url, json={"results": [result]}))]

    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """JSON `{"results": [{"messageId", "from", "to", "text", "cleanText", "keyword",
        "receivedAt", "smsCount"}], "messageCount", "pendingMessageCount"}`; the keyword is
        the first word (upper case), cleanText the rest."""
        first, _, rest = message.text.strip().partition(" ")
        result = {
            "messageId": message.id,
            "from": digits(message.msisdn),
            "to": message.to,
            "text": message.text,
            "cleanText": rest.strip(),
            "keyword": first.upper(),
            "receivedAt": _stamp(message.at),
            "smsCount": measure(message.text).segments,
            "price": PRICE,
            "callbackData": None,
        }
        return Outbound("POST", url, json={"results": [result], "messageCount": 1, "pendingMessageCount": 0})

    def refusal(self, status_code: int, detail: str) -> Response:
        return _exception(status_code, EXCEPTIONS.get(status_code, "GENERAL_ERROR"), detail)

    def malformed(self) -> Response:
        return PlainTextResponse('{"bulkId": "', status_code=200, media_type="application/json")


INFOBIP = Infobip()


@router.post("/sms/{name}/sms/3/messages")
async def messages(name: str, request: Request) -> Response:
    return await send(request, name, INFOBIP)


def _message(message: object, n: int, bulk: str, sent_at: datetime) -> list[Outgoing] | str:
    """The SMS of `messages[n]`, or what is wrong with it."""
    if not isinstance(message, dict):
        return f"messages[{n}]: must be an object"
    content, destinations = message.get("content"), message.get("destinations")
    text = content.get("text") if isinstance(content, dict) else None
    if not isinstance(text, str) or not text:
        return f"messages[{n}].content.text: must not be empty"
    if not isinstance(destinations, list) or not destinations:
        return f"messages[{n}].destinations: must not be empty"
    webhooks = message.get("webhooks")
    delivery = webhooks.get("delivery") if isinstance(webhooks, dict) else None
    webhook = delivery.get("url") if isinstance(delivery, dict) else None
    outgoing = []
    for d, destination in enumerate(destinations):
        to = destination.get("to") if isinstance(destination, dict) else None
        if not isinstance(to, str) or not is_number(to):
            return f"messages[{n}].destinations[{d}].to: must be a phone number"
        msgid = destination.get("messageId")
        msgid = msgid if isinstance(msgid, str) and msgid else None
        details = {
            "to": to,
            "bulk": bulk,
            "webhook": webhook if isinstance(webhook, str) else "",
            "sent_at": sent_at,
        }
        key = f"{Infobip.name}:{msgid}" if msgid else None
        outgoing.append(Outgoing(digits(to), text, key, msgid, msgid or str(uuid.uuid4()), details))
    return outgoing


def _entry(sms: Outgoing, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": sms.ref,
        "status": status,
        "destination": sms.details["to"],
        "details": {"messageCount": sms.segments},
    }


def _stamp(at: datetime) -> str:
    """Infobip's timestamps: `2026-12-07T10:00:00.000+0000`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _exception(status_code: int, message_id: str, text: str) -> JSONResponse:
    body = {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}
    return JSONResponse(body, status_code=status_code)
