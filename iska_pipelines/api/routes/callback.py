"""`/subscriptions/api/v1/subscriptions/callback/`: SMS delivery reports (SPEC §7–8, §17).

ISKA's own protocol posts `{"msgid", "status"}` to the callback URL it was given, whose `sig`
query parameter is the HMAC of the msgid: a bad sig is 403. Other protocols add
`?protocol=<name>` and report in their own format (GET for Kannel's dlr-url, a form or JSON
for the hosted gateways), read by their adapter (lib/sms/protocols/) and checked by
lib/sms/callbacks.py. Everything else answers 200 so a gateway never retries a report forever:
an unknown message is logged, a report for a message already in a final state is ignored. A
malformed report is 4xx and changes nothing. No API token is needed here (the gateway has none).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.regions.gateways import gateways_speaking
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.callbacks import Forbidden, apply_reports, parse_reports, speaker
from iska_pipelines.lib.sms.delivery import ReportOutcome, apply_report
from iska_pipelines.lib.sms.gateway import secret_of
from iska_pipelines.lib.sms.protocols import ADAPTERS
from iska_pipelines.lib.sms.protocols.base import BadCallback, Callback
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, signature_matches
from iska_pipelines.lib.vocabulary import REPORT_STATUSES, MessageStatus

log = logging.getLogger("iska.api.callback")
router = APIRouter(tags=["subscriptions"])


class DeliveryReport(BaseModel):
    msgid: str = Field(min_length=1, max_length=64)
    status: str = Field(description="delivered, failed, undelivered, expired or rejected")


REPORT_BODY = {
    "requestBody": {
        "description": "ISKA's protocol: {msgid, status}. Other protocols (?protocol=kannel, "
        "africastalking, twilio, infobip) send their own format, as a query, a form or JSON.",
        "content": {"application/json": {"schema": DeliveryReport.model_json_schema()}},
    }
}


@router.api_route(CALLBACK_PATH, methods=["GET", "POST"], openapi_extra=REPORT_BODY)
async def delivery_report(
    request: Request,
    sig: str = Query(""),
    protocol: str = Query("iska", description=", ".join(ADAPTERS)),
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> JSONResponse:
    if protocol not in ADAPTERS:
        return _problem(422, f"unknown protocol {protocol!r}; expected one of {', '.join(ADAPTERS)}")
    body = await request.body()
    if protocol == "iska":
        if request.method != "POST":
            return _problem(405, "ISKA's protocol posts its reports as JSON")
        return await run_in_threadpool(_iska_report, body, sig, engine, config)
    callback = Callback(dict(request.query_params), body, dict(request.headers), public_url(request, config))
    return await run_in_threadpool(_protocol_reports, protocol, callback, engine, config)


def public_url(request: Request, config: Settings) -> str:
    """The URL as the gateway called it (ISKA_PUBLIC_URL, not the address behind a proxy),
    which Twilio's signature covers."""
    query = request.url.query
    return f"{config.public_url.rstrip('/')}{request.url.path}{'?' + query if query else ''}"


def _iska_report(body: bytes, sig: str, engine: sa.Engine, config: Settings) -> JSONResponse:
    try:
        report = DeliveryReport.model_validate_json(body)
    except ValidationError as invalid:
        return JSONResponse({"detail": invalid.errors(include_url=False, include_context=False)}, 422)
    if not signature_matches(report.msgid, sig, config.callback_secret):
        log.warning("delivery report for %s refused: bad sig", report.msgid)
        return _problem(403, "bad sig for this msgid")
    status = report.status.strip().lower()
    if status not in REPORT_STATUSES:
        return _problem(
            422, f"unknown status {report.status!r}; expected one of {', '.join(REPORT_STATUSES)}"
        )
    with engine.begin() as connection:
        applied = apply_report(connection, report.msgid, MessageStatus(status))
    if applied.outcome is ReportOutcome.UNKNOWN_MSGID:
        log.warning("delivery report %s for unknown msgid %s ignored", status, report.msgid)
    elif applied.outcome is ReportOutcome.ALREADY_FINAL:
        log.info("delivery report %s for %s ignored: already %s", status, report.msgid, applied.status)
    else:
        log.info("message %s is now %s", report.msgid, applied.status)
    return JSONResponse({"msgid": report.msgid, "outcome": str(applied.outcome), "status": applied.status})


def _protocol_reports(protocol: str, callback: Callback, engine: sa.Engine, config: Settings) -> JSONResponse:
    try:
        by = speaker(protocol, callback, config.callback_secret, twilio_tokens(config))
    except Forbidden as refused:
        log.warning("%s delivery report refused: %s", protocol, refused)
        return _problem(403, str(refused))
    try:
        reports = parse_reports(protocol, callback)
    except BadCallback as bad:
        log.warning("%s delivery report refused: %s", protocol, bad)
        return _problem(422, str(bad))
    with engine.begin() as connection:
        applied = apply_reports(connection, reports, by)
    results = [
        {"msgid": a.msgid, "said": a.report.said, "outcome": a.outcome, "status": a.status} for a in applied
    ]
    return JSONResponse(results[0] if len(results) == 1 else {"results": results})


def twilio_tokens(config: Settings) -> list[str]:
    tokens = []
    for gateway in gateways_speaking(config.regions(), "twilio"):
        try:
            tokens.append(secret_of(gateway, config.sms_token))
        except ConfigurationError:  # an unset secret_env: that account cannot sign anything
            log.warning(
                "no auth token for the Twilio gateway %s (secret_env %s)", gateway.url, gateway.secret_env
            )
    return tokens


def _problem(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)
