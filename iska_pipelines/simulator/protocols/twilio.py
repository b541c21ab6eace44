"""`POST /sms/{name}/2010-04-01/Accounts/{sid}/Messages.json`: Twilio's Messages API (SPEC §17).

A form `To` (`+233...`), `From` (or `MessagingServiceSid`), `Body`, `StatusCallback`, with
basic auth (user: the Account SID, password: one of the `tokens`; else 401 `{"code": 20003,
"message": "Authenticate"}`). The answer is 201 with the message resource (`sid` `SM...`,
`status` `queued`); a rejected subscriber gets 400 `{"code": 21610, ...}`, a fault Twilio's
error object (20429, 20503...). Reports are forms POSTed to the StatusCallback
(`MessageSid`, `MessageStatus`, `AccountSid`, `From`, `To`, and `ErrorCode` when not
delivered): `sent`, then `delivered`, `undelivered` (30003, 30007 for a carrier's refusal) or
a lone `failed` (30008, 30036 expired); each is signed with `X-Twilio-Signature` under the auth
token the message was sent with, as Twilio's RequestValidator checks it. The msgid in the
StatusCallback's query identifies the message: a repeat gets the first answer and no second SMS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from twilio.request_validator import RequestValidator

from iska_pipelines.lib.sms.encoding import measure
from iska_pipelines.simulator.incoming import basic_credentials, read_form
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
API_VERSION = "2010-04-01"
SIGNATURE_HEADER = "X-Twilio-Signature"
INBOUND_ACCOUNT_SID = "AC" + uuid.uuid5(uuid.NAMESPACE_URL, "iska-simulator").hex  # a fixed account
STATUS = {  # a report_statuses status -> (MessageStatus, ErrorCode)
    "delivered": ("delivered", None),
    "undelivered": ("undelivered", "30003"),  # unreachable destination handset
    "rejected": ("undelivered", "30007"),  # filtered by the carrier
    "failed": ("failed", "30008"),  # unknown error
    "expired": ("failed", "30036"),  # validity period expired
}
ERROR_CODES = {429: 20429, 500: 20500, 503: 20503, 504: 20504}


class Twilio(Dialect):
    name = "twilio"

    def credential(self, request: Request) -> str | None:
        credentials = basic_credentials(request)
        return credentials[1] if credentials is not None and credentials[0] else None

    def unauthorised(self) -> Response:
        response = _error(401, 20003, "Authenticate")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response

    async def read(self, request: Request) -> list[Outgoing] | Refused:
        form = await read_form(request)
        to, body = form.get("To", "").strip(), form.get("Body", "")
        sender, service = form.get("From", "").strip(), form.get("MessagingServiceSid", "").strip()
        if not to:
            return Refused("bad_request", _error(400, 21604, "A 'To' phone number is required."))
        if not body:
            return Refused("bad_request", _error(400, 21602, "Message body is required."))
        if not sender and not service:
            return Refused("bad_request", _error(400, 21603, "A 'From' phone number is required."))
        if not to.startswith("+") or not is_number(to):
            return Refused("bad_request", _error(400, 21211, f"Invalid 'To' Phone Number: {to}"))
        callback = form.get("StatusCallback", "")
        msgid = next(iter(parse_qs(urlsplit(callback).query).get("msgid", [])), None)
        details = {
            "account": request.path_params["sid"],
            "to": to,
            "from": sender or None,
            "service": service or None,
            "callback": callback,
        }
        key = f"{self.name}:{msgid}" if msgid else None
        return [Outgoing(digits(to), body, key, msgid, f"SM{uuid.uuid4().hex}", details)]

    def accepted(self, sms: Outgoing, gateway: str) -> Answer:
        account, now = sms.details["account"], format_datetime(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sms.ref}"
        resource = {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": sms.text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sms.details["from"],
            "messaging_service_sid": sms.details["service"],
            "num_media": "0",
            "num_segments": str(sms.segments),
            "price": None,
            "price_unit": "USD",
            "sid": sms.ref,
            "status": "queued" if sms.details["from"] else "accepted",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": sms.details["to"],
            "uri": f"{uri}.json",
        }
        return Answer(201, resource)

    def rejected(self, sms: Outgoing) -> Answer:
        return Answer(400, _error_body(400, 21610, "Attempt to send to unsubscribed recipient"))

    def respond(self, answers: list[Answer]) -> Response:
        (answer,) = answers
        return JSONResponse(answer.body, status_code=answer.status_code)

    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        callback = sms.details["callback"]
        if not callback:
            return []
        final, error = STATUS.get(status, STATUS["undelivered"])
        steps = [(final, error, 1.0)] if final == "failed" else [("sent", None, 0.5), (final, error, 1.0)]
        reports = []
        for said, code, share in steps:
            params = {
                "SmsSid": sms.ref,
                "SmsStatus": said,
                "MessageStatus": said,
                "To": sms.details["to"],
                "MessageSid": sms.ref,
                "AccountSid": sms.details["account"],
                "From": sms.details["from"] or "",
                "ApiVersion": API_VERSION,
            }
            if sms.details["service"]:
                params["MessagingServiceSid"] = sms.details["service"]
            if code:
                params["ErrorCode"] = code
            reports.append(Due(signed(callback, params, token), share))
        return reports

    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """A form `MessageSid, AccountSid, From, To, Body, NumMedia`, signed with the
        `twilio_auth_token` knob."""
        form = {
            "MessageSid": message.id,
            "SmsMessageSid": message.id,
            "SmsSid": message.id,
            "AccountSid": INBOUND_ACCOUNT_SID,
            "From": f"+{digits(message.msisdn)}",
            "To": message.to,
            "Body": message.text,
            "NumMedia": "0",
            "NumSegments": str(measure(message.text).segments),
            "SmsStatus": "received",
            "ApiVersion": API_VERSION,
        }
        return signed(url, form, knobs.twilio_signing_token())

    def fresh_id(self) -> str:
        return f"SM{uuid.uuid4().hex}"

    def refusal(self, status_code: int, detail: str) -> Response:
        code = ERROR_CODES.get(status_code, 20000 + status_code)
        return _error(status_code, code, HTTPStatus(status_code).phrase)

    def malformed(self) -> Response:
        return PlainTextResponse('{"sid": "SM', status_code=201, media_type="application/json")


TWILIO = Twilio()


@router.post("/sms/{name}/2010-04-01/Accounts/{sid}/Messages.json")
async def messages(name: str, sid: str, request: Request) -> Response:
    return await send(request, name, TWILIO)


def signed(url: str, form: dict[str, str], token: str) -> Outbound:
    """A form POST to `url` with the `X-Twilio-Signature` Twilio would give it under `token`."""
    signature = RequestValidator(token).compute_signature(url, form)
    return Outbound("POST", url, form=form, headers={SIGNATURE_HEADER: signature})


def _error_body(status_code: int, code: int, message: str) -> dict:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status_code}


def _error(status_code: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(_error_body(status_code, code, message), status_code=status_code)
