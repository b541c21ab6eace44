"""`POST /subscriptions/api/v1/subscriptions/inbound/?token=...`: SMS from subscribers (SPEC §13).

The gateway posts each message a subscriber sends to the short code, as JSON or as a form
(lib/consent/payload.py). The `token` query parameter must be ISKA_INBOUND_TOKEN: a wrong or
missing one is 403, and with no ISKA_INBOUND_TOKEN set every message is refused (403, saying
so), since an open route would let anyone opt anyone out. The message is stored and its keyword
applied in one transaction (lib/consent/inbound.py); a repeat of a gateway id changes nothing
and answers 200. The reply is sent right after the answer (a background task claiming it, so
it is never sent twice); one the gateway did not take is sent by the `sms_replies` sensor.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from urllib.parse import parse_qsl

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.lib.consent.inbound import ConsentRules, Handled, receive
from iska_pipelines.lib.consent.keywords import keywords_of
from iska_pipelines.lib.consent.payload import BadInbound, parse_inbound
from iska_pipelines.lib.consent.replies import reply_client, reply_sender, send_replies
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.vocabulary import Plan

log = logging.getLogger("iska.api.inbound")
router = APIRouter(tags=["subscriptions"])
NO_TOKEN = "ISKA_INBOUND_TOKEN is not set: ISKA refuses inbound SMS until it is (see docs/configuration.md)"


def consent_rules(config: Settings) -> ConsentRules:
    return ConsentRules(config.timezone, {Plan.DAILY: config.price_daily, Plan.WEEKLY: config.price_weekly})


def send_reply_now(engine: sa.Engine, config: Settings, msgid: str, msisdn: str) -> None:
    """After the answer: send the reply at once. A failure leaves it to the replies sensor."""
    try:
        regions = config.regions()
        send_replies(
            engine,
            regions,
            lambda region: reply_client(config, region, engine),
            reply_sender(config, f"api-{os.getpid()}"),
            [msgid],
        )
    except Exception:  # the sensor sends what is left; the API stays up
        log.exception("reply %s not sent now; the sms_replies sensor will send it", msgid)


async def _body(request: Request) -> dict:
    """JSON (whatever the content type says: a body that starts with `{`), else a form."""
    raw = await request.body()
    if raw.lstrip().startswith(b"{"):
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadInbound("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadInbound("the body must be a JSON object")
        return body
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return {key: value for key, value in (await request.form()).items() if isinstance(value, str)}
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BadInbound("the body is neither JSON nor a form") from None


@router.post(INBOUND_PATH)
async def inbound(
    request: Request,
    background: BackgroundTasks,
    token: str = Query(""),
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> JSONResponse:
    if not config.inbound_token:
        log.warning("inbound SMS refused: %s", NO_TOKEN)
        return JSONResponse({"detail": NO_TOKEN}, status_code=403)
    if not hmac.compare_digest(token.encode(), config.inbound_token.encode()):
        return JSONResponse({"detail": "wrong or missing token"}, status_code=403)
    try:
        message = parse_inbound(await _body(request), config.timezone)
    except BadInbound as bad:
        return JSONResponse({"detail": str(bad)}, status_code=422)
    catalog = config.catalog()
    keywords = keywords_of(catalog, config.stop_words)

    def store() -> Handled:
        with engine.begin() as connection:
            return receive(connection, message, keywords, catalog, consent_rules(config))

    handled = await run_in_threadpool(store)
    if handled.reply_msgid and not handled.repeat:
        background.add_task(send_reply_now, engine, config, handled.reply_msgid, message.msisdn)
    repeat = " (repeat)" if handled.repeat else ""
    log.info(
        "inbound %s from %s: %s -> %s%s",
        message.gateway_id,
        message.msisdn,
        handled.keyword,
        handled.outcome,
        repeat,
    )
    return JSONResponse(
        {
            "id": handled.inbound_id,
            "repeat": handled.repeat,
            "keyword": str(handled.keyword),
            "outcome": str(handled.outcome),
            "reply_msgid": handled.reply_msgid,
        }
    )
