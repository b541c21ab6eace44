"""`GET /sms/{name}/cgi-bin/sendsms`: a Kannel smsbox (SPEC §17).

`username`, `password` (one of the `tokens`; else 403 `Authorization failed for sendsms`),
`to`, `from`, `text`, `coding`, `charset`, `dlr-mask`, `dlr-url`. The text is decoded with
`charset` (default UTF-8, UTF-16BE with `coding=2`); without `coding=2` a text GSM-7 cannot
carry is refused with 400. Kannel answers 202 `0: Accepted for delivery`; a rejected
subscriber gets 400 `Number(s) has/have been denied by white- and/or black-lists.`, a fault
503 `Temporal failure, try again later.`. Reports are GETs of the dlr-url with `%d` replaced,
for the types in `dlr-mask`: 8 (delivered to the SMSC) and then 1 (delivered) or 2 (not
delivered); an SMSC's refusal is a lone 16. The msgid in the dlr-url's query identifies the
message: a repeat gets the first answer and no second SMS (no msgid there: no deduplication).
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from iska_pipelines.lib.sms.encoding import is_gsm7
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
ACCEPTED = "0: Accepted for delivery"
DENIED = "Number(s) has/have been denied by white- and/or black-lists."
UNAVAILABLE = "Temporal failure, try again later."
DELIVERED, UNDELIVERED, SMSC_SUBMIT, SMSC_REJECT = 1, 2, 8, 16  # dlr-mask bits (%d)
FINAL = {  # a report_statuses status -> Kannel's DLR type (others: not delivered)
    "delivered": DELIVERED,
    "undelivered": UNDELIVERED,
    "failed": UNDELIVERED,
    "expired": UNDELIVERED,
    "rejected": SMSC_REJECT,
}
UCS2 = "2"


class Kannel(Dialect):
    name = "kannel"

    def credential(self, request: Request) -> str | None:
        if not request.query_params.get("username"):
            return None
        return request.query_params.get("password")

    def unauthorised(self) -> Response:
        return _text(403, "Authorization failed for sendsms")

    async def read(self, request: Request) -> list[Outgoing] | Refused:
        query = _raw_query(request)
        to = query.get("to", b"").decode("utf-8", "replace").strip()
        if not to:
            return Refused("bad_request", _text(400, "Missing receiver number, rejected"))
        if not is_number(to):
            return Refused("bad_request", _text(400, DENIED))
        if "text" not in query:
            return Refused("bad_request", _text(400, "Wrong sendsms args, rejected"))
        coding = _field(query, "coding") or "0"
        if coding not in {"0", "1", UCS2}:
            return Refused("bad_request", _text(400, "Coding field misformed, rejected"))
        charset = _field(query, "charset") or ("UTF-16BE" if coding == UCS2 else "UTF-8")
        try:
            text = query["text"].decode(charset)
        except (LookupError, UnicodeDecodeError):
            return Refused("bad_request", _text(400, "Charset or body misformed, rejected"))
        if coding != UCS2 and not is_gsm7(text):
            detail = "Text has characters GSM-7 cannot carry and coding is not 2 (UCS-2), rejected"
            return Refused("bad_encoding", _text(400, detail))
        mask = _field(query, "dlr-mask") or _field(query, "dlrmask") or "0"
        if not mask.isdigit():
            return Refused("bad_request", _text(400, "DLR-Mask field misformed, rejected"))
        dlr_url = _field(query, "dlr-url") or _field(query, "dlrurl")
        msgid = next(iter(parse_qs(urlsplit(dlr_url).query).get("msgid", [])), None)
        details = {"dlr_url": dlr_url, "dlr_mask": int(mask)}
        key = f"{self.name}:{msgid}" if msgid else None
        return [Outgoing(digits(to), text, key, msgid, msgid or str(uuid.uuid4()), details)]

    def accepted(self, sms: Outgoing, gateway: str) -> Answer:
        return Answer(202, {"text": ACCEPTED})

    def rejected(self, sms: Outgoing) -> Answer:
        return Answer(400, {"text": DENIED})

    def respond(self, answers: list[Answer]) -> Response:
        (answer,) = answers
        return _text(answer.status_code, answer.body["text"])

    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        url, mask = sms.details["dlr_url"], sms.details["dlr_mask"]
        final = FINAL.get(status, UNDELIVERED)
        steps = [(final, 1.0)] if final == SMSC_REJECT else [(SMSC_SUBMIT, 0.5), (final, 1.0)]
        return [
            Due(Outbound("GET", url.replace("%d", str(kind))), share)
            for kind, share in steps
            if url and mask & kind
        ]

    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """The sms-service's get-url `...&from=%p&text=%a&id=%I`: a GET."""
        query = urlencode({"from": message.msisdn, "text": message.text, "id": message.id})
        return Outbound("GET", f"{url}&{query}")

    def refusal(self, status_code: int, detail: str) -> Response:
        if status_code >= 500:  # Kannel has one answer for anything it cannot do now
            return _text(503, UNAVAILABLE)
        return _text(status_code, detail)

    def malformed(self) -> Response:
        return _text(202, "0")  # cut short before its colon


KANNEL = Kannel()


@router.get("/sms/{name}/cgi-bin/sendsms")
async def sendsms(name: str, request: Request) -> Response:
    return await send(request, name, KANNEL)


def _raw_query(request: Request) -> dict[str, bytes]:
    """The query's values as bytes (the first of a repeated name, as Kannel reads it): the text
    is in `charset`, not necessarily UTF-8."""
    fields: dict[str, bytes] = {}
    raw = request.scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(raw, keep_blank_values=True, encoding="latin-1"):
        fields.setdefault(name, value.encode("latin-1"))
    return fields


def _field(query: dict[str, bytes], name: str) -> str:
    return query.get(name, b"").decode("utf-8", "replace").strip()


def _text(status_code: int, text: str) -> Response:
    """Kannel's answers are one line of text/html."""
    return Response(text, status_code=status_code, media_type="text/html")
