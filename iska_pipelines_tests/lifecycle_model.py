"""A reference model of the subscriber lifecycle (SPEC §3, §5–7, §13), written for the state-machine
test as a second, independent implementation of the rules: plain Python, one subscriber at a
time, nothing imported from `iska_pipelines.lib`.

It knows subscriptions and their subscription periods, the billing gateway's memory of each
charge intent (what a gateway that honours Idempotency-Key answers a repeat with; for MoMo, the
request held under the intent's reference, the payer's answer and the callbacks held back, SPEC
§18), the charges and declines it counted, pending charges and how the callbacks and the poll
settle them, the day's messages, the subscribers' texts (STOP, START, YES, HELP),
the replies they got and the consent log's events. The test drives the real system and this model
with the same steps and compares them after every step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

# --- the rules' parameters, as the test configures the real system ----------------------------

MAX_BILLING_TRY_LIMIT = 2  # small, so billing cancellations happen within a short run of steps
BILLING_RETRY_MINUTES = 60
MAX_FUTURE_MINUTES = 60
MAX_REJECT_FRACTION = 0.2
MAX_GRID_DISTANCE_KM = 50.0
MAX_RETRY_AFTER_SECONDS = 300
EXPIRY_HOURS = 72
REJOIN_HOURS = 24  # a YES rejoins within this many hours of the START it answers (SPEC §13)
PLAN_DAYS = {"daily": 1, "weekly": 7}
PLAN_WORDS = {"11": "daily", "21": "weekly", "daily": "daily", "weekly": "weekly"}
EARTH_RADIUS_KM = 6371.0088

# the grid the test writes before the first step: gid -> (lat, lon)
GRID = {1: (5.60, -0.20), 2: (6.69, -1.62)}

# SPEC §3: a file is refused whole when more than MAX_REJECT_FRACTION of its rows are refused
# at parse time, judged from the file and the moment it is (first) applied; refusals against the
# database never refuse a file whole
PARSE_TIME_REASONS = frozenset(
    {"invalid_msisdn", "invalid_ts", "invalid_plan", "future_ts", "duplicate_in_file"}
)
DATABASE_REASONS = frozenset({"unknown_msisdn", "stale_event", "no_grid_point_nearby"})
TRANSIENT_FAULTS = ("5xx", "429", "timeout", "malformed")

# asynchronous billing (SPEC §18), as the MoMo state machine configures it
POLL_MINUTES = 10  # a pending charge is looked up once it is this old, and this often after
PENDING_HOURS = 12  # ... and given up on (`expired`) once it is this old
# a drawn answer as a MoMo payer gives it: approves, declines, or never answers
MOMO_ENDINGS = {"success": "approve", "failure": "decline", "failure402": "timeout"}
MOMO_STATUS = {"approve": "SUCCESSFUL", "decline": "FAILED", "timeout": "PENDING"}
LOOKED_UP = {"SUCCESSFUL": "success", "FAILED": "declined", "PENDING": "pending"}
SOURCES = {"user": "file", "api": "api"}  # a cancellation's reason -> the consent log's source
FINAL_MESSAGE = {"delivered", "failed", "undelivered", "expired", "rejected", "skipped_opted_out"}


def nearest_gid(lat: float, lon: float) -> int | None:
    """The nearest grid point within MAX_GRID_DISTANCE_KM (ties to the lowest gid), else None."""
    best: tuple[float, int] | None = None
    for gid, (glat, glon) in sorted(GRID.items()):
        km = _haversine_km(lat, lon, glat, glon)
        if km <= MAX_GRID_DISTANCE_KM and (best is None or km < best[0]):
            best = (km, gid)
    return None if best is None else best[1]


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


# --- CSV rows as the model reads them (SPEC §3) -------------------------------------------------

ASCII_MSISDN = re.compile(r"[0-9]{8,15}")


def normalise_msisdn(text: str) -> str | None:
    digits = re.sub(r"\s+", "", text)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    return digits if ASCII_MSISDN.fullmatch(digits) else None


def parse_ts(text: str) -> datetime | None:
    """The formats the test writes: `YYYY-MM-DD HH:MM:SS` (local = UTC in Africa/Accra), ISO with
    `Z` or `+01:00`."""
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Row:
    """One CSV row as written: the cells, in the file's column order."""

    msisdn: str
    ts: str
    plan: str | None = None  # additions
    lat: float | None = None  # additions and updates
    lon: float | None = None

    def cells(self, kind: str) -> tuple[str, ...]:
        if kind == "cancellations":
            return (self.msisdn, self.ts)
        if kind == "updates":
            return (self.msisdn, self.ts, f"{self.lat}", f"{self.lon}")
        return (self.msisdn, self.ts, str(self.plan), f"{self.lat}", f"{self.lon}")


