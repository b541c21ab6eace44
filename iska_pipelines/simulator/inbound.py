"""`POST /simulator/inbound`: the simulator plays a subscriber texting the short code (SPEC §13, §17).

`{"msisdn", "text"}` (optional: `"id"`, else a fresh one; `"to"`, the short code, default
1400; `"protocol"`, the gateway's: `iska` by default, `kannel`, `africastalking`, `twilio` or
`infobip`) is posted to ISKA's inbound URL (`ISKA_SIM_INBOUND_URL`, the whole URL with its
`?token=`) the way that gateway would. `iska`: JSON `{"msisdn", "text", "id", "received_at"}`,
or with `"form": true` a form with the common gateway names `from`, `text`, `id`, `date`. Any
other protocol adds `&protocol=<p>` to the URL and speaks its own format: Kannel's sms-service
GET with `from`, `text`, `id`; Africa's Talking's form `from, to, text, date, id, linkId,
networkCode`; Twilio's form `MessageSid, AccountSid, From, To, Body, NumMedia` signed with
`X-Twilio-Signature` under the `twilio_auth_token` knob; Infobip's JSON `{"results": [...]}`.
The answer says what ISKA answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import requests
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from iska_pipelines.simulator.incoming import read_object
from iska_pipelines.simulator.protocols.africastalking import AFRICASTALKING
from iska_pipelines.simulator.protocols.core import Dialect, Texted
from iska_pipelines.simulator.protocols.infobip import INFOBIP
from iska_pipelines.simulator.protocols.kannel import KANNEL
from iska_pipelines.simulator.protocols.twilio import TWILIO
from iska_pipelines.simulator.sms import ISKA

router = APIRouter()
SCOPE = "inbound"
TIMEOUT_SECONDS = 10.0
SHORT_CODE = "1400"
DIALECTS: dict[str, Dialect] = {d.name: d for d in (ISKA, KANNEL, AFRICASTALKING, TWILIO, INFOBIP)}


@router.post("/simulator/inbound")
async def inbound(request: Request) -> JSONResponse:
    sim = request.app.state.sim
    body, problem = await read_object(request)
    if problem is None and not (isinstance(body.get("msisdn"), str) and isinstance(body.get("text"), str)):
        problem = 'expected {"msisdn": "...", "text": "..."}'
    protocol = body.get("protocol") or ISKA.name
    if problem is None and protocol not in DIALECTS:
        problem = f"protocol must be one of {', '.join(DIALECTS)}, got {protocol!r}"
    if problem is not None:
        return JSONResponse({"detail": problem}, status_code=400)
    url = sim.knobs.inbound_url
    if not url:
        return JSONResponse(
            {"detail": "ISKA_SIM_INBOUND_URL is not set: the simulator does not know where ISKA listens"},
            status_code=409,
        )
    dialect = DIALECTS[protocol]
    message = Texted(
        msisdn=body["msisdn"],
        text=body["text"],
        id=str(body.get("id") or dialect.fresh_id()),
        to=str(body.get("to") or SHORT_CODE),
        at=datetime.now(UTC),
        as_form=bool(body.get("form")),
    )
    outbound = dialect.inbound(url if dialect is ISKA else with_protocol(url, protocol), message, sim.knobs)
    sim.ledger.count(SCOPE, "posted")
    try:
        answer = await run_in_threadpool(outbound.send, None, TIMEOUT_SECONDS)
    except requests.RequestException as error:
        sim.ledger.count(SCOPE, "unreachable")
        return JSONResponse({"detail": f"ISKA did not answer at {url}: {error}"}, status_code=502)
    try:
        said = answer.json()
    except ValueError:
        said = answer.text[:500]
    return JSONResponse({"id": message.id, "iska_status": answer.status_code, "iska_answer": said})


def with_protocol(url: str, protocol: str) -> str:
    """`url` with `protocol=<p>` added to its query (or as its query when it has none)."""
    separator = "" if url.endswith(("?", "&")) else "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'protocol': protocol})}"
