"""`POST /simulator/inbound`: the simulator plays a subscriber texting the short code (SPEC §13).

`{"msisdn", "text"}` (optional `"id"`, else a fresh one, and `"form": true` to post a form with
the names `from`, `text`, `id`, `date` instead of JSON) is posted to ISKA's inbound URL
(`ISKA_SIM_INBOUND_URL`, the whole URL with its `?token=`) the way an SMS gateway would. The
answer says what ISKA answered.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import requests
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from iska_pipelines.simulator.incoming import read_object

router = APIRouter()
SCOPE = "inbound"
TIMEOUT_SECONDS = 10.0


@router.post("/simulator/inbound")
async def inbound(request: Request) -> JSONResponse:
    sim = request.app.state.sim
    body, problem = await read_object(request)
    if problem is None and not (isinstance(body.get("msisdn"), str) and isinstance(body.get("text"), str)):
        problem = 'expected {"msisdn": "...", "text": "..."}'
    if problem is not None:
        return JSONResponse({"detail": problem}, status_code=400)
    url = sim.knobs.inbound_url
    if not url:
        return JSONResponse(
            {"detail": "ISKA_SIM_INBOUND_URL is not set: the simulator does not know where ISKA listens"},
            status_code=409,
        )
    message_id = str(body.get("id") or uuid.uuid4())
    sent_at = datetime.now(UTC).isoformat()
    sim.ledger.count(SCOPE, "posted")
    try:
        if body.get("form"):
            fields = {"from": body["msisdn"], "text": body["text"], "id": message_id, "date": sent_at}
            answer = requests.post(url, data=fields, timeout=TIMEOUT_SECONDS)
        else:
            fields = {
                "msisdn": body["msisdn"],
                "text": body["text"],
                "id": message_id,
                "received_at": sent_at,
            }
            answer = requests.post(url, json=fields, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as error:
        sim.ledger.count(SCOPE, "unreachable")
        return JSONResponse({"detail": f"ISKA did not answer at {url}: {error}"}, status_code=502)
    try:
        said = answer.json()
    except ValueError:
        said = answer.text[:500]
    return JSONResponse({"id": message_id, "iska_status": answer.status_code, "iska_answer": said})