HEADERS = {
    "additions": ("msisdn", "ts", "service_id", "lat", "lon"),
    "cancellations": ("msisdn", "ts"),
    "updates": ("msisdn", "ts", "lat", "lon"),
}


def csv_text(kind: str, rows: list[Row]) -> str:
    return "\n".join([",".join(HEADERS[kind])] + [",".join(r.cells(kind)) for r in rows]) + "\n"


def parse_rows(
    kind: str, rows: list[Row], judged_at: datetime
) -> tuple[list[set[str] | None], list[tuple[int, str, datetime, Row]]]:
    """The parse-time verdict on each row (a set of one reason, or None) and the rows that
    passed: (index, msisdn, ts, row). An exact repeat (same msisdn and ts) of a row that passed
    is `duplicate_in_file`; a repeat of a refused row is refused for that row's own reason."""
    parsed: list[tuple[int, str, datetime, Row]] = []
    reasons: list[set[str] | None] = [None] * len(rows)
    seen: set[tuple[str, datetime]] = set()
    for index, row in enumerate(rows):
        msisdn, ts = normalise_msisdn(row.msisdn), parse_ts(row.ts)
        reason = None
        if msisdn is None:
            reason = "invalid_msisdn"
        elif ts is None:
            reason = "invalid_ts"
        elif kind == "additions" and (row.plan or "").lower() not in PLAN_WORDS:
            reason = "invalid_plan"
        elif ts > judged_at + timedelta(minutes=MAX_FUTURE_MINUTES):
            reason = "future_ts"
        elif (msisdn, ts) in seen:
            reason = "duplicate_in_file"
        if reason is not None:
            reasons[index] = {reason}
            continue
        seen.add((msisdn, ts))
        parsed.append((index, msisdn, ts, row))
    return reasons, parsed


# --- the model's state --------------------------------------------------------------------------


@dataclass
class Subscription:
    msisdn: str
    plan: str
    status: str
    cancel_reason: str | None
    lat: float
    lon: float
    lid: int | None
    sub_date: datetime
    unsub_date: datetime | None
    next_billing_date: date | None
    last_billing_date: date | None
    failed_billing_count: int
    last_event_at: datetime
    last_successful_sms_date: date | None = None
    created_seq: int = 0  # creation order = the order billing charges in
    period: int = 1  # subscription period: a reactivation begins a new one
    period_began_at: datetime | None = None  # when the system applied the period's first event
    last_declined_at: datetime | None = None


@dataclass(frozen=True)
class Intent:
    """What one charge is for (SPEC §6): the Idempotency-Key must name exactly this."""

    msisdn: str
    period: int
    period_start: date
    declines: int


@dataclass
class Attempt:
    intent: Intent
    outcome: str  # success | declined | error | auth_error | pending | expired
    at: datetime | None = None  # when a pending charge was asked (MoMo)
    polled_at: datetime | None = None  # its last status lookup by the poll


@dataclass
class Message:
    msisdn: str
    day: date
    status: str
    accepted_at: datetime | None = None
    delivered: bool = False


@dataclass
class FileResult:
    """What applying one file does: refused as a whole, or each row applied or refused."""

    refused_whole: bool
    row_reasons: list[set[str] | None]  # per row: None = applied, else the acceptable reasons


@dataclass
class Charge:
    """The test's plan for one due charge: the gateway's answer to a first-time request and the
    transport faults in front of it, one per try."""

    answer: str = "success"  # success | failure (HTTP 200) | failure402
    faults: tuple[str, ...] = ()


