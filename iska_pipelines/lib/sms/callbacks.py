"""Delivery reports in any protocol (SPEC §7, §17): who may speak for which message, and
applying what they say.

A callback URL signed for a msgid (`?msgid=...&sig=<HMAC of the msgid>`, the URL ISKA gave the
gateway with the message) speaks for that message only; a URL signed for a protocol
(`?sig=<HMAC of "protocol:<name>">`, set once in a gateway's account when the gateway has no
per-message callback) speaks for any message of that protocol. Twilio also signs each request
itself; its signature must hold as well. Reports follow the monotonic rules of delivery.py:
a step that is not final (sent to the network) changes nothing, a final state never changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa

from iska_pipelines.lib.db.locks import lock_early_reports
from iska_pipelines.lib.sms.delivery import (
    ReportApplied,
    ReportOutcome,
    apply_report,
    msgid_of,
    park_early_report,
    status_of,
)
from iska_pipelines.lib.sms.protocols import adapter_for
from iska_pipelines.lib.sms.protocols.base import Callback, Report
from iska_pipelines.lib.sms.protocols.twilio import TWILIO, signed_by_twilio
from iska_pipelines.lib.sms.signing import CALLBACK_PATH, sign, signature_matches

log = logging.getLogger("iska.callbacks")


class Forbidden(PermissionError):
    """The callback is not signed for what it reports on (403)."""


def protocol_subject(protocol: str) -> str:
    return f"protocol:{protocol}"


def protocol_sig(protocol: str, secret: str) -> str:
    """The `sig` of a callback URL that speaks for every message of `protocol`."""
    return sign(protocol_subject(protocol), secret)


@dataclass(frozen=True)
class Speaker:
    """What a callback URL may report on: one msgid, or (None) any message of its protocol."""

    msgid: str | None

    def covers(self, report: Report) -> bool:
        return self.msgid is None or report.msgid == self.msgid


def speaker(protocol: str, callback: Callback, secret: str, twilio_tokens: Iterable[str] = ()) -> Speaker:
    """Who signed this callback; Forbidden when nobody ISKA trusts did."""
    sig = callback.query.get("sig", "")
    msgid = callback.query.get("msgid")
    if msgid and signature_matches(msgid, sig, secret):
        found = Speaker(msgid)
    elif signature_matches(protocol_subject(protocol), sig, secret):
        found = Speaker(None)
    else:
        raise Forbidden("bad sig for this callback URL")
    if protocol == TWILIO.name and not signed_by_twilio(callback, twilio_tokens):
        raise Forbidden("X-Twilio-Signature missing or not Twilio's for this URL and body")
    return found


@dataclass(frozen=True)
class Applied:
    report: Report
    msgid: str | None
    outcome: str  # a ReportOutcome, `noted` (not final) or `not_covered`
    status: str | None


def apply_reports(connection: sa.Connection, reports: Iterable[Report], by: Speaker) -> list[Applied]:
    """Apply each report the speaker may make; the rest are logged and left alone."""
    return [_apply(connection, report, by) for report in reports]


def _apply(connection: sa.Connection, report: Report, by: Speaker) -> Applied:
    if not report.msgid and report.gateway_ref:
        lock_early_reports(connection)  # before the look-up: see lib/db/locks.py
    msgid = report.msgid or (msgid_of(connection, report.gateway_ref) if report.gateway_ref else None)
    if msgid is None and report.gateway_ref and report.status is not None:
        park_early_report(connection, report.gateway_ref, report.status, report.detail)
        log.info(
            "delivery report %s for gateway id %s kept until its send is written",
            report.said,
            report.gateway_ref,
        )
        return Applied(report, None, "kept", None)
    if msgid is None:
        log.warning("delivery report %s for unknown gateway id %s ignored", report.said, report.gateway_ref)
        return Applied(report, None, str(ReportOutcome.UNKNOWN_MSGID), None)
    if not by.covers(report):
        log.warning("delivery report for %s ignored: its URL is signed for %s only", msgid, by.msgid)
        return Applied(report, msgid, "not_covered", None)
    if report.status is None:
        status = status_of(connection, msgid)
        if status is None:
            log.warning("delivery report %s for unknown msgid %s ignored", report.said, msgid)
            return Applied(report, msgid, str(ReportOutcome.UNKNOWN_MSGID), None)
        log.info("message %s: %s (not final; stays %s)", msgid, report.said, status)
        return Applied(report, msgid, "noted", status)
    applied: ReportApplied = apply_report(connection, msgid, report.status, detail=report.detail)
    if applied.outcome is ReportOutcome.UNKNOWN_MSGID:
        log.warning("delivery report %s for unknown msgid %s ignored", report.said, msgid)
    elif applied.outcome is ReportOutcome.ALREADY_FINAL:
        log.info("delivery report %s for %s ignored: already %s", report.said, msgid, applied.status)
    else:
        log.info("message %s is now %s", msgid, applied.status)
    return Applied(report, msgid, str(applied.outcome), applied.status)


def parse_reports(protocol: str, callback: Callback) -> list[Report]:
    """The reports of a callback in `protocol`; BadCallback (4xx) when it is none."""
    return adapter_for(protocol).reports(callback)


INBOUND_PATH = "/subscriptions/api/v1/subscriptions/inbound/"
# Kannel's sms-service fills its own placeholders into the get-url: sender, text, message id
KANNEL_INBOUND_FIELDS = "&from=%p&text=%a&id=%I"


def account_report_url(public_url: str, protocol: str, secret: str) -> str:
    """The delivery-report URL to set once in a gateway's account (Africa's Talking has no
    per-message one; Infobip may use either): signed for the protocol, so any of its reports."""
    query = urlencode({"protocol": protocol, "sig": protocol_sig(protocol, secret)})
    return f"{public_url.rstrip('/')}{CALLBACK_PATH}?{query}"


def inbound_url(public_url: str, protocol: str, token: str) -> str:
    """Where a gateway of `protocol` sends the SMS farmers send to the short code."""
    query = urlencode({"token": token} | ({} if protocol == "iska" else {"protocol": protocol}))
    suffix = KANNEL_INBOUND_FIELDS if protocol == "kannel" else ""
    return f"{public_url.rstrip('/')}{INBOUND_PATH}?{query}{suffix}"
