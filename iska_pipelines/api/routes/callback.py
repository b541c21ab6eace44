"""`POST /subscriptions/api/v1/subscriptions/callback/`: SMS delivery reports (SPEC §7–8).

The gateway posts `{"msgid", "status"}` to the callback URL it was given, whose `sig` query
parameter is the HMAC of the msgid: a bad sig is 403. Everything else answers 200 so a gateway
never retries a report forever: an unknown msgid is logged, a report for a message already in a
final state is ignored. No API token is needed here (the gateway does not have one).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.delivery import ReportOutcome, apply_report
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, signature_matches
from iska_pipelines.lib.vocabulary import REPORT_STATUSES, MessageStatus

log = logging.getLogger("iska.api.callback")
router = APIRouter(tags=["subscriptions"])


class DeliveryReport(BaseModel):
    msgid: str = Field(min_length=1, max_length=64)
    status: str = Field(description="delivered, failed, undelivered, expired or rejected")


@router.post(CALLBACK_PATH)
def delivery_report(
    report: DeliveryReport,
    sig: str = Query(""),
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> JSONResponse:
    if not signature_matches(report.msgid, sig, config.callback_secret):
        log.warning("delivery report for %s refused: bad sig", report.msgid)
        return JSONResponse({"detail": "bad sig for this msgid"}, status_code=403)
    status = report.status.strip().lower()
    if status not in REPORT_STATUSES:
        allowed = ", ".join(REPORT_STATUSES)
        return JSONResponse(
            {"detail": f"unknown status {report.status!r}; expected one of {allowed}"}, status_code=422
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
