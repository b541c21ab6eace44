"""What the simulator can be told to do: latency, declines, faults, delivery reports.

Rates are fractions of requests. Declines and SMS rejections are decided by a hash of
(seed, msisdn, day) rather than by chance, so a test that sets a decline rate sees the same
subscribers declined on every run of the day. Transport faults (5xx, 429, timeouts, malformed
bodies) are drawn from a seeded random generator. Every SMS protocol (iska, kannel,
africastalking, twilio, infobip) obeys the same knobs, each answering in its own words: a
rejection is Kannel's 400, Twilio's 400 error object, Infobip's REJECTED status...
"""

from __future__ import annotations

import hashlib
import os
from datetime import date

from pydantic import BaseModel, Field, field_validator

FAULTS = {"", "timeout", "5xx", "429", "malformed", "charge_then_timeout"}
MOMO_ANSWERS = {"approve", "decline", "timeout"}
MOMO_FATES = {"", "lost", "twice"}


class Knobs(BaseModel):
    tokens: list[str] = Field(
        default_factory=list,
        description="secrets accepted: the Auth-Key of billing and the iska SMS protocol, Kannel's "
        "password, Africa's Talking's apiKey, Twilio's auth token (basic auth), Infobip's App key",
    )
    latency_ms: float = Field(0.0, ge=0, description="delay before every answer")
    decline_rate: float = Field(0.0, ge=0, le=1, description="share of msisdns declined per day")
    error_rate: float = Field(
        0.0, ge=0, le=1, description="share of requests answered 503 (in each SMS protocol's words)"
    )
    throttle_rate: float = Field(0.0, ge=0, le=1, description="share of requests answered 429")
    retry_after_seconds: float = Field(1.0, ge=0, description="Retry-After sent with a 429")
    max_tps: float = Field(
        0.0,
        ge=0,
        description="requests per second each gateway (billing, each SMS name) admits in any "
        "one-second window; those above it are answered 429 at once (0: no limit)",
    )
    timeout_rate: float = Field(0.0, ge=0, le=1, description="share of requests left hanging, unanswered")
    charge_then_timeout_rate: float = Field(
        0.0, ge=0, le=1, description="share of first-time charges/messages done, then left hanging"
    )
    malformed_rate: float = Field(0.0, ge=0, le=1, description="share of 200 answers with a broken body")
    hang_seconds: float = Field(30.0, ge=0, description="how long a timed-out request hangs")
    seed: int = 0
    script: dict[str, list[str]] = Field(
        default_factory=dict,
        description="msisdn -> answers ('success'/'failure') for its next first-time charges, in order",
    )
    faults: list[str] = Field(
        default_factory=list,
        description="faults for the next requests, one each, in order: "
        "'timeout', '5xx', '429', 'malformed', 'charge_then_timeout' ('' for none)",
    )
    sms_reject_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of msisdns whose SMS are rejected per day, with each protocol's rejection "
        "(iska: status rejected, kannel: 400, africastalking: statusCode 406, twilio: 400 21610, "
        "infobip: groupName REJECTED)",
    )
    sms_errors_before_accept: int = Field(
        0,
        ge=0,
        description="the first N requests for each msgid are answered 500 (retry tests; Kannel: "
        "503; Africa's Talking carries no msgid and is never answered so)",
    )
    report_delay_seconds: float = Field(1.0, ge=0, description="delay before a delivery report is posted")
    report_statuses: dict[str, float] = Field(
        default_factory=lambda: {"delivered": 1.0},
        description="delivery report status (delivered, undelivered, failed, rejected, expired) -> "
        "weight; each protocol reports it in its own terms (Kannel 1/2/16, Twilio MessageStatus...)",
    )
    inbound_url: str = Field(
        "",
        description="ISKA's inbound SMS URL with its ?token=, where /simulator/inbound posts "
        "(with &protocol=<p> added for a protocol other than iska)",
    )
    africastalking_callback_url: str = Field(
        "",
        description="the account's delivery report URL (set once in Africa's Talking's dashboard, "
        "not per message) where africastalking reports go; empty: no reports",
    )
    momo_settle_seconds: float = Field(
        1.0,
        ge=0,
        description="MoMo: how long after a requesttopay (202) the payer answers and the callback "
        "goes out (0: at once, before the 202)",
    )
    momo_timeout_rate: float = Field(
        0.0, ge=0, le=1, description="MoMo: share of msisdns per day who never answer (PENDING for ever)"
    )
    momo_lost_callback_rate: float = Field(
        0.0, ge=0, le=1, description="MoMo: share of settled requests whose callback is never sent"
    )
    momo_hold_callbacks: bool = Field(
        False,
        description="MoMo: keep the callbacks until POST /simulator/momo/callbacks sends them "
        "(tests decide when, and which are lost or repeated)",
    )
    momo_script: dict[str, list[str]] = Field(
        default_factory=dict,
        description="MoMo: msisdn -> how its next requests end, in order: 'approve', 'decline' or "
        "'timeout', optionally followed by ' lost' (no callback) or ' twice' (the callback twice)",
    )
    twilio_auth_token: str = Field(
        "",
        description="the auth token Twilio signs inbound messages with (X-Twilio-Signature); "
        "empty: the first of tokens, else 'simulator'",
    )

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, faults: list[str]) -> list[str]:
        unknown = sorted(set(faults) - FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(FAULTS - {''})}")
        return faults

    @field_validator("momo_script")
    @classmethod
    def _known_momo_endings(cls, script: dict[str, list[str]]) -> dict[str, list[str]]:
        for msisdn, endings in script.items():
            for ending in endings:
                answer, _, fate = ending.partition(" ")
                if answer not in MOMO_ANSWERS or fate not in MOMO_FATES:
                    raise ValueError(
                        f"{msisdn}: {ending!r} is not one of {sorted(MOMO_ANSWERS)}, "
                        f"optionally followed by ' lost' or ' twice'"
                    )
        return script

    def momo_ending(self, msisdn: str, day: date, scripted: str | None) -> tuple[str, str]:
        """(answer, callback fate) of a new request: scripted, else by the rates (per msisdn and
        day, like declines)."""
        if scripted:
            answer, _, fate = scripted.partition(" ")
            return answer, fate
        if _fraction(self.seed, "momo-timeout", msisdn, day.isoformat()) < self.momo_timeout_rate:
            return "timeout", ""
        return ("decline" if self.declines(msisdn, day) else "approve"), ""

    def loses_callback(self, reference: str) -> bool:
        return _fraction(self.seed, "momo-lost", reference) < self.momo_lost_callback_rate

    def twilio_signing_token(self) -> str:
        return self.twilio_auth_token or next(iter(self.tokens), "simulator")

    def declines(self, msisdn: str, day: date) -> bool:
        return _fraction(self.seed, "decline", msisdn, day.isoformat()) < self.decline_rate

    def rejects_sms(self, msisdn: str, day: date) -> bool:
        return _fraction(self.seed, "reject", msisdn, day.isoformat()) < self.sms_reject_rate

    def report_status(self, msgid: str) -> str:
        total = sum(w for w in self.report_statuses.values() if w > 0)
        if total <= 0:
            return "delivered"
        point = _fraction(self.seed, "report", msgid) * total
        for status, weight in self.report_statuses.items():
            if weight <= 0:
                continue
            if point < weight:
                return status
            point -= weight
        return next(s for s, w in self.report_statuses.items() if w > 0)


def _fraction(*parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def knobs_from_env(env: dict[str, str] | None = None) -> Knobs:
    """`iska simulator` reads its tokens and knobs from the environment (.env)."""
    env = dict(os.environ if env is None else env)
    tokens = [env[n].strip() for n in ("BILLING_TOKEN", "SMS_TOKEN") if env.get(n, "").strip()]
    values: dict[str, object] = {"tokens": tokens}
    for name in Knobs.model_fields:
        raw = env.get(f"ISKA_SIM_{name.upper()}", "").strip()
        if raw and name not in {"tokens", "script", "faults", "report_statuses", "momo_script"}:
            values[name] = raw
    return Knobs.model_validate(values)
