"""`POST /billing`: the carrier billing gateway (SPEC §6, §9).

Checks `Auth-Key`, answers `{"status": "success"}` or `{"status": "failure"}`, and honours
`Idempotency-Key`: a repeated key gets the stored answer and is never charged again.
"""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from iska_pipelines.simulator.faults import AFTER_THE_FACT, hang, injected_fault, over_rate
from iska_pipelines.simulator.incoming import authorised, read_object
from iska_pipelines.simulator.ledger import Answer

router = APIRouter()
PLAN_CODES = {11, 21}
SCOPE = "billing"


@router.post("/billing")
async def charge(request: Request) -> Response:
    sim = request.app.state.sim
    sim.ledger.count(SCOPE, "requests")
    throttled = over_rate(sim.knobs, sim.ledger, SCOPE, SCOPE)
    if throttled is not None:
        return throttled
    if not authorised(request, sim.knobs):
        sim.ledger.count(SCOPE, "unauthorised")
        return JSONResponse({"status": "error", "detail": "invalid Auth-Key"}, status_code=401)
    body, problem = await read_object(request)
    if problem is None:
        problem = _charge_problem(body)
    if problem is not None:
        sim.ledger.count(SCOPE, "bad_request")
        return JSONResponse({"status": "error", "detail": problem}, status_code=422)
    refusal, fault = await injected_fault(sim.knobs, sim.dice, sim.ledger, SCOPE)
    if refusal is not None:
        return refusal
    key = request.headers.get("Idempotency-Key") or f"anonymous-{uuid.uuid4()}"
    stored = sim.ledger.answer_for(SCOPE, key)
    if stored is not None:
        sim.ledger.count(SCOPE, "replays")
        return JSONResponse(stored.body, status_code=stored.status_code)
    answer, first = _charge_once(sim, key, body["msisdn"])
    if first and fault == AFTER_THE_FACT:
        sim.ledger.count(SCOPE, "fault_timeout_after_charge")
        return await hang(sim.knobs)
    return JSONResponse(answer.body, status_code=answer.status_code)


def _charge_once(sim, key: str, msisdn: str) -> tuple[Answer, bool]:
    scripted = sim.ledger.next_scripted(msisdn)
    declined = scripted == "failure" if scripted else sim.knobs.declines(msisdn, date.today())
    proposed = Answer(
        200, {"status": "failure" if declined else "success", "transaction_id": uuid.uuid4().hex}
    )
    answer = sim.ledger.remember(SCOPE, key, proposed)
    first = answer is proposed
    if first:
        sim.ledger.count(SCOPE, "declined" if declined else "charged", msisdn)
    else:
        sim.ledger.count(SCOPE, "replays")
    return answer, first


def _charge_problem(body: dict) -> str | None:
    msisdn = body.get("msisdn")
    if not isinstance(msisdn, str) or not msisdn.isdigit():
        return "msisdn must be a string of digits"
    if body.get("sub_plan") not in PLAN_CODES:
        return "sub_plan must be 11 (daily) or 21 (weekly)"
    return None
