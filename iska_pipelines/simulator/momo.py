"""MTN MoMo Collections, as much of it as ISKA uses (SPEC §18): requesttopay, its status lookup and
its callback.

`POST /collection/v1_0/requesttopay` with `Authorization: Bearer <token>`, `X-Reference-Id` (a
UUID), `X-Target-Environment`, `X-Callback-Url` and MoMo's body (`amount currency externalId
payer{partyIdType=MSISDN, partyId} payerMessage payeeNote`) answers 202 and keeps the request
PENDING; a reference it already holds answers 409 and asks nobody for anything. The payer answers
after `momo_settle_seconds`: approve (SUCCESSFUL, counted as a charge), decline (FAILED,
NOT_ENOUGH_FUNDS) or never (`timeout`: PENDING for ever), per `momo_script` or the rates; then
the callback goes to the X-Callback-Url once (or is lost, or sent twice, on purpose), or is held
until `POST /simulator/momo/callbacks` sends it. `GET /collection/v1_0/requesttopay/{reference}`
is the status lookup (404 for a reference it never had). The injected faults apply as to every
gateway; the planned ones (`faults`) only to requesttopay, whose order a test knows, and
`charge_then_timeout` keeps the request and leaves the client hanging.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation

import requests
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from iska_pipelines.simulator.faults import AFTER_THE_FACT, hang, injected_fault, over_rate
from iska_pipelines.simulator.incoming import read_object
from iska_pipelines.simulator.outbound import Outbound

router = APIRouter()
MOMO = "momo"  # the ledger's scripts of MoMo requests (`momo_script`)
SCOPE = "billing"  # MoMo is the billing gateway: its charges count with the others in /stats
PATH = "/collection/v1_0/requesttopay"
DECLINE_REASON = "NOT_ENOUGH_FUNDS"
CALLBACK_TIMEOUT_SECONDS = 10.0
DIGITS = re.compile(r"[0-9]{1,15}")
SHOWN = ("amount", "currency", "externalId", "payer", "payerMessage", "payeeNote", "status", "reason")


class MomoWording:
    """MoMo's error body: `{"code", "message"}`."""

    def refusal(self, status_code: int, detail: str) -> Response:
        return JSONResponse({"code": _code(status_code), "message": detail}, status_code=status_code)

    def malformed(self) -> Response:
        return PlainTextResponse('{"status": "SUCC', status_code=200, media_type="application/json")


WORDING = MomoWording()


@router.post(PATH)
async def request_to_pay(request: Request) -> Response:
    sim = request.app.state.sim
    sim.ledger.count(SCOPE, "requests")
    refused = _admitted(request, sim)
    if refused is not None:
        return refused
    body, problem = await read_object(request)
    reference = request.headers.get("X-Reference-Id", "")
    problem = problem or _request_problem(request, body, reference)
    if problem is not None:
        sim.ledger.count(SCOPE, "bad_request")
        return WORDING.refusal(400, problem)
    refusal, fault = await injected_fault(sim.knobs, sim.dice, sim.ledger, SCOPE, WORDING)
    if refusal is not None:
        return refusal
    msisdn = body["payer"]["partyId"]
    answer, fate = sim.knobs.momo_ending(msisdn, date.today(), sim.ledger.next_scripted(msisdn, MOMO))
    kept = {
        **{name: body.get(name) for name in SHOWN[:6]},
        "status": "PENDING",
        "answer": answer,
        "callback": request.headers.get("X-Callback-Url", ""),
    }
    if not sim.ledger.momo_create(reference, kept):
        sim.ledger.count(SCOPE, "duplicates")
        return WORDING.refusal(409, "Duplicated reference id. Creation of resource failed.")
    sim.ledger.count(SCOPE, "requested")
    _answer_later(sim, reference, msisdn, answer, fate)
    if fault == AFTER_THE_FACT:
        sim.ledger.count(SCOPE, "fault_timeout_after_charge")
        return await hang(sim.knobs, WORDING)
    return Response(status_code=202)


@router.get(PATH + "/{reference}")
async def request_to_pay_status(reference: str, request: Request) -> Response:
    sim = request.app.state.sim
    sim.ledger.count(SCOPE, "lookups")
    refused = _admitted(request, sim)
    if refused is not None:
        return refused
    refusal, _fault = await injected_fault(sim.knobs, sim.dice, sim.ledger, SCOPE, WORDING, planned=False)
    if refusal is not None:
        return refusal
    found = sim.ledger.momo_request(reference)
    if found is None:
        return WORDING.refusal(404, "Requested resource was not found.")
    return JSONResponse(_shown(found))


