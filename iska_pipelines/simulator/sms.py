"""`POST /sms/{name}`: an SMS gateway (SPEC §7, §9), as many of them as there are names.

Accepts `{"msisdn", "msgid", "text", "callback"}` (and the optional `"encoding"`, `gsm7` or
`ucs2`: a text declared GSM-7 that GSM-7 cannot carry is 400, as a real gateway would garble or
refuse it) with `Auth-Key`, answers
`{"status": "accepted"}`, and posts `{"msgid", "status"}` to the callback later. The msgid (or
an `Idempotency-Key`) identifies a message: a repeat gets the first answer and no second SMS.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from iska_pipelines.lib.sms.encoding import Encoding, is_gsm7, measure
from iska_pipelines.simulator.faults import AFTER_THE_FACT, hang, injected_fault, over_rate
from iska_pipelines.simulator.incoming import authorised, read_object
from iska_pipelines.simulator.ledger import Answer

router = APIRouter()
SCOPE = "sms"
FIELDS = ("msisdn", "msgid", "text", "callback")


@router.post("/sms/{name}")
async def send(name: str, request: Request) -> Response:
    sim = request.app.state.sim
    sim.ledger.count(SCOPE, "requests")
    throttled = over_rate(sim.knobs, sim.ledger, f"sms/{name}", SCOPE)
    if throttled is not None:
        return throttled
    if not authorised(request, sim.knobs):
        sim.ledger.count(SCOPE, "unauthorised")
        return JSONResponse({"status": "error", "detail": "invalid Auth-Key"}, status_code=401)
    body, problem = await read_object(request)
    missing = [f for f in FIELDS if not isinstance(body.get(f), str) or not body.get(f)]
    if problem is not None or missing:
        sim.ledger.count(SCOPE, "bad_request")
        detail = problem or f"missing or empty: {', '.join(missing)}"
        return JSONResponse({"status": "error", "detail": detail}, status_code=422)
    encoding_problem = _encoding_problem(body)
    if encoding_problem is not None:
        sim.ledger.count(SCOPE, "bad_encoding")
        return JSONResponse({"status": "error", "detail": encoding_problem}, status_code=400)
    refusal, fault = await injected_fault(sim.knobs, sim.dice, sim.ledger, SCOPE)
    if refusal is not None:
        return refusal
    if (
        sim.knobs.sms_errors_before_accept
        and sim.ledger.tally(SCOPE, body["msgid"]) <= sim.knobs.sms_errors_before_accept
    ):
        sim.ledger.count(SCOPE, "fault_scripted_5xx")
        return JSONResponse({"status": "error", "detail": "scripted failure"}, status_code=500)
    key = request.headers.get("Idempotency-Key") or body["msgid"]
    proposed = _decide(sim, body, name)
    answer = sim.ledger.remember(SCOPE, key, proposed)
    if answer is not proposed:
        sim.ledger.count(SCOPE, "replays")
        return JSONResponse(answer.body, status_code=answer.status_code)
    if answer.body["status"] == "accepted":
        sim.ledger.count(SCOPE, "accepted", body["msisdn"])
        sim.ledger.count(SCOPE, "segments", body["msisdn"], n=measure(body["text"]).segments)
        sim.ledger.keep_text(body["msisdn"], body["text"])
        sim.ledger.count(SCOPE, f"via_{name}")
        report = {"msgid": body["msgid"], "status": sim.knobs.report_status(body["msgid"])}
        sim.reports.schedule(body["callback"], report, sim.knobs.report_delay_seconds)
        if fault == AFTER_THE_FACT:
            sim.ledger.count(SCOPE, "fault_timeout_after_accept")
            return await hang(sim.knobs)
    else:
        sim.ledger.count(SCOPE, "rejected", body["msisdn"])
    return JSONResponse(answer.body, status_code=answer.status_code)


def _encoding_problem(body: dict) -> str | None:
    declared = body.get("encoding")
    if declared is None:
        return None
    if declared not in set(Encoding):
        return f"encoding must be gsm7 or ucs2, got {declared!r}"
    if declared == Encoding.GSM7 and not is_gsm7(body["text"]):
        return "encoding gsm7 declared, but the text has characters GSM-7 cannot carry"
    return None


def _decide(sim, body: dict, name: str) -> Answer:
    if sim.knobs.rejects_sms(body["msisdn"], date.today()):
        return Answer(200, {"status": "rejected", "msgid": body["msgid"], "detail": "subscriber barred"})
    return Answer(200, {"status": "accepted", "msgid": body["msgid"], "gateway": name})
