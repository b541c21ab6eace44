"""`/billing/api/v1/momo/callback/`: MoMo's answer to a charge (SPEC §18).

MoMo calls the `X-Callback-Url` it was given (POST, or PUT as its sandbox does) once, with the
charge's status. The URL's `ref` names the charge and its `sig` is the HMAC of it: a bad sig is
403. SUCCESSFUL or FAILED settles the pending attempt under that reference (lib/billing/settle.py);
a repeat, a callback after the poll settled it, or one for a charge already given up on changes
nothing and answers 200, as does one for a reference ISKA has no attempt for (logged: the poll
finds it, or the next run's 409). An unreadable body is 422 and changes nothing. No API token
(the gateway has none).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.lib.billing.callbacks import BadCallback, MomoCallback, parse_callback
from iska_pipelines.lib.billing.settle import SettleOutcome, SettleRules, settle
from iska_pipelines.lib.billing.signing import MOMO_CALLBACK_PATH, signature_matches
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.settings import Settings

log = logging.getLogger("iska.api.billing_callback")
router = APIRouter(tags=["billing"])

CALLBACK_BODY = {
    "requestBody": {
        "description": "MoMo's requesttopay result: {externalId, status: SUCCESSFUL|FAILED|PENDING, "
        "reason, financialTransactionId, amount, currency, payer, ...}",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.api_route(MOMO_CALLBACK_PATH, methods=["POST", "PUT"], openapi_extra=CALLBACK_BODY)
async def momo_callback(
    request: Request,
    ref: str = Query("", description="the charge's X-Reference-Id"),
    sig: str = Query("", description="HMAC-SHA256 of ref under ISKA_CALLBACK_SECRET"),
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> JSONResponse:
    body = await request.body()
    try:
        callback = parse_callback(body, ref or None)
    except BadCallback as bad:
        log.warning("MoMo callback refused: %s", bad)
        return JSONResponse({"detail": str(bad)}, status_code=422)
    if not signature_matches(callback.reference, sig, config.callback_secret):
        log.warning("MoMo callback for %s refused: bad sig", callback.reference)
        return JSONResponse({"detail": "bad sig for this reference"}, status_code=403)
    return await run_in_threadpool(_settle, callback, engine, config)


def _settle(callback: MomoCallback, engine: sa.Engine, config: Settings) -> JSONResponse:
    settlement = callback.settlement()
    if settlement is None:
        log.info("MoMo callback for %s: still pending", callback.reference)
        return JSONResponse({"reference": callback.reference, "outcome": "still_pending"})
    rules = SettleRules(config.max_billing_try_limit, config.regions())
    with engine.begin() as connection:
        settled = settle(connection, settlement, utcnow(), rules)
    if settled.outcome is SettleOutcome.UNKNOWN_REFERENCE:
        log.warning("MoMo callback %s for unknown reference %s ignored", callback.status, callback.reference)
    elif settled.outcome is SettleOutcome.ALREADY_SETTLED:
        log.info("MoMo callback for %s ignored: already %s", callback.reference, settled.charge)
    else:
        log.info("charge %s is now %s", callback.reference, settled.charge)
    return JSONResponse(
        {
            "reference": callback.reference,
            "outcome": str(settled.outcome),
            "charge": settled.charge,
            "cancelled": settled.cancelled,
        }
    )
