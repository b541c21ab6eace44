"""`POST /subscriptions/api/v1/subscriptions/inbound/?token=...`: SMS from subscribers (SPEC §13).

The gateway posts each message a subscriber sends to the short code, as JSON or as a form
(lib/consent/payload.py); a gateway of another protocol adds `&protocol=<name>` and sends its
own format (Kannel's sms-service GET, the hosted gateways' forms and JSON; Twilio's requests
must carry its signature), read by the protocol's adapter (lib/sms/protocols/). The `token` query parameter must be ISKA_INBOUND_TOKEN: a wrong or
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
from fastapi.responses import JSONResponse, Response

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.api.routes.callback import public_url, twilio_tokens
from iska_pipelines.lib.consent.inbound import ConsentRules, Handled, Inbound, receive
from iska_pipelines.lib.consent.keywords import keywords_of
from iska_pipelines.lib.consent.payload import BadInbound, parse_inbound
from iska_pipelines.lib.consent.replies import reply_client, reply_sender, send_replies
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.callbacks import Forbidden
from iska_pipelines.lib.sms.protocols import ADAPTERS, adapter_for
from iska_pipelines.lib.sms.protocols.base import BadCallback, Callback
from iska_pipelines.lib.sms.protocols.twilio import TWILIO, signed_by_twilio
from iska_pipelines.lib.vocabulary import Plan

log = logging.getLogger("iska.api.inbound")
router = APIRouter(tags=["subscriptions"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
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


@router.api_route(INBOUND_PATH, methods=["GET", "POST"])
async def inbound(
    request: Request,
    background: BackgroundTasks,
    token: str = Query(""),
    protocol: str = Query("iska", description=", ".join(ADAPTERS)),
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> Response:
    if not config.inbound_token:
        log.warning("inbound SMS refused: %s", NO_TOKEN)
        return JSONResponse({"detail": NO_TOKEN}, status_code=403)
    if not hmac.compare_digest(token.encode(), config.inbound_token.encode()):
        return JSONResponse({"detail": "wrong or missing token"}, status_code=403)
    if protocol not in ADAPTERS:
        return JSONResponse(
            {"detail": f"unknown protocol {protocol!r}; expected one of {', '.join(ADAPTERS)}"},
            status_code=422,
        )
    try:
        messages = await _messages(request, protocol, config)
    except BadInbound as bad:
        return JSONResponse({"detail": str(bad)}, status_code=422)
    except Forbidden as refused:
        return JSONResponse({"detail": str(refused)}, status_code=403)
    answers = [await _handle(message, engine, config, background) for message in messages]
    if protocol == TWILIO.name:  # Twilio reads the answer as TwiML: an empty one sends nothing
        return Response(EMPTY_TWIML, media_type="text/xml")
    return JSONResponse(answers[0] if len(answers) == 1 else {"results": answers})


async def _messages(request: Request, protocol: str, config: Settings) -> list[Inbound]:
    """The inbound SMS of this request in its protocol; BadInbound (422) or Forbidden (403)."""
    if protocol == "iska":
        if request.method != "POST":
            raise BadInbound("ISKA's protocol posts inbound SMS as JSON or a form")
        return [parse_inbound(await _body(request), config.timezone)]
    callback = Callback(
        dict(request.query_params), await request.body(), dict(request.headers), public_url(request, config)
    )
    if protocol == TWILIO.name and not signed_by_twilio(callback, twilio_tokens(config)):
        raise Forbidden("X-Twilio-Signature missing or not Twilio's for this URL and body")
    try:
        fields = adapter_for(protocol).inbound(callback)
    except BadCallback as bad:
        raise BadInbound(str(bad)) from None
    return [parse_inbound(one, config.timezone) for one in fields]


async def _handle(
    message: Inbound, engine: sa.Engine, config: Settings, background: BackgroundTasks
) -> dict[str, object]:
    """Store one message and apply its keyword in one transaction; its reply goes out after."""
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
    return {
        "id": handled.inbound_id,
        "repeat": handled.repeat,
        "keyword": str(handled.keyword),
        "outcome": str(handled.outcome),
        "reply_msgid": handled.reply_msgid,
    }
