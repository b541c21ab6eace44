"""What every SMS protocol shares: one request's way through the gateway, and one SMS decided once.

A protocol (a `Dialect`) only reads its request, words its answers and writes its reports; the
rest is the same for all and lives here, in this order: the request is counted and admitted
against `max_tps` (429), its credential checked against the `tokens` knob, its fields read
(malformed: the protocol's 4xx), the injected faults (latency, 503, 429, malformed, timeouts)
and the scripted 5xx applied, and then each SMS it asks for is decided once: rejected (the
`sms_reject_rate` knob) or accepted (counted per msisdn with its segments and kept text, its
reports scheduled). The first answer for a message's key is stored, so a repeat gets it back
and sends nothing; a protocol without a client-chosen id (Africa's Talking) has no key, and
each of its requests is a new SMS.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from iska_pipelines.lib.sms.encoding import measure
from iska_pipelines.simulator.faults import AFTER_THE_FACT, hang, injected_fault, over_rate
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Answer
from iska_pipelines.simulator.outbound import Outbound

if TYPE_CHECKING:
    from iska_pipelines.simulator.app import Simulation

SCOPE = "sms"
NUMBER = re.compile(r"\+?[0-9]{6,15}")


@dataclass(frozen=True)
class Outgoing:
    """One SMS a request asks for, whatever the protocol's field names."""

    msisdn: str  # as the ledger counts it: iska's as given, the others' without their `+`
    text: str  # decoded: what the farmer reads
    key: str | None  # a repeat's key (namespaced per protocol); None: never deduplicated
    msgid: str | None  # the client's own id, if the protocol carries one
    ref: str  # the gateway's id for the message, in its answer and reports
    details: dict[str, Any] = field(default_factory=dict)  # what the answer and reports need

    @property
    def segments(self) -> int:
        return measure(self.text).segments


@dataclass(frozen=True)
class Texted:
    """A message a subscriber sends to the short code, which each protocol posts its own way."""

    msisdn: str
    text: str
    id: str  # the gateway's id for it (ISKA stores each id once)
    to: str  # the short code
    at: datetime  # when it arrived, UTC
    as_form: bool = False  # iska only: the common gateway form names instead of JSON


@dataclass(frozen=True)
class Refused:
    """A request refused before any SMS: the counter it is counted under, and the answer."""

    counter: str
    response: Response


@dataclass(frozen=True)
class Due:
    """A report and when it goes out, as a share of `report_delay_seconds` (0.5: halfway)."""

    report: Outbound
    share: float = 1.0


class Dialect(ABC):
    """One protocol's words for the gateway's answers; it is also the `Wording` of its faults."""

    name: str

    @abstractmethod
    def credential(self, request: Request) -> str | None:
        """The secret the request presents (None: none), checked against the `tokens` knob."""

    @abstractmethod
    def unauthorised(self) -> Response: ...

    @abstractmethod
    async def read(self, request: Request) -> list[Outgoing] | Refused: ...

    @abstractmethod
    def accepted(self, sms: Outgoing, gateway: str) -> Answer: ...

    @abstractmethod
    def rejected(self, sms: Outgoing) -> Answer: ...

    @abstractmethod
    def respond(self, answers: list[Answer]) -> Response:
        """The answer to a request, from the (stored or new) answer of each of its SMS."""

    @abstractmethod
    def reports(self, sms: Outgoing, status: str, token: str, knobs: Knobs) -> list[Due]:
        """The reports of an accepted SMS whose final status is `status` (a `report_statuses`
        key); `token` is the secret the request was authenticated with."""

    @abstractmethod
    def inbound(self, url: str, message: Texted, knobs: Knobs) -> Outbound:
        """How the gateway posts a subscriber's message to ISKA's inbound `url`."""

    def fresh_id(self) -> str:
        """The gateway's id for a subscriber's message that `/simulator/inbound` was not given."""
        return str(uuid.uuid4())

    @abstractmethod
    def refusal(self, status_code: int, detail: str) -> Response: ...

    @abstractmethod
    def malformed(self) -> Response: ...


async def send(request: Request, gateway: str, dialect: Dialect) -> Response:
    """Serve one send request of `dialect` at the gateway named `gateway`."""
    sim: Simulation = request.app.state.sim
    sim.ledger.count(SCOPE, "requests")
    throttled = over_rate(sim.knobs, sim.ledger, f"{SCOPE}/{gateway}", SCOPE, dialect)
    if throttled is not None:
        return throttled
    token = dialect.credential(request)
    if token is None or token not in sim.knobs.tokens:
        sim.ledger.count(SCOPE, "unauthorised")
        return dialect.unauthorised()
    messages = await dialect.read(request)
    if isinstance(messages, Refused):
        sim.ledger.count(SCOPE, messages.counter)
        return messages.response
    refusal, fault = await injected_fault(sim.knobs, sim.dice, sim.ledger, SCOPE, dialect)
    if refusal is not None:
        return refusal
    if _scripted_failure(sim, messages):
        sim.ledger.count(SCOPE, "fault_scripted_5xx")
        return dialect.refusal(500, "scripted failure")
    answers, sent = [], False
    for sms in messages:
        answer, first_send = decide_once(sim, gateway, dialect, sms, token)
        answers.append(answer)
        sent = sent or first_send
    if sent and fault == AFTER_THE_FACT:
        sim.ledger.count(SCOPE, "fault_timeout_after_accept")
        return await hang(sim.knobs, dialect)
    return dialect.respond(answers)


def decide_once(
    sim: Simulation, gateway: str, dialect: Dialect, sms: Outgoing, token: str
) -> tuple[Answer, bool]:
    """The SMS's answer, and whether it was sent now (not a replay, not a rejection)."""
    refused = sim.knobs.rejects_sms(sms.msisdn, date.today())
    proposed = dialect.rejected(sms) if refused else dialect.accepted(sms, gateway)
    answer = proposed if sms.key is None else sim.ledger.remember(SCOPE, sms.key, proposed)
    if answer is not proposed:
        sim.ledger.count(SCOPE, "replays")
        return answer, False
    if refused:
        sim.ledger.count(SCOPE, "rejected", sms.msisdn)
        return answer, False
    sim.ledger.count(SCOPE, "accepted", sms.msisdn)
    sim.ledger.count(SCOPE, "segments", sms.msisdn, n=sms.segments)
    sim.ledger.keep_text(sms.msisdn, sms.text)
    sim.ledger.count(SCOPE, f"via_{gateway}")
    status = sim.knobs.report_status(sms.msgid or sms.ref)
    for due in dialect.reports(sms, status, token, sim.knobs):
        sim.reports.send_later(due.report, sim.knobs.report_delay_seconds * due.share)
    return answer, True


def _scripted_failure(sim: Simulation, messages: list[Outgoing]) -> bool:
    """`sms_errors_before_accept`: the first N requests for each msgid are answered 500."""
    limit = sim.knobs.sms_errors_before_accept
    if not limit:
        return False
    tallies = [sim.ledger.tally(SCOPE, sms.msgid) for sms in messages if sms.msgid is not None]
    return any(tally <= limit for tally in tallies)


def digits(msisdn: str) -> str:
    """An msisdn as the ledger counts it: `+233...` and `233...` are one subscriber."""
    return msisdn.strip().removeprefix("+")


def is_number(msisdn: str) -> bool:
    """An international number, with or without its `+`."""
    return NUMBER.fullmatch(msisdn.strip()) is not None
