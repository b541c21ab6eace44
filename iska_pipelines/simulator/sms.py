"""`POST /sms/{name}`: an SMS gateway (SPEC §7, §9) speaking ISKA's own protocol, `iska`, as
many of them as there are names.

Accepts `{"msisdn", "msgid", "text", "callback"}` (and the optional `"encoding"`, `gsm7` or
`ucs2`: a text declared GSM-7 that GSM-7 cannot carry is 400, as a real gateway would garble or
refuse it) with `Auth-Key`, answers
`{"status": "accepted"}`, and posts `{"msgid", "status"}` to the callback later. The msgid (or
an `Idempotency-Key`) identifies a message: a repeat gets the first answer and no second SMS.
The same gateway names also speak Kannel, Africa's Talking, Twilio and Infobip at those
providers' own paths under `/sms/{name}/` (`protocols/`), with the same knobs and counters.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from iska_pipelines.lib.sms.encoding import Encoding, is_gsm7
from iska_pipelines.simulator.faults import JSON_WORDING
from iska_pipelines.simulator.incoming import read_object
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Answer
from iska_pipelines.simulator.outbound import Outbound
from iska_pipelines.simulator.protocols.core import Dialect, Due, Outgoing, Refused, Texted, send

router = APIRouter()
FIELDS = ("msisdn", "msgid", "text", "callback")


class Iska(Dialect):
    name = "iska"

    def credential(self, request: Request) -> str | None:
        return request.headers.get("Auth-Key", "")

    def unauthorised(self) -> Response:
        return JSONResponse({"status": "error", "detail": "invalid Auth-Key"}, status_code=401)

    async def read(self, request: Request) -> list[Outgoing] | Refused:
        body, problem = await read_object(request)
        missing = [f for f in FIELDS if not isinstance(body.get(f), str) or not body.get(f)]
        if problem is not None or missing:
            detail = problem or f"missing or empty: {', '.join(missing)}"
            return Refused("bad_request", self.refusal(422, detail))
        encoding_problem = _encoding_problem(body)
        if encoding_problem is not None:
            return Refused("bad_encoding", self.refusal(400, encoding_problem))
        key = request.headers.get("Idempotency-Key") or body["msgid"]
        details = {"callback": body["callback"]}
        return [Outgoing(body["msisdn"], body["text"], key, body["msgid"], body["msgid"], details)]

    def accepted(self, sms: Outgoing, gateway: str) -> Answer:
        return Answer(200, {"status": "accepted", "msgid": sms.msgid, "gateway": gateway})

    def rejected(self, sms: Outgoing) -> Answer:
        return Answer(200, {"status": "rejected", "msgid": sms.msgid, "detail": "subscriber barred"})

    def respond(self, answers: list[Answer]) -> Response:
        (answer,) = answers
        return JSONResponse(answer.body, status_code=answer.status_code)

    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        report = {"msgid": sms.msgid, "status": status}
        return [Due(Outbound("POST", sms.details["callback"], json=report))]

    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """JSON `{"msisdn", "text", "id", "received_at"}`, or the form `from, text, id, date`."""
        at = message.at.isoformat()
        if message.as_form:
            form = {"from": message.msisdn, "text": message.text, "id": message.id, "date": at}
            return Outbound("POST", url, form=form)
        fields = {"msisdn": message.msisdn, "text": message.text, "id": message.id, "received_at": at}
        return Outbound("POST", url, json=fields)

    def refusal(self, status_code: int, detail: str) -> Response:
        return JSON_WORDING.refusal(status_code, detail)

    def malformed(self) -> Response:
        return JSON_WORDING.malformed()


ISKA = Iska()


@router.post("/sms/{name}")
async def send_sms(name: str, request: Request) -> Response:
    return await send(request, name, ISKA)


def _encoding_problem(body: dict) -> str | None:
    declared = body.get("encoding")
    if declared is None:
        return None
    if declared not in set(Encoding):
        return f"encoding must be gsm7 or ucs2, got {declared!r}"
    if declared == Encoding.GSM7 and not is_gsm7(body["text"]):
        return "encoding gsm7 declared, but the text has characters GSM-7 cannot carry"
    return None