@dataclass
class Model:
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    gateway: dict[Intent, str] = field(default_factory=dict)  # answers remembered by intent
    charged: dict[str, int] = field(default_factory=dict)  # first-time successes, per msisdn
    declined: dict[str, int] = field(default_factory=dict)  # first-time 200 declines, per msisdn
    messages: list[Message] = field(default_factory=list)
    applied_contents: set[tuple[str, str]] = field(default_factory=set)  # (kind, text) applied
    created: int = 0
    consent: list[tuple[str, str, str]] = field(default_factory=list)  # (msisdn, event, source)
    replies: list[Message] = field(default_factory=list)  # every reply sent (kind `reply`)
    asked: dict[str, datetime] = field(default_factory=dict)  # msisdn -> their START's time
    # MoMo (SPEC §18): each intent's request as the gateway holds it (its status), and the
    # callbacks it holds back until the test lets them arrive, in the order the payers answered
    momo: dict[Intent, str] = field(default_factory=dict)
    held: list[Intent] = field(default_factory=list)

    # -- files ---------------------------------------------------------------------------------

    def apply_file(
        self, kind: str, rows: list[Row], now: datetime, taken_at: datetime | None = None
    ) -> FileResult:
        """`taken_at`: when this file (same name, same content) was first taken; a `ts` is judged
        future against it, so a refused file dropped again unchanged gets the same verdict.

        The refused fraction counts every parse-time refusal, `future_ts` and
        `duplicate_in_file` included: six rows with one `future_ts` and one exact repeat are
        2 of 6, more than 0.2, and the file is refused whole."""
        reasons, parsed = parse_rows(kind, rows, taken_at or now)
        at_parse = sum(bool(r) and r <= PARSE_TIME_REASONS for r in reasons)
        if rows and at_parse / len(rows) > MAX_REJECT_FRACTION:
            return FileResult(True, reasons)
        for index, msisdn, ts, row in sorted(parsed, key=lambda p: (p[1], p[2], p[0])):
            reasons[index] = self._event(kind, msisdn, ts, row, now, cancel_reason="user")
        return FileResult(False, reasons)

    def _event(
        self, kind: str, msisdn: str, ts: datetime, row: Row, now: datetime, cancel_reason: str
    ) -> set[str] | None:
        """One event of SPEC §5; returns None when applied, else the reasons it may be refused
        with (more than one may apply; the spec does not rank them)."""
        sub = self.subscriptions.get(msisdn)
        lid = nearest_gid(row.lat, row.lon) if kind != "cancellations" else None
        reasons: set[str] = set()
        if sub is None and kind != "additions":
            return {"unknown_msisdn"}
        if sub is not None and ts < sub.last_event_at:
            reasons.add("stale_event")
        if kind != "cancellations" and lid is None:
            reasons.add("no_grid_point_nearby")
        if reasons:
            return reasons
        today = now.date()
        if kind == "additions":
            plan = PLAN_WORDS[str(row.plan).lower()]
            if sub is None:
                self.created += 1
                self.subscriptions[msisdn] = Subscription(
                    msisdn=msisdn,
                    plan=plan,
                    status="active",
                    cancel_reason=None,
                    lat=row.lat,
                    lon=row.lon,
                    lid=lid,
                    sub_date=ts,
                    unsub_date=None,
                    next_billing_date=today,
                    last_billing_date=None,
                    failed_billing_count=0,
                    last_event_at=ts,
                    created_seq=self.created,
                    period_began_at=now,
                )
                self.consent.append((msisdn, "added", SOURCES[cancel_reason]))
                return None
            sub.plan, sub.lat, sub.lon, sub.lid = plan, row.lat, row.lon, lid
            if sub.status == "cancelled":  # a new subscription period, due now
                sub.status, sub.cancel_reason, sub.unsub_date = "active", None, None
                sub.sub_date, sub.next_billing_date, sub.failed_billing_count = ts, today, 0
                sub.period += 1
                sub.period_began_at = now
                sub.last_declined_at = None  # the earlier period's declines impose no rest (SPEC §5)
                self.consent.append((msisdn, "added", SOURCES[cancel_reason]))
        elif kind == "cancellations":
            if sub.status == "active":
                sub.status, sub.cancel_reason, sub.unsub_date = "cancelled", cancel_reason, ts
                self.consent.append((msisdn, "cancelled", SOURCES[cancel_reason]))
        else:
            sub.lat, sub.lon, sub.lid = row.lat, row.lon, lid
        sub.last_event_at = max(sub.last_event_at, ts)
        return None

    def api_event(
        self,
        kind: str,
        msisdn: str,
        now: datetime,
        plan: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> set[str] | None:
        """An API write: the same event at the time of the request (SPEC §5, §8)."""
        return self._event(kind, msisdn, now, Row(msisdn, "", plan, lat, lon), now, cancel_reason="api")

    # -- billing -------------------------------------------------------------------------------

    def due(self, now: datetime) -> list[Subscription]:
        today = now.date()
        rested = now - timedelta(minutes=BILLING_RETRY_MINUTES)
        return sorted(
            (
                s
                for s in self.subscriptions.values()
                if s.status == "active"
                and s.next_billing_date is not None
                and s.next_billing_date <= today
                and not (s.last_declined_at is not None and s.last_declined_at > rested)
                and not self.pending_for(s.msisdn)
            ),
            key=lambda s: s.created_seq,
        )

    def intent(self, sub: Subscription) -> Intent:
        return Intent(sub.msisdn, sub.period, sub.next_billing_date, sub.failed_billing_count)

    def front_declines(self, now: datetime, plans: dict[str, Charge]) -> set[str]:
        """The msisdns the test's 402 front answers itself this run: due, planned to be declined
        with HTTP 402, and not already answered by the gateway for the same intent."""
        return {
            s.msisdn
            for s in self.due(now)
            if plans.get(s.msisdn, Charge()).answer == "failure402" and self.intent(s) not in self.gateway
        }

    def bill(
        self, now: datetime, plans: dict[str, Charge], tries: int, long_retry_after: bool = False
    ) -> list[str]:
        """One billing run, charges in creation order, one at a time. Returns the faults the
        simulator must inject, in request order (requests the 402 front answers never reach it).
        `long_retry_after`: every 429 asks for more than ISKA_MAX_RETRY_AFTER_SECONDS, which ends
        the tries of that charge for this run."""
        faults: list[str] = []
        for sub in self.due(now):
            plan = plans.get(sub.msisdn, Charge())
            intent = self.intent(sub)
            answer: str | None = None
            if self.gateway.get(intent, plan.answer) == "failure402":  # the front answers alone
                answer = self._first_answer(intent, "failure402")
            else:
                for attempt in range(tries):
                    fault = plan.faults[attempt] if attempt < len(plan.faults) else ""
                    faults.append(fault)
                    if fault in TRANSIENT_FAULTS:
                        if fault == "429" and long_retry_after:
                            break
                        continue
                    if intent in self.gateway:  # a repeated key: the stored answer, at once
                        answer = self.gateway[intent]
                        break
                    self._first_answer(intent, plan.answer)
                    if fault == "charge_then_timeout":
                        continue  # charged, but the answer never came back
                    answer = self.gateway[intent]
                    break
            self._record(sub, intent, answer, now)
        return faults

    def _first_answer(self, intent: Intent, planned: str) -> str:
        if intent not in self.gateway:
            self.gateway[intent] = planned
            if planned == "success":
                self.charged[intent.msisdn] = self.charged.get(intent.msisdn, 0) + 1
            elif planned == "failure":
                self.declined[intent.msisdn] = self.declined.get(intent.msisdn, 0) + 1
        return self.gateway[intent]

    def _record(self, sub: Subscription, intent: Intent, answer: str | None, now: datetime) -> None:
        if answer is None:
            self.attempts.append(Attempt(intent, "error"))
            return
        self.attempts.append(Attempt(intent, "success" if answer == "success" else "declined"))
        self._apply(sub, answer == "success", now)

    def _apply(self, sub: Subscription, paid: bool, now: datetime) -> None:
        """What a success (`paid`) or a decline answered at `now` changes in its subscription."""
        if paid:
            sub.last_billing_date = now.date()
            sub.next_billing_date = now.date() + timedelta(days=PLAN_DAYS[sub.plan])
            sub.failed_billing_count = 0
            return
        sub.last_declined_at = now
        sub.failed_billing_count += 1
        if sub.failed_billing_count >= MAX_BILLING_TRY_LIMIT:
            sub.status, sub.cancel_reason, sub.unsub_date = "cancelled", "billing", now
            sub.last_event_at = max(sub.last_event_at, now)  # SPEC §5: its own time
            self.consent.append((sub.msisdn, "cancelled", "billing"))

    # -- asynchronous billing (MoMo, SPEC §18) ----------------------------------------------

    def pending_for(self, msisdn: str) -> bool:
        """A charge of this subscriber waits for its payer: nothing more is asked meanwhile."""
        return any(a.outcome == "pending" and a.intent.msisdn == msisdn for a in self.attempts)

    def bill_momo(
        self, now: datetime, plans: dict[str, Charge], tries: int, long_retry_after: bool = False
    ) -> list[str]:
        """One MoMo billing run, charges in creation order, one at a time; returns the faults the
        simulator must inject in front of the requests (the status lookups get none). A new
        request is answered 202 (`pending`, whatever the payer does); one the gateway holds
        already (an earlier try or run got through) is answered 409 and looked up."""
        faults: list[str] = []
        for sub in self.due(now):
            plan = plans.get(sub.msisdn, Charge())
            intent = self.intent(sub)
            answer: str | None = None
            for attempt in range(tries):
                fault = plan.faults[attempt] if attempt < len(plan.faults) else ""
                faults.append(fault)
                if fault in TRANSIENT_FAULTS:
                    if fault == "429" and long_retry_after:
                        break
                    continue
                if intent in self.momo:
                    answer = LOOKED_UP[self.momo[intent]]
                    break
                self._ask_momo(intent, plan.answer)
                if fault == "charge_then_timeout":
                    continue  # asked, but the 202 never came back
                answer = "pending"
                break
            if answer == "pending":
                self.attempts.append(Attempt(intent, "pending", at=now))
            else:
                self._record(sub, intent, answer, now)  # None: error; else success or declined
        return faults

    def ask_momo_then_crash(self, now: datetime, plans: dict[str, Charge], asked: int) -> None:
        """A run whose record was refused after its first `asked` requests: the gateway holds
        them, ISKA wrote nothing."""
        for sub in self.due(now)[:asked]:
            intent = self.intent(sub)
            if intent not in self.momo:
                self._ask_momo(intent, plans.get(sub.msisdn, Charge()).answer)

    def _ask_momo(self, intent: Intent, drawn: str) -> None:
        """The gateway takes a new request; the payer answers at once (or never), and the
        callback is held back until the test lets it arrive."""
        ending = MOMO_ENDINGS[drawn]
        self.momo[intent] = MOMO_STATUS[ending]
        if ending == "approve":
            self.charged[intent.msisdn] = self.charged.get(intent.msisdn, 0) + 1
        elif ending == "decline":
            self.declined[intent.msisdn] = self.declined.get(intent.msisdn, 0) + 1
        if ending != "timeout":
            self.held.append(intent)

    def callbacks_arrive(self, fates: list[str], now: datetime) -> dict[str, int]:
        """The held callbacks arrive (`once`, `twice`) or are lost, in order; counts what each
        did: settled a charge, or came when nothing was pending (changing nothing)."""
        held, self.held = self.held, []
        did = {"settled": 0, "late": 0, "lost": 0, "repeated": 0}
        for index, intent in enumerate(held):
            fate = fates[index] if index < len(fates) else "once"
            if fate == "lost":
                did["lost"] += 1
                continue
            did["repeated"] += fate == "twice"
            settled = self.settle(intent, LOOKED_UP[self.momo[intent]], now)
            did["settled" if settled else "late"] += 1
        return did

    def poll(self, now: datetime) -> dict[str, int]:
        """The poll sensor's tick: what it settled, expired, or left pending."""
        asked_before = now - timedelta(minutes=POLL_MINUTES)
        expire_before = now - timedelta(hours=PENDING_HOURS)
        did = {"settled": 0, "expired": 0, "still_pending": 0}
        for attempt in [a for a in self.attempts if a.outcome == "pending"]:
            if (attempt.polled_at or attempt.at) > asked_before:
                continue
            status = self.momo[attempt.intent]
            if status != "PENDING":
                did["settled"] += self.settle(attempt.intent, LOOKED_UP[status], now)
            elif attempt.at <= expire_before:
                did["expired"] += self.settle(attempt.intent, "expired", now)
            else:
                attempt.polled_at = now
                did["still_pending"] += 1
        return did

    def settle(self, intent: Intent, outcome: str, now: datetime) -> bool:
        """The pending charge of `intent` ends, once; False when none was pending. Its
        subscription changes only while it is still in that intent, a decline only while it is
        active; `expired` changes nothing but the attempt."""
        attempt = next((a for a in self.attempts if a.intent == intent and a.outcome == "pending"), None)
        if attempt is None:
            return False
        attempt.outcome = outcome
        sub = self.subscriptions[intent.msisdn]
        if outcome == "expired" or self.intent(sub) != intent:
            return True
        if outcome == "success" or sub.status == "active":
            self._apply(sub, outcome == "success", now)
        return True

    def bill_unauthorised(self, now: datetime) -> None:
        """401: the first charge is refused and the run stops; nothing else changes."""
        due = self.due(now)
        if due:
            self.attempts.append(Attempt(self.intent(due[0]), "auth_error"))

    def bill_outage(self, now: datetime) -> None:
        """No answer at all: every due charge is a transport error."""
        for sub in self.due(now):
            self.attempts.append(Attempt(self.intent(sub), "error"))

    # -- SMS -----------------------------------------------------------------------------------

    def sms_day(self, day: date, now: datetime) -> None:
        for message in [*self.messages, *self.replies]:  # replies expire like any message
            if message.status == "accepted" and message.accepted_at < now - timedelta(hours=EXPIRY_HOURS):
                message.status = "expired"
        planned = {(m.msisdn, m.day) for m in self.messages}
        for sub in sorted(self.subscriptions.values(), key=lambda s: s.created_seq):
            if (
                sub.status == "active"
                and sub.last_billing_date is not None
                and sub.next_billing_date is not None
                and sub.next_billing_date > day
                and sub.lid is not None
                and (sub.msisdn, day) not in planned
            ):
                self.messages.append(Message(sub.msisdn, day, "pending"))
        for message in self.messages:
            if message.day == day and message.status == "pending":
                message.status, message.accepted_at = "accepted", now

    def report(self, message: Message | None, status: str, now: datetime) -> None:
        if message is None or message.status in FINAL_MESSAGE:
            return
        message.status = status
        if status == "delivered":
            message.delivered = True
            sub = self.subscriptions[message.msisdn]
            if sub.last_successful_sms_date is None or sub.last_successful_sms_date < message.day:
                sub.last_successful_sms_date = message.day

    def sms_sent(self) -> dict[str, int]:
        """Every SMS the gateway took, per msisdn: the day's forecasts and the replies."""
        counts: dict[str, int] = {}
        for message in self.messages:
            if message.accepted_at is not None:
                counts[message.msisdn] = counts.get(message.msisdn, 0) + 1
        for reply in self.replies:
            counts[reply.msisdn] = counts.get(reply.msisdn, 0) + 1
        return counts

    # -- inbound SMS (SPEC §13) ----------------------------------------------------------------

    def _reply(self, msisdn: str, now: datetime) -> None:
        """Sent at once and accepted (the test's gateway takes every reply)."""
        self.replies.append(Message(msisdn, now.date(), "accepted", accepted_at=now))

    def sms_text(self, msisdn: str, keyword: str, now: datetime) -> str:
        """A subscriber's SMS (`keyword`: stop, start, yes, help or other) at `now`; returns
        what it did. Replies are free: they never touch billing."""
        sub = self.subscriptions.get(msisdn)
        if keyword == "help":
            self._reply(msisdn, now)
            return "helped"
        if keyword == "other":
            return "for_operator"
        if sub is None:
            return "unknown_msisdn"
        if keyword == "stop":
            self.asked.pop(msisdn, None)  # a later STOP withdraws a rejoin question
            if sub.status == "active" or sub.cancel_reason != "opt_out":
                self.consent.append((msisdn, "opted_out", "sms"))
            if sub.status == "active":
                sub.unsub_date = now
            sub.status, sub.cancel_reason = "cancelled", "opt_out"
            sub.last_event_at = max(sub.last_event_at, now)
            for message in self.messages:
                if message.msisdn == msisdn and message.status == "pending":
                    message.status = "skipped_opted_out"
            self._reply(msisdn, now)
            return "opted_out"
        if sub.status == "active":
            return "already_active"
        if keyword == "start":
            self.asked[msisdn] = now
            self._reply(msisdn, now)
            return "rejoin_asked"
        asked = self.asked.get(msisdn)
        if (
            asked is None
            or asked < now - timedelta(hours=REJOIN_HOURS)
            or asked > now
            or (sub.unsub_date is not None and asked < sub.unsub_date)
        ):
            return "no_pending_ask"
        sub.status, sub.cancel_reason, sub.unsub_date = "active", None, None
        sub.sub_date, sub.next_billing_date, sub.failed_billing_count = now, now.date(), 0
        sub.period += 1
        sub.period_began_at = now
        sub.last_declined_at = None
        sub.last_event_at = max(sub.last_event_at, now)
        self.consent.append((msisdn, "rejoined", "sms"))
        self._reply(msisdn, now)
        return "rejoined"

    def snapshot(self) -> Model:
        """A copy to compare against after a step that must change nothing."""
        return replace(
            self,
            subscriptions={k: replace(v) for k, v in self.subscriptions.items()},
            attempts=[replace(a) for a in self.attempts],
            gateway=dict(self.gateway),
            charged=dict(self.charged),
            declined=dict(self.declined),
            messages=[replace(m) for m in self.messages],
            applied_contents=set(self.applied_contents),
            consent=list(self.consent),
            replies=[replace(r) for r in self.replies],
            asked=dict(self.asked),
            momo=dict(self.momo),
            held=list(self.held),
        )
