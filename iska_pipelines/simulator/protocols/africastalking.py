"""`POST /sms/{name}/version1/messaging`: Africa's Talking's bulk SMS API (SPEC §17).

A form `username`, `to` (`+233...`, several comma-separated), `message`, `from`, with the
`apiKey` header (one of the `tokens`; else 401). The answer is 201 `{"SMSMessageData":
{"Message", "Recipients": [{"statusCode": 101, "number", "status": "Success", "cost",
"messageId": "ATXid_..."}]}}`; a rejected subscriber's recipient is statusCode 406
`UserInBlacklist`. Reports go to the account's one callback URL (the
`africastalking_callback_url` knob; empty: none), as a form `id` (the messageId), `status`
(Success, AbsentSubscriber, Failed, Rejected, Expired), `phoneNumber`, `networkCode`,
`failureReason`, `retryCount`. The API has no client-chosen message id, so nothing identifies a
repeat: every request is a new SMS (the client must not resend what was accepted).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from iska_pipelines.simulator.incoming import read_form
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
CURRENCY, PRICE_PER_SEGMENT = "GHS", 0.03
NETWORK_CODE = "62001"  # MTN Ghana
SENT_CODES = (100, 101, 102)  # Processed, Sent, Queued
STATUS = {  # a report_statuses status -> (status, failureReason)
    "delivered": ("Success", ""),
    "undelivered": ("AbsentSubscriber", ""),
    "failed": ("Failed", "DeliveryFailure"),
    "rejected": ("Rejected", "UserInBlackList"),
    "expired": ("Expired", ""),
}


class AfricasTalking(Dialect):
    name = "africastalking"

    def credential(self, request: Request) -> str | None:
        return request.headers.get("apiKey")

    def unauthorised(self) -> Response:
        return PlainTextResponse("The supplied authentication is invalid", status_code=401)

    async def read(self, request: Request) -> list[Outgoing] | Refused:
        form = await read_form(request)
        for name in ("username", "to", "message"):
            if not form.get(name, "").strip():
                return Refused(
                    "bad_request", self.refusal(400, f"Request is missing required form field '{name}'")
                )
        numbers = [number.strip() for number in form["to"].split(",") if number.strip()]
        wrong = [number for number in numbers if not is_number(number)]
        if wrong:
            return Refused("bad_request", self.refusal(400, f"Invalid phone number: {wrong[0]}"))
        return [
            Outgoing(
                digits(number),
                form["message"],
                None,
                None,
                f"ATXid_{uuid.uuid4().hex}",
                {"number": f"+{digits(number)}"},
            )
            for number in numbers
        ]

    def accepted(self, sms: Outgoing, gateway: str) -> Answer:
        cost = f"{CURRENCY} {PRICE_PER_SEGMENT * sms.segments:.4f}"
        return Answer(
            201,
            {
                "statusCode": 101,
                "number": sms.details["number"],
                "status": "Success",
                "cost": cost,
                "messageId": sms.ref,
            },
        )

    def rejected(self, sms: Outgoing) -> Answer:
        recipient = {
            "statusCode": 406,
            "number": sms.details["number"],
            "status": "UserInBlacklist",
            "cost": "0",
            "messageId": "None",
        }
        return Answer(201, recipient)

    def respond(self, answers: list[Answer]) -> Response:
        recipients = [answer.body for answer in answers]
        sent = [r for r in recipients if r["statusCode"] in SENT_CODES]
        total = sum(float(r["cost"].split()[-1]) for r in sent)
        cost = f"{CURRENCY} {total:.4f}" if sent else "0"
        message = f"Sent to {len(sent)}/{len(recipients)} Total Cost: {cost}"
        return JSONResponse(
            {"SMSMessageData": {"Message": message, "Recipients": recipients}}, status_code=201
        )

    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        if not knobs.africastalking_callback_url:
            return []
        said, reason = STATUS.get(status, STATUS["failed"])
        form = {
            "id": sms.ref,
            "status": said,
            "phoneNumber": sms.details["number"],
            "networkCode": NETWORK_CODE,
            "failureReason": reason,
            "retryCount": "0",
        }
        return [Due(Outbound("POST", knobs.africastalking_callback_url, form=form))]

    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """A form `from, to, text, date, id, linkId, networkCode`."""
        form = {
            "from": f"+{digits(message.msisdn)}",
            "to": message.to,
            "text": message.text,
            "date": message.at.strftime("%Y-%m-%d %H:%M:%S"),
            "id": message.id,
            "linkId": uuid.uuid5(uuid.NAMESPACE_URL, message.id).hex,
            "networkCode": NETWORK_CODE,
        }
        return Outbound("POST", url, form=form)

    def refusal(self, status_code: int, detail: str) -> Response:
        return PlainTextResponse(detail, status_code=status_code)

    def malformed(self) -> Response:
        return PlainTextResponse('{"SMSMessageData": {"Recip', status_code=201, media_type="application/json")


AFRICASTALKING = AfricasTalking()


@router.post("/sms/{name}/version1/messaging")
async def messaging(name: str, request: Request) -> Response:
    return await send(request, name, AFRICASTALKING)