@router.post("/simulator/momo/callbacks")
async def send_held_callbacks(request: Request) -> JSONResponse:
    """Send the callbacks held back (`momo_hold_callbacks`), in the order their payers answered.
    `{"fates": [...]}`: per callback `once` (the default), `lost` or `twice`. The answer says
    what ISKA answered to each."""
    sim = request.app.state.sim
    body, problem = await read_object(request)
    fates = body.get("fates", []) if problem is None else []
    if not isinstance(fates, list) or not all(f in ("once", "lost", "twice") for f in fates):
        return JSONResponse({"detail": 'fates must be a list of "once", "lost" or "twice"'}, status_code=400)
    held = sim.ledger.take_held()
    sent = []
    for index, (reference, fate, callback) in enumerate(held):
        fate = fates[index] if index < len(fates) else (fate or "once")
        answers = [await run_in_threadpool(_send, sim, callback) for _ in range(_times(fate))]
        sim.ledger.count(
            SCOPE, "callbacks_lost" if fate == "lost" else "callbacks_sent", n=max(1, len(answers))
        )
        sent.append({"reference": reference, "fate": fate, "iska_status": answers})
    return JSONResponse({"callbacks": sent})


def _admitted(request: Request, sim) -> Response | None:
    """429 above `max_tps`, 401 without a token the simulator accepts."""
    throttled = over_rate(sim.knobs, sim.ledger, SCOPE, SCOPE, WORDING)
    if throttled is not None:
        return throttled
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.strip() not in sim.knobs.tokens:
        sim.ledger.count(SCOPE, "unauthorised")
        return WORDING.refusal(401, "Access denied due to invalid subscription key or access token")
    return None


def _answer_later(sim, reference: str, msisdn: str, answer: str, fate: str) -> None:
    """The payer answers after `momo_settle_seconds` (never, for a timeout)."""
    if answer == "timeout":
        sim.ledger.count(SCOPE, "never_answered", msisdn)
        return

    def settle() -> None:
        status, reason = ("SUCCESSFUL", None) if answer == "approve" else ("FAILED", DECLINE_REASON)
        settled = sim.ledger.momo_settle(reference, status, reason)
        if settled is None:
            return
        sim.ledger.count(SCOPE, "charged" if status == "SUCCESSFUL" else "declined", msisdn)
        lost = fate == "" and sim.knobs.loses_callback(reference)
        _call_back(sim, reference, settled, "lost" if lost else fate)

    if sim.knobs.momo_settle_seconds <= 0:
        settle()
    else:
        sim.reports.call_later(settle, sim.knobs.momo_settle_seconds)


def _call_back(sim, reference: str, settled: dict, fate: str) -> None:
    url = settled.get("callback") or ""
    if not url:
        return
    callback = Outbound("POST", url, json={"referenceId": reference, **_shown(settled)})
    if sim.knobs.momo_hold_callbacks:
        sim.ledger.hold(reference, fate, callback)
        return
    if fate == "lost":
        sim.ledger.count(SCOPE, "callbacks_lost")
        return
    for _ in range(_times(fate)):
        sim.ledger.count(SCOPE, "callbacks_sent")
        sim.reports.send_later(callback, 0.0)


def _send(sim, callback: Outbound) -> int | None:
    try:
        return callback.send(None, CALLBACK_TIMEOUT_SECONDS).status_code
    except requests.RequestException:
        sim.ledger.count("reports", "unreachable")
        return None


def _times(fate: str) -> int:
    return {"lost": 0, "twice": 2}.get(fate, 1)


def _shown(kept: dict) -> dict:
    """The request as MoMo's lookup shows it (and its callback sends it)."""
    shown = {name: kept[name] for name in SHOWN if kept.get(name) is not None}
    if kept.get("financialTransactionId"):
        shown["financialTransactionId"] = kept["financialTransactionId"]
    return shown


def _request_problem(request: Request, body: dict, reference: str) -> str | None:
    try:
        uuid.UUID(reference)
    except ValueError:
        return f"X-Reference-Id must be a UUID, got {reference!r}"
    if not request.headers.get("X-Target-Environment"):
        return "X-Target-Environment is missing"
    try:
        amount = Decimal(str(body.get("amount")))
    except InvalidOperation:
        amount = Decimal(0)
    if not isinstance(body.get("amount"), str) or not amount.is_finite() or amount <= 0:
        return "amount must be a positive amount as a string"
    if not isinstance(body.get("currency"), str) or not re.fullmatch(r"[A-Z]{3}", body["currency"]):
        return "currency must be an ISO 4217 code"
    payer = body.get("payer")
    if not isinstance(payer, dict) or payer.get("partyIdType") != "MSISDN":
        return "payer.partyIdType must be MSISDN"
    if not isinstance(payer.get("partyId"), str) or not DIGITS.fullmatch(payer["partyId"]):
        return "payer.partyId must be an msisdn (1-15 digits)"
    return None


def _code(status_code: int) -> str:
    return {
        400: "INVALID_REQUEST",
        401: "UNAUTHORIZED",
        404: "RESOURCE_NOT_FOUND",
        409: "RESOURCE_ALREADY_EXIST",
        429: "TOO_MANY_REQUESTS",
    }.get(status_code, "INTERNAL_PROCESSING_ERROR")
