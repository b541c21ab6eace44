"""The subscriber lifecycle as a model-based test (SPEC §2, §3, §5, §6, §7, §13).

A hypothesis `RuleBasedStateMachine` drives the real system in process: subscription files go
through the inbox sensor and the `subscriptions` asset, the API writes through the real FastAPI
app on 127.0.0.1, `billing_job` charges the gateway simulator (behind a small front that adds
HTTP 402 declines), `sms_job` sends each day's messages, delivery reports come back through the
API callback, subscribers text STOP, START, YES or HELP to the API's inbound route (whose replies
go out through the simulator), and the clock moves across days and weeks. `lifecycle_model.py` is an independent
second implementation of the rules; after every step the database, the simulator's ledger and
the model must agree, and the invariants below must hold.

The clock: ISKA reads "now" from the standard library (ingest, billing, SMS planning, the API),
so the test travels the whole process to the model's time with `time_machine` (frozen between
the model's explicit moves). Bounded in `make test`; `make soak` runs ISKA_SOAK_EXAMPLES
examples. A failure prints the shrunk sequence of steps. test_lifecycle_momo_state_machine.py
runs this machine billed through MoMo (SPEC §18).
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.defs.billing.jobs import billing_job, charge_due_subscriptions
from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import (
    expire_unreported_sms,
    plan_sms,
    report_sms_day,
    send_sms_batch,
    sms_job,
)
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.consent.chain import verify
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.db.schema import (
    billing_attempts,
    consent_events,
    forecasts,
    inbound_messages,
    ingested_files,
    sms_messages,
    subscriptions,
)
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE
from iska_pipelines.simulator.app import create_app
from iska_pipelines.simulator.faults import Dice
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Ledger
from iska_pipelines.simulator.reports import ReportSender
from iska_pipelines_tests import lifecycle_model as lm
from iska_pipelines_tests.api_server import CALLBACK_SECRET, api_on_loopback, api_settings
from iska_pipelines_tests.driver import Iska
from iska_pipelines_tests.loopback import serve_on_loopback
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN, RunningSimulator
from iska_pipelines_tests.sms_runs import refused_url

# 20 examples of up to 40 steps: about 70 s per database here when nothing fails; long enough
# sequences that subscribers pay, get SMS, are declined to cancellation and rejoin
EXAMPLES = int(os.environ.get("ISKA_SOAK_EXAMPLES", "0") or 0) or 20
STEPS = int(os.environ.get("ISKA_SOAK_STEPS", "0") or 0) or 40
START = datetime(2027, 3, 1, 6, 30, tzinfo=UTC)  # a Monday morning in Africa/Accra (UTC+0)
MORNING = time(6, 30)
LATEST_SMS_HOUR = 10  # SMS days run before ISKA_SMS_LATEST_HOUR, as the schedule does
EVENING = time(22, 0)  # the clock never nears midnight inside a day's steps
POPULATION = 6
TRIES = 2  # transport tries per charge within a run
CLAIM_LIFETIME = timedelta(seconds=SmsOutbox.model_fields["claim_seconds"].default)  # a dead sender's hold
HANG_SECONDS = 0.6  # how long the simulator leaves a timed-out request hanging
CLIENT_TIMEOUT = 0.3
# MoMo's answer to a request depends on what the gateway already holds (202, or 409 and a
# lookup): a request that times out only because the machine is busy, and lands after its
# retry, would change the answer, so the MoMo machine waits longer for each (and hangs longer)
MOMO_CLIENT_TIMEOUT = 1.5
MOMO_HANG_SECONDS = 2.0
TABLES = (
    billing_attempts,
    sms_messages,
    ingested_files,
    subscriptions,
    forecasts,
    consent_events,
    inbound_messages,
)
INBOUND_TOKEN = "lifecycle-inbound-token"
# what a subscriber texts, and the keyword the model reads in it (SPEC §13)
TEXTS = {
    "STOP": "stop",
    "stop please": "stop",
    "Arrêt": "stop",
    "START": "start",
    "YES": "yes",
    "oui": "yes",
    "HELP": "help",
    "hello": "other",
}
LOCATIONS = [(5.6, -0.2), (5.65, -0.25), (6.7, -1.6), (10.5, 2.5)]  # the last is near no grid point
FAULTS = ["", "5xx", "429", "timeout", "malformed", "charge_then_timeout"]
REPORTS = ["delivered", "failed", "undelivered", "expired", "rejected"]
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


# what the API answers a write refused for each reason; when several apply (a stale move to a
# place near no grid point) the spec does not rank them, so any of theirs will do
REFUSAL_STATUSES = {"stale_event": {409}, "no_grid_point_nearby": {400, 422}}


def refusal_statuses(reasons: set[str]) -> set[int]:
    return {status for reason in reasons for status in REFUSAL_STATUSES[reason]}


# --- a billing gateway front: HTTP 402 declines, the rest forwarded to the simulator -----------


class BillingFront(ThreadingHTTPServer):
    """Answers `402 {"status": "failure"}` for the msisdns told to decline that way (and for a
    repeated Idempotency-Key it answered so); forwards everything else to the simulator, whose
    ledger counts the charges."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _FrontHandler)
        self.upstream = upstream
        self.decline: set[str] = set()
        self.answered: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.in_flight = 0  # requests being answered or forwarded right now

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/billing"


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        front: BillingFront = self.server
        with front.lock:
            front.in_flight += 1
        try:
            self._forward(front)
        finally:
            with front.lock:
                front.in_flight -= 1

    def _forward(self, front: BillingFront) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key", "")
        msisdn = json.loads(body or b"{}").get("msisdn")
        with front.lock:
            if key not in front.answered and msisdn in front.decline:
                front.answered[key] = json.dumps({"status": "failure", "detail": "balance"}).encode()
            declined = front.answered.get(key)
        if declined is not None:
            return self._answer(402, declined, {})
        headers = {
            n: self.headers[n] for n in ("Auth-Key", "Idempotency-Key", "Content-Type") if self.headers[n]
        }
        try:
            upstream = requests.post(front.upstream, data=body, headers=headers, timeout=HANG_SECONDS + 5)
        except requests.RequestException:
            return self._answer(502, b'{"status": "error"}', {})
        extra = {"Retry-After": upstream.headers["Retry-After"]} if "Retry-After" in upstream.headers else {}
        self._answer(upstream.status_code, upstream.content, extra)

    def _answer(self, status: int, body: bytes, headers: dict) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client timed out and went away
            pass

    def log_message(self, *_args) -> None:
        pass


# --- the world shared by one test's examples ----------------------------------------------------


class World:
    """One database, API, simulator and front per test; every example wipes the tables and
    starts the simulator's ledger afresh (subscription ids restart, so Idempotency-Keys repeat
    from one example to the next: a gateway remembering them would answer without charging)."""

    database_url: str
    api: object
    simulator: object
    simulator_app: object
    front: BillingFront
    tmp: Path

    def forget_gateway_history(self) -> None:
        """A request the last example's client gave up on may still be on its way through the
        front (on a busy machine): it must land in the old ledger, not the new one."""
        wait_for(lambda: self.front.in_flight == 0, 30)
        sim = self.simulator_app.state.sim  # the one object every route of the app uses
        sim.reports.stop()
        sim.ledger = Ledger()
        sim.dice, sim.reports = Dice(sim.knobs.seed), ReportSender(sim.ledger)


def _wipe(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(t.name for t in TABLES)
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
        else:
            for table in TABLES:
                connection.execute(table.delete())


def _crash_trigger(engine: sa.Engine, install: bool) -> None:
    """A write refused by the database between the charge and its record: the step crashes."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            if install:
                connection.exec_driver_sql(
                    "CREATE OR REPLACE FUNCTION lifecycle_crash() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'simulated crash between charge and write'; END $$ LANGUAGE plpgsql"
                )
                connection.exec_driver_sql(
                    "CREATE TRIGGER lifecycle_crash BEFORE INSERT ON billing_attempts "
                    "FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_crash()"
                )
            else:
                connection.exec_driver_sql("DROP TRIGGER IF EXISTS lifecycle_crash ON billing_attempts")
        elif install:
            connection.exec_driver_sql(
                "CREATE TRIGGER lifecycle_crash BEFORE INSERT ON billing_attempts BEGIN "
                "SELECT RAISE(ABORT, 'simulated crash between charge and write'); END"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS lifecycle_crash")


def _sms_crash_trigger(engine: sa.Engine, install: bool) -> None:
    """The gateway accepts, but recording the answer is refused: the sending step crashes."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            if install:
                connection.exec_driver_sql(
                    "CREATE OR REPLACE FUNCTION lifecycle_sms_crash() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'simulated crash between send and write'; END $$ LANGUAGE plpgsql"
                )
                connection.exec_driver_sql(
                    "CREATE TRIGGER lifecycle_sms_crash BEFORE UPDATE ON sms_messages FOR EACH ROW "
                    "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION lifecycle_sms_crash()"
                )
            else:
                connection.exec_driver_sql("DROP TRIGGER IF EXISTS lifecycle_sms_crash ON sms_messages")
        elif install:
            connection.exec_driver_sql(
                "CREATE TRIGGER lifecycle_sms_crash BEFORE UPDATE OF status ON sms_messages "
                "WHEN OLD.status IS NOT NEW.status "
                "BEGIN SELECT RAISE(ABORT, 'simulated crash between send and write'); END"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS lifecycle_sms_crash")


@dg.job(partitions_def=sms_job.partitions_def, executor_def=dg.in_process_executor)
def sms_job_crashing_once():
    """The real SMS ops without their step retries: the crash fails the run."""
    no_retry = dg.RetryPolicy(max_retries=0)
    expired = expire_unreported_sms.with_retry_policy(no_retry)()
    plan, senders = plan_sms.with_retry_policy(no_retry)()
    sent = senders.map(send_sms_batch.with_retry_policy(no_retry))
    report_sms_day(plan, sent.collect(), expired)


@dg.job(executor_def=dg.in_process_executor)
def billing_job_crashing_once():
    """The real billing op without its step retry: the crash fails the run, and the next
    `billing_job` run is its re-execution."""
    charge_due_subscriptions.with_retry_policy(dg.RetryPolicy(max_retries=0))()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date(value) -> date | None:
    return value if value is None or isinstance(value, date) else date.fromisoformat(str(value))


# --- strategies ---------------------------------------------------------------------------------

DEFECTS = [None] * 24 + ["arabic_digits", "letters", "bad_ts", "bad_plan", "future_ts", "year_typo"]
rows_strategy = st.lists(
    st.tuples(
        st.integers(0, POPULATION - 1),  # who
        st.sampled_from(["plain", "plus", "00", "spaced"]),  # how the msisdn is written
        st.sampled_from([0, 5, 30, 90, 600, 1440, 4320]),  # minutes before now
        st.sampled_from(["space", "iso_z", "plus_one"]),  # how the ts is written
        st.sampled_from(["11", "21", "daily", "weekly"]),
        st.sampled_from([0, 0, 1, 2, 3]),  # location
        st.sampled_from(DEFECTS),
    ),
    min_size=1,
    max_size=6,
)
charges_strategy = st.dictionaries(
    st.integers(0, POPULATION - 1),
    st.tuples(
        st.sampled_from(["success", "failure", "failure402"]),
        st.lists(st.sampled_from(FAULTS), max_size=TRIES).map(tuple),
    ),
    max_size=POPULATION,
)


class Lifecycle(RuleBasedStateMachine):
    world: World
    protocol = "iska"  # BILLING_PROTOCOL; MomoLifecycle below bills through MoMo (SPEC §18)

    def __init__(self) -> None:
        super().__init__()
        world = self.world
        self.now = START
        self.traveller = time_machine.travel(self.now, tick=False)
        self.clock = self.traveller.start()
        self.model = lm.Model()
        self.engine = engine_for(world.database_url)
        _wipe(self.engine)
        with self.engine.begin() as connection:
            connection.execute(
                forecasts.insert(),
                [
                    {
                        "gid": gid,
                        "lat": lat,
                        "lon": lon,
                        "fcat24": Decimal("0.1"),
                        "fcat48": Decimal("0.2"),
                        "is_active": True,
                        "created_at": self.now,
                        "updated_at": self.now,
                    }
                    for gid, (lat, lon) in lm.GRID.items()
                ],
            )
        self.data_dir = Path(tempfile.mkdtemp(dir=world.tmp))
        self.iska = Iska(
            database_url=world.database_url, data_dir=self.data_dir, instance=dg.DagsterInstance.ephemeral()
        )
        self.files: list[tuple[str, list[lm.Row], str]] = []  # kind, rows, name
        self.partitions: list[str] = []
        self.first_taken: dict[str, datetime] = {}  # partition key -> the clock when first taken
        self.msgids: dict[tuple[str, date], str] = {}
        self.ids: dict[str, int] = {}
        self.texts = 0
        self.stopped_at: dict[str, datetime] = {}  # msisdn -> when they opted out (and still are)
        world.front.decline, world.front.answered = set(), {}
        world.forget_gateway_history()
        world.simulator.configure(
            script={},
            faults=[],
            hang_seconds=HANG_SECONDS,
            retry_after_seconds=0.05,
            decline_rate=0.0,
            error_rate=0.0,
            timeout_rate=0.0,
            throttle_rate=0.0,
            report_delay_seconds=3600,
            momo_script={},
            momo_settle_seconds=0,  # MoMo payers answer at once; their callbacks wait for the test
            momo_hold_callbacks=True,
            momo_timeout_rate=0.0,
            momo_lost_callback_rate=0.0,
        )

    def teardown(self) -> None:
        self.traveller.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def msisdn(self, index: int) -> str:
        return f"23320000{index:02d}"  # the same every example: a replay must behave alike

    def written_msisdn(self, index: int, form: str, defect: str | None) -> str:
        digits = self.msisdn(index)
        if defect == "arabic_digits":
            return digits.translate(ARABIC_DIGITS)
        if defect == "letters":
            return digits[:5] + "abc" + digits[8:]
        return {
            "plain": digits,
            "plus": "+" + digits,
            "00": "00" + digits,
            "spaced": f"{digits[:3]} {digits[3:7]} {digits[7:]}",
        }[form]

    def written_ts(self, minutes_before: int, form: str, defect: str | None) -> str:
        if defect == "bad_ts":
            return "2027-02-30 25:61:00"
        when = self.now - timedelta(minutes=minutes_before)
        if defect == "future_ts":
            when = self.now + timedelta(hours=2)
        elif defect == "year_typo":
            when = when.replace(year=when.year + 10)
        if form == "iso_z":
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
        if form == "plus_one":
            return (when + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
        return when.strftime("%Y-%m-%d %H:%M:%S")

    def make_rows(self, kind: str, drawn, repeat_first: bool) -> list[lm.Row]:
        """`repeat_first`: the first row again at the end, an exact repeat (duplicate_in_file)."""
        rows: list[lm.Row] = []
        for who, form, minutes, ts_form, plan, place, defect in drawn:
            lat, lon = LOCATIONS[place]
            row = lm.Row(
                self.written_msisdn(who, form, defect),
                self.written_ts(minutes, ts_form, defect),
                "99" if defect == "bad_plan" else plan,
                lat,
                lon,
            )
            if kind == "cancellations":
                row = lm.Row(row.msisdn, row.ts)
            elif kind == "updates":
                row = lm.Row(row.msisdn, row.ts, None, lat, lon)
            rows.append(row)
        return rows + rows[:1] if repeat_first else rows

    def table(self, table: sa.Table, order: sa.Column) -> list[dict]:
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.select(table).order_by(order))]

    def tables(self) -> dict[str, list[dict]]:
        """Every ISKA table, for 'nothing changed' (ingested_files keeps which run looked last)."""
        files = [
            {k: v for k, v in row.items() if k not in ("run_id", "updated_at")}
            for row in self.table(ingested_files, ingested_files.c.partition_key)
        ]
        return {
            "subscriptions": self.table(subscriptions, subscriptions.c.id),
            "billing_attempts": self.table(billing_attempts, billing_attempts.c.id),
            "sms_messages": self.table(sms_messages, sms_messages.c.msgid),
            "forecasts": self.table(forecasts, forecasts.c.gid),
            "ingested_files": files,
        }

    def ledger(self) -> dict:
        stats = self.world.simulator.stats()
        mine = {self.msisdn(i) for i in range(POPULATION)}
        pick = lambda counts: {m: n for m, n in counts.items() if m in mine}  # noqa: E731
        return {
            "charged": pick(stats["billing"]["charges"]),
            "declined": pick(stats["billing"]["declines"]),
            "sms": pick(stats["sms"]["messages"]),
        }

    def db_due(self) -> set[str]:
        return {
            r["msisdn"]
            for r in self.table(subscriptions, subscriptions.c.id)
            if r["status"] == "active"
            and r["next_billing_date"] is not None
            and _date(r["next_billing_date"]) <= self.now.date()
        }

    def billing_resources(self, **gateway) -> dict:
        settings_ = {
            "url": self.world.front.url,
            "token": SIMULATOR_TOKEN,
            "concurrency": 1,
            "timeout_seconds": CLIENT_TIMEOUT,
            "tries": TRIES,
            "backoff_seconds": 0.01,
        }
        if self.protocol == "momo":
            settings_ |= {
                "protocol": "momo",
                "url": self.world.simulator.momo_url,
                "public_url": self.world.api.base_url,
                "callback_secret": CALLBACK_SECRET,
                "timeout_seconds": MOMO_CLIENT_TIMEOUT,
            }
        return {
            "database": IskaDatabase(url=self.world.database_url),
            "billing_gateway": BillingGateway(**(settings_ | gateway)),
            "billing_policy": BillingPolicy(
                max_tries=lm.MAX_BILLING_TRY_LIMIT,
                retry_minutes=lm.BILLING_RETRY_MINUTES,
                poll_minutes=lm.POLL_MINUTES,
                pending_hours=lm.PENDING_HOURS,
            ),
        }

    def run_billing(self, job=billing_job, **gateway) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            resources=self.billing_resources(**gateway), instance=self.iska.instance, raise_on_error=False
        )

    def script_gateway(
        self, plans: dict[str, lm.Charge], declines402: set[str], faults: list[str], retry_after: float
    ) -> None:
        """`declines402`: from `front_declines`, asked before the model bills the run."""
        self.world.front.decline = declines402
        if self.protocol == "momo":  # how each payer answers a new request
            self.world.simulator.configure(
                momo_script={m: [lm.MOMO_ENDINGS[c.answer]] for m, c in plans.items()},
                faults=faults,
                retry_after_seconds=retry_after,
            )
            return
        self.world.simulator.configure(
            script={m: [c.answer] for m, c in plans.items() if c.answer in ("success", "failure")},
            faults=faults,
            retry_after_seconds=retry_after,
        )

    def front_declines(self, plans: dict[str, lm.Charge]) -> set[str]:
        """Who the 402 front answers itself (the iska protocol only: MoMo's declines are FAILED)."""
        return self.model.front_declines(self.now, plans) if self.protocol == "iska" else set()

    def bill_model(self, plans: dict[str, lm.Charge], long_retry_after: bool = False) -> list[str]:
        """The model's billing run; the faults the simulator must inject, in request order."""
        if self.protocol == "momo":
            return self.model.bill_momo(self.now, plans, TRIES, long_retry_after)
        return self.model.bill(self.now, plans, TRIES, long_retry_after)

    def check_billing_step(
        self,
        before: dict,
        due_before: set[str],
        ledger_before: dict,
        result: dg.ExecuteInProcessResult,
        expect_success: bool,
    ) -> None:
        ledger = self.ledger()
        charged = {m for m, n in ledger["charged"].items() if n > ledger_before["charged"].get(m, 0)}
        assert charged <= due_before, f"charged {sorted(charged - due_before)}, who were not active and due"
        new_attempts = self.table(billing_attempts, billing_attempts.c.id)[len(before["billing_attempts"]) :]
        was = {r["msisdn"]: r for r in before["subscriptions"]}
        for row in self.table(subscriptions, subscriptions.c.id):
            if row["cancel_reason"] == "billing" and was[row["msisdn"]]["status"] == "active":
                outcomes = [a["outcome"] for a in new_attempts if a["msisdn"] == row["msisdn"]]
                assert "declined" in outcomes, (
                    f"{row['msisdn']} cancelled for billing in a run that got no decline for it: {outcomes}"
                )
        for sub in self.model.subscriptions.values():
            if sub.cancel_reason == "billing":
                event("a subscriber was cancelled for billing")
            if sub.period > 1:
                event("a subscriber rejoined (a second subscription period)")
        self.billing_attempts_agree_and_each_key_names_one_intent()  # says why, when the run differs
        assert result.success == expect_success, (
            f"billing run success={result.success}, expected {expect_success}"
        )

    # -- files ---------------------------------------------------------------------------------

    def ingest(self, kind: str, rows: list[lm.Row], name: str, folder: str) -> None:
        text = lm.csv_text(kind, rows)
        duplicate = (kind, text) in self.model.applied_contents
        self.iska.drop(text, name=name, folder=folder)
        tick = self.iska.tick()
        if duplicate:
            assert tick.run_requests == [], f"{name}: identical content to an applied file was applied again"
            assert (self.iska.folders.archive / kind / "duplicates").is_dir()
            return
        assert [r.partition_key.split("-")[0] for r in tick.run_requests] == [kind], tick.run_requests
        key = tick.run_requests[0].partition_key
        result = self.iska.run(key)
        self.partitions.append(key)
        # the same name and content is the same partition: judged against its first taking
        expected = self.model.apply_file(kind, rows, self.now, self.first_taken.setdefault(key, self.now))
        with self.engine.connect() as connection:
            record = connection.execute(
                sa.select(ingested_files).where(ingested_files.c.partition_key == key)
            ).one()
        if expected.refused_whole:
            event("a file was refused as a whole")
            assert not result.success and record.outcome == "rejected", (
                f"{name} should be refused as a whole: rows {expected.row_reasons}; it was {record.outcome}"
            )
            return
        assert result.success and record.outcome == "applied", f"{name} refused: {record.error}"
        self.model.applied_contents.add((kind, text))
        applied = sum(r is None for r in expected.row_reasons)
        assert (record.rows_in, record.rows_applied, record.rows_refused) == (
            len(rows),
            applied,
            len(rows) - applied,
        ), (
            f"{name}: rows in/applied/refused {record.rows_in}/{record.rows_applied}/{record.rows_refused}, "
            f"expected reasons per row {expected.row_reasons}"
        )
        self.check_refused_rows(
            kind, rows, expected, self.iska.folders.archive / kind / f"{name}.rejected.csv"
        )

    def check_refused_rows(self, kind: str, rows: list[lm.Row], expected: lm.FileResult, path: Path) -> None:
        """Every refused row is in `<name>.rejected.csv` with one of the reasons that apply."""
        written = []
        if path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                written = [
                    (tuple(r[h] for h in lm.HEADERS[kind]), r["reason"]) for r in csv.DictReader(handle)
                ]
        wanted = [
            (row.cells(kind), reasons)
            for row, reasons in zip(rows, expected.row_reasons, strict=True)
            if reasons
        ]
        unmatched = list(wanted)
        for cells, reason in written:
            match = next((w for w in unmatched if w[0] == cells and reason in w[1]), None)
            assert match is not None, f"row {cells} refused as {reason}; expected refusals {wanted}"
            unmatched.remove(match)
        assert not unmatched, f"rows not refused though they should be: {unmatched}"

    @rule(
        kind=st.sampled_from(["additions", "additions", "cancellations", "updates"]),
        drawn=rows_strategy,
        at_root=st.booleans(),
        repeat_first=st.sampled_from([False, False, False, True]),
    )
    def drop_a_subscription_file(self, kind, drawn, at_root, repeat_first):
        rows = self.make_rows(kind, drawn, repeat_first)
        name = f"f{len(self.files)}_{kind}.csv"
        self.files.append((kind, rows, name))
        self.ingest(kind, rows, name, "" if at_root else kind)

    @precondition(lambda self: self.files)
    @rule(pick=st.integers(0, 100), same_name=st.booleans())
    def drop_an_earlier_file_again(self, pick, same_name):
        kind, rows, name = self.files[pick % len(self.files)]
        if not same_name:
            name = f"f{len(self.files)}_again_{kind}.csv"
            self.files.append((kind, rows, name))
        self.ingest(kind, rows, name, kind)

    @precondition(lambda self: self.partitions)
    @rule(pick=st.integers(0, 100))
    def rerun_a_processed_partition(self, pick):
        key = self.partitions[pick % len(self.partitions)]
        before, model_before = self.tables(), self.model.snapshot()
        self.iska.run(key)
        after = self.tables()
        for name in before:
            assert after[name] == before[name], f"re-running partition {key} changed {name}:\n" + "\n".join(
                f"  before {b}\n  after  {a}"
                for b, a in itertools.zip_longest(before[name], after[name])
                if a != b
            )
        assert self.model == model_before

    # -- API writes ----------------------------------------------------------------------------

    def api_id(self, msisdn: str) -> int | None:
        answer = requests.get(
            f"{self.world.api.base_url}/subscriptions/api/v1/subscriptions/",
            params={"msisdn": msisdn},
            timeout=10,
        ).json()
        return answer["results"][0]["id"] if answer["results"] else None

    @rule(
        who=st.integers(0, POPULATION - 1),
        plan=st.sampled_from(["daily", "weekly"]),
        place=st.sampled_from([0, 1, 2, 3]),
    )
    def api_creates_a_subscription(self, who, plan, place):
        msisdn, (lat, lon) = self.msisdn(who), LOCATIONS[place]
        known = msisdn in self.model.subscriptions
        response = requests.post(
            f"{self.world.api.base_url}/subscriptions/api/v1/subscriptions/",
            json={"msisdn": msisdn, "plan": plan, "lat": lat, "lon": lon},
            timeout=10,
        )
        refused = self.model.api_event("additions", msisdn, self.now, plan=plan, lat=lat, lon=lon)
        if refused is None:
            assert response.status_code == (200 if known else 201), response.text
        else:
            assert response.status_code in refusal_statuses(refused), response.text

    @precondition(lambda self: any(s.status == "active" for s in self.model.subscriptions.values()))
    @rule(pick=st.integers(0, 100))
    def api_cancels_a_subscription(self, pick):
        active = sorted(m for m, s in self.model.subscriptions.items() if s.status == "active")
        msisdn = active[pick % len(active)]
        response = requests.delete(
            f"{self.world.api.base_url}/subscriptions/api/v1/subscriptions/{self.api_id(msisdn)}/", timeout=10
        )
        assert response.status_code == 204, response.text
        assert self.model.api_event("cancellations", msisdn, self.now) is None

    @precondition(lambda self: self.model.subscriptions)
    @rule(pick=st.integers(0, 100), place=st.sampled_from([0, 1, 2, 3]))
    def api_moves_a_subscriber(self, pick, place):
        msisdn = sorted(self.model.subscriptions)[pick % len(self.model.subscriptions)]
        lat, lon = LOCATIONS[place]
        sub = self.model.subscriptions[msisdn]
        if (sub.lat, sub.lon) == (lat, lon):
            return  # not a move: nothing to apply
        response = requests.patch(
            f"{self.world.api.base_url}/subscriptions/api/v1/subscriptions/{self.api_id(msisdn)}/",
            json={"lat": lat, "lon": lon},
            timeout=10,
        )
        refused = self.model.api_event("updates", msisdn, self.now, lat=lat, lon=lon)
        assert response.status_code in ({200} if refused is None else refusal_statuses(refused)), (
            response.text
        )

    # -- billing -------------------------------------------------------------------------------

    def plans(self, drawn: dict, default: str = "success") -> dict[str, lm.Charge]:
        """The drawn charges, and `default` for everyone else (declines come often enough to
        reach MAX_BILLING_TRY_LIMIT within a few steps)."""
        plans = {self.msisdn(i): lm.Charge(default) for i in range(POPULATION)}
        return plans | {self.msisdn(i): lm.Charge(answer, faults) for i, (answer, faults) in drawn.items()}

    @rule(drawn=charges_strategy, default=st.sampled_from(["success", "failure"]))
    def billing_run(self, drawn, default="success"):
        plans = self.plans(drawn, default)
        before, due_before, ledger_before = self.tables(), self.db_due(), self.ledger()
        attempts_before = len(self.model.attempts)
        declines402 = self.front_declines(plans)
        faults = self.bill_model(plans)
        self.script_gateway(plans, declines402, faults, retry_after=0.05)
        result = self.run_billing()
        errors = any(a.outcome == "error" for a in self.model.attempts[attempts_before:])
        self.check_billing_step(before, due_before, ledger_before, result, expect_success=not errors)

    @precondition(lambda self: self.model.due(self.now))
    @rule(answer=st.sampled_from(["success", "failure"]))
    def billing_run_told_to_come_back_much_later(self, answer):
        """A 429 whose Retry-After exceeds ISKA_MAX_RETRY_AFTER_SECONDS ends that charge's tries
        for this run; it is the last due charge, so the rest of the run is unaffected."""
        due = self.model.due(self.now)
        plans = {s.msisdn: lm.Charge(answer) for s in due}
        plans[due[-1].msisdn] = lm.Charge(answer, ("429",))
        before, due_before, ledger_before = self.tables(), self.db_due(), self.ledger()
        attempts_before = len(self.model.attempts)
        declines402 = self.front_declines(plans)
        faults = self.bill_model(plans, long_retry_after=True)
        self.script_gateway(plans, declines402, faults, retry_after=lm.MAX_RETRY_AFTER_SECONDS + 100)
        result = self.run_billing()
        errors = any(a.outcome == "error" for a in self.model.attempts[attempts_before:])
        self.check_billing_step(before, due_before, ledger_before, result, expect_success=not errors)

    @rule(drawn=charges_strategy)
    def billing_step_crashes_between_charge_and_write_then_is_re_executed(self, drawn):
        plans = {m: lm.Charge(c.answer) for m, c in self.plans(drawn).items()}
        before, due_before, ledger_before = self.tables(), self.db_due(), self.ledger()
        due = bool(self.model.due(self.now))
        declines402 = self.front_declines(plans)
        self.script_gateway(plans, declines402, [], retry_after=0.05)
        asked_before = self.world.simulator.billing_counts().get("requests", 0)
        _crash_trigger(self.engine, install=True)
        try:
            crashed = self.run_billing(billing_job_crashing_once)
        finally:
            _crash_trigger(self.engine, install=False)
        assert crashed.success != due, "the write was refused, so the step should have failed"
        assert self.tables() == before, "a crashed billing step left something behind"
        if self.protocol == "momo":  # the gateway holds what the crashed run asked (a prefix)
            asked = self.world.simulator.billing_counts().get("requests", 0) - asked_before
            assert asked <= len(self.model.due(self.now)), "the crashed run asked more than was due"
            self.model.ask_momo_then_crash(self.now, plans, asked)
            if asked:
                event("a MoMo run crashed between its requests and their record")
        attempts_before = len(self.model.attempts)
        self.bill_model(plans)
        self.script_gateway(plans, declines402, [], retry_after=0.05)
        result = self.run_billing()
        errors = any(a.outcome == "error" for a in self.model.attempts[attempts_before:])
        self.check_billing_step(before, due_before, ledger_before, result, expect_success=not errors)

    @rule(kind=st.sampled_from(["connection_refused", "all_5xx"]))
    def billing_gateway_outage(self, kind):
        before, ledger_before = self.tables(), self.ledger()
        due = len(self.model.due(self.now))
        self.model.bill_outage(self.now)
        self.world.front.decline = set()
        self.world.simulator.configure(faults=["5xx"] * (due * TRIES), script={})
        result = self.run_billing(
            **({"url": refused_url("/billing")} if kind == "connection_refused" else {})
        )
        after = self.tables()
        assert after["subscriptions"] == before["subscriptions"], "a gateway outage changed subscriptions"
        assert self.ledger() == ledger_before, "a gateway outage charged someone"
        assert result.success == (due == 0)

    @rule()
    def billing_gateway_refuses_our_token(self):
        before = self.tables()
        due = bool(self.model.due(self.now))
        self.model.bill_unauthorised(self.now)
        self.world.front.decline = set()
        self.world.simulator.configure(faults=[], script={})
        result = self.run_billing(token="not-the-token")
        assert self.tables()["subscriptions"] == before["subscriptions"]
        assert result.success == (not due)

    # -- SMS -----------------------------------------------------------------------------------

    @precondition(lambda self: self.now.hour < LATEST_SMS_HOUR)
    @rule()
    def the_day_s_sms(self):
        self.sms_day()

    @precondition(lambda self: (self.now + CLAIM_LIFETIME + timedelta(minutes=1)).hour < LATEST_SMS_HOUR)
    @rule()
    def sms_step_crashes_between_send_and_write_then_a_new_run_sends_the_rest(self):
        """The gateway accepted, the record was refused: the run fails with its messages claimed.
        Once the claims have expired, the day's next run sends them again with the same msgid,
        and the gateway sends nobody a second SMS."""
        before = self.table(sms_messages, sms_messages.c.msgid)
        _sms_crash_trigger(self.engine, install=True)
        try:
            crashed = self.sms_day(job=sms_job_crashing_once, check=False)
        finally:
            _sms_crash_trigger(self.engine, install=False)
        changed = [
            r
            for r in self.table(sms_messages, sms_messages.c.msgid)
            if r["status"] != "pending" and r not in before
        ]
        assert not changed, f"a crashed SMS step recorded answers: {changed}"
        if not crashed.success:
            event("an SMS step crashed between send and write")
        self.now += CLAIM_LIFETIME + timedelta(minutes=1)
        self.clock.move_to(self.now)
        self.sms_day()

    def sms_day(self, job=sms_job, check: bool = True) -> dg.ExecuteInProcessResult:
        day = self.now.date()
        self.world.simulator.configure(faults=[], script={})
        resources = {
            "database": IskaDatabase(url=self.world.database_url),
            "sms_gateway": SmsGateway(
                urls=self.world.simulator.sms_url(),
                token=SIMULATOR_TOKEN,
                max_tries=2,
                concurrency=2,
                timeout_seconds=2.0,
                backoff_seconds=0.01,
            ),
            "sms_outbox": SmsOutbox(
                template=DEFAULT_SMS_TEMPLATE,
                forecast_max_age_hours=24 * 365 * 10,
                public_url=refused_url(),
                callback_secret=CALLBACK_SECRET,
            ),
        }
        result = job.execute_in_process(
            partition_key=day.isoformat(),
            resources=resources,
            instance=self.iska.instance,
            raise_on_error=False,
        )
        if not check:
            return result
        assert result.success
        self.model.sms_day(day, self.now)
        for row in self.table(sms_messages, sms_messages.c.msgid):
            if row["kind"] == "forecast":
                self.msgids[(row["msisdn"], _date(row["send_date"]))] = row["msgid"]
        return result

    @rule(pick=st.integers(0, 100), status=st.sampled_from(REPORTS), unknown=st.booleans())
    def delivery_report(self, pick, status, unknown):
        messages = self.model.messages
        if unknown or not messages:
            message, msgid = None, f"unknown-{pick}"
        else:
            message = messages[pick % len(messages)]
            msgid = self.msgids[(message.msisdn, message.day)]
        response = self.world.api.report(msgid, status)
        assert response.status_code == 200, response.text
        self.model.report(message, status, self.now)

    @precondition(lambda self: self.now.hour < LATEST_SMS_HOUR)
    @rule(drawn=charges_strategy, default=st.sampled_from(["success", "failure"]))
    def a_morning_billing_run_then_the_day_s_sms(self, drawn, default):
        """What the schedules do every morning: bill whoever is due, then send the day's SMS."""
        self.billing_run(drawn, default)
        self.sms_day()

    # -- inbound SMS ---------------------------------------------------------------------------

    def text(self, msisdn: str, words: str) -> None:
        """The subscriber texts ISKA: the gateway posts it to the inbound route; the API sends the
        reply through the simulator right after answering, and this waits until it has."""
        self.world.simulator.configure(faults=[], script={})
        self.texts += 1
        response = requests.post(
            f"{self.world.api.base_url}{INBOUND_PATH}",
            params={"token": INBOUND_TOKEN},
            json={"msisdn": msisdn, "text": words, "id": f"lifecycle-{self.texts}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        was_opted_out = self.opted_out(msisdn)
        expected = self.model.sms_text(msisdn, TEXTS[words], self.now)
        if expected == "opted_out" and not was_opted_out:
            self.stopped_at[msisdn] = self.now
        assert response.json()["outcome"] == expected, f"{msisdn} texted {words!r}: {response.json()}"
        for _ in range(400):  # the clock is frozen: count polls instead of reading it
            if all(r["status"] != "pending" for r in self.replies()):
                break
            threading.Event().wait(0.025)  # the reply is sent by the API's background task
        if expected == "opted_out":
            event("a subscriber opted out by SMS")
        if expected == "rejoined":
            event("a subscriber rejoined by SMS")

    def opted_out(self, msisdn: str) -> bool:
        sub = self.model.subscriptions.get(msisdn)
        return sub is not None and sub.status == "cancelled" and sub.cancel_reason == "opt_out"

    def replies(self) -> list[dict]:
        return [r for r in self.table(sms_messages, sms_messages.c.msgid) if r["kind"] == "reply"]

    @rule(who=st.integers(0, POPULATION - 1), words=st.sampled_from(sorted(TEXTS)))
    def a_subscriber_texts(self, who, words):
        self.text(self.msisdn(who), words)

    @precondition(lambda self: any(s.status == "cancelled" for s in self.model.subscriptions.values()))
    @rule(pick=st.integers(0, 100), wait=st.sampled_from(["no time", "an hour", "two days"]))
    def a_cancelled_subscriber_asks_to_rejoin_then_says_yes(self, pick, wait):
        cancelled = sorted(m for m, s in self.model.subscriptions.items() if s.status == "cancelled")
        msisdn = cancelled[pick % len(cancelled)]
        self.text(msisdn, "START")
        if wait == "an hour" and (self.now + timedelta(hours=1)).time() < EVENING:
            self.now += timedelta(hours=1)
        elif wait == "two days":  # more than 24 h: the question has lapsed
            self.now = datetime.combine(self.now.date() + timedelta(days=2), MORNING, tzinfo=UTC)
        self.clock.move_to(self.now)
        self.text(msisdn, "YES")

    # -- the clock -----------------------------------------------------------------------------

    @rule(step=st.sampled_from(["3 hours", "next morning", "45 minutes", "7 minutes", "next week"]))
    def time_passes(self, step):
        later = {
            "7 minutes": timedelta(minutes=7),
            "45 minutes": timedelta(minutes=45),
            "3 hours": timedelta(hours=3),
        }.get(step)
        if (
            later is None
            or (self.now + later).time() >= EVENING
            or (self.now + later).date() != self.now.date()
        ):
            days = 7 if step == "next week" else 1
            self.now = datetime.combine(self.now.date() + timedelta(days=days), MORNING, tzinfo=UTC)
        else:
            self.now += later
        self.clock.move_to(self.now)

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def the_database_agrees_with_the_model(self):
        rows = {r["msisdn"]: r for r in self.table(subscriptions, subscriptions.c.id)}
        assert sorted(rows) == sorted(self.model.subscriptions), "different subscribers"
        for msisdn, sub in self.model.subscriptions.items():
            row = rows[msisdn]
            self.ids[msisdn] = row["id"]
            actual = {
                "plan": row["plan"],
                "status": row["status"],
                "cancel_reason": row["cancel_reason"],
                "lat": row["lat"],
                "lon": row["lon"],
                "lid": row["lid"],
                "sub_date": _utc(row["sub_date"]),
                "unsub_date": _utc(row["unsub_date"]),
                "next_billing_date": _date(row["next_billing_date"]),
                "last_billing_date": _date(row["last_billing_date"]),
                "failed_billing_count": row["failed_billing_count"],
                "last_event_at": _utc(row["last_event_at"]),
                "last_successful_sms_date": _date(row["last_successful_sms_date"]),
            }
            expected = {name: getattr(sub, name) for name in actual}
            differ = {n: (actual[n], expected[n]) for n in actual if actual[n] != expected[n]}
            assert not differ, f"{msisdn}: (database, model) differ: {differ}"

    @invariant()
    def billing_attempts_agree_and_each_key_names_one_intent(self):
        rows = self.table(billing_attempts, billing_attempts.c.id)
        actual = [(r["msisdn"], _date(r["period_start"]), r["outcome"]) for r in rows]
        expected = [(a.intent.msisdn, a.intent.period_start, a.outcome) for a in self.model.attempts]
        assert actual == expected, f"billing attempts (database) {actual}\n  model {expected}"
        keys: dict[str, lm.Intent] = {}
        intents: dict[lm.Intent, str] = {}
        for row, attempt in zip(rows, self.model.attempts, strict=True):
            key = row["idempotency_key"]
            assert keys.setdefault(key, attempt.intent) == attempt.intent, (
                f"Idempotency-Key {key} reused for {attempt.intent}, first used for {keys[key]}"
            )
            assert intents.setdefault(attempt.intent, key) == key, (
                f"{attempt.intent} sent with keys {intents[attempt.intent]} and {key}"
            )

    @invariant()
    def replies_are_sent_once_each_and_never_billed(self):
        actual = sorted((r["msisdn"], r["status"]) for r in self.replies())
        expected = sorted((r.msisdn, r.status) for r in self.model.replies)
        assert actual == expected, f"replies (database) {actual}\n  model {expected}"
        # never billed: billing_attempts match the model's charges exactly, and it bills no reply

    @invariant()
    def the_consent_log_holds_every_change_and_its_chain_verifies(self):
        rows = self.table(consent_events, consent_events.c.id)
        actual = Counter((r["msisdn"], r["event"], r["source"]) for r in rows)
        assert actual == Counter(self.model.consent), (
            f"consent log (database) {sorted(actual.elements())}\n  model {sorted(self.model.consent)}"
        )
        with self.engine.connect() as connection:
            found = verify(connection)
        assert found.ok, f"the consent chain breaks at row {found.broken_id}: {found.problem}"

    @invariant()
    def an_opted_out_subscriber_is_never_charged_or_sent_a_forecast_after_the_stop(self):
        """From the moment of the STOP, as the test sent it: not `unsub_date`, which stays the
        earlier cancellation's `ts` when a cancelled subscriber opts out (a charge made before
        the cancellation file was applied can be later than that ts)."""
        attempts = self.table(billing_attempts, billing_attempts.c.id)
        forecasts_ = [r for r in self.table(sms_messages, sms_messages.c.msgid) if r["kind"] == "forecast"]
        for msisdn, stopped in list(self.stopped_at.items()):
            if not self.opted_out(msisdn):  # rejoined, or added again by a file
                del self.stopped_at[msisdn]
                continue
            late = [a for a in attempts if a["msisdn"] == msisdn and _utc(a["attempted_at"]) > stopped]
            assert not late, f"{msisdn} charged after opting out: {late}"
            sent = [
                m
                for m in forecasts_
                if m["msisdn"] == msisdn and m["accepted_at"] is not None and _utc(m["accepted_at"]) > stopped
            ]
            assert not sent, f"{msisdn} sent a forecast after opting out: {sent}"

    @invariant()
    def the_gateway_ledger_shows_one_charge_per_subscription_period(self):
        ledger = self.ledger()
        assert ledger["charged"] == self.model.charged, (
            f"charges at the gateway {ledger['charged']}, one per charged period: {self.model.charged}"
        )
        assert ledger["declined"] == self.model.declined
        assert ledger["sms"] == self.model.sms_sent(), (
            f"SMS accepted by the gateway {ledger['sms']}, expected {self.model.sms_sent()}"
        )

    @invariant()
    def cancelled_for_billing_only_after_the_limit_of_declines_in_the_period(self):
        attempts = self.table(billing_attempts, billing_attempts.c.id)
        for sub in self.table(subscriptions, subscriptions.c.id):
            if sub["cancel_reason"] != "billing":
                continue
            began = self.model.subscriptions[sub["msisdn"]].period_began_at
            mine = [
                a for a in attempts if a["subscription_id"] == sub["id"] and _utc(a["attempted_at"]) >= began
            ]
            tail = list(itertools.takewhile(lambda a: a["outcome"] != "success", reversed(mine)))
            declines = sum(a["outcome"] == "declined" for a in tail)
            assert declines >= lm.MAX_BILLING_TRY_LIMIT, (
                f"{sub['msisdn']} cancelled for billing after {declines} declines in its period"
            )

    @invariant()
    def at_most_one_forecast_sms_per_subscriber_per_day(self):
        rows = [r for r in self.table(sms_messages, sms_messages.c.msgid) if r["kind"] == "forecast"]
        per_day = Counter((r["msisdn"], _date(r["send_date"])) for r in rows)
        assert max(per_day.values(), default=0) <= 1, per_day
        actual = sorted(
            (r["msisdn"], _date(r["send_date"]), r["status"], r["delivered_at"] is not None) for r in rows
        )
        expected = sorted((m.msisdn, m.day, m.status, m.delivered) for m in self.model.messages)
        assert actual == expected, f"messages (database) {actual}\n  model {expected}"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_future_ts_and_an_exact_repeat_count_toward_the_fraction_for_iska_and_the_model(
    database_url, tmp_path, instance
):
    """SPEC §3: both are parse-time refusals. Six additions rows, one a ts two hours ahead and
    one an exact repeat, are 2 of 6 refused (> 0.2): the file is refused whole."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        lm.Row(f"2332000000{n}", _iso(now - timedelta(minutes=5 * n)), "11", 5.6, -0.2) for n in range(1, 5)
    ]
    rows.insert(2, lm.Row("23320000005", _iso(now + timedelta(hours=2)), "11", 5.6, -0.2))
    rows.append(rows[0])
    expected = lm.Model().apply_file("additions", rows, now)
    assert expected.refused_whole
    assert sorted(next(iter(r)) for r in expected.row_reasons if r) == ["duplicate_in_file", "future_ts"]

    iska = Iska(database_url=database_url, data_dir=tmp_path / "data", instance=instance)
    result = iska.ingest(lm.csv_text("additions", rows), name="six_additions.csv", folder="additions")

    assert not result.success
    error = iska.scalar("SELECT error FROM ingested_files WHERE outcome = 'rejected'")
    assert "2 of 6 rows refused" in error and "1 future_ts" in error and "1 duplicate_in_file" in error
    assert iska.scalar("SELECT count(*) FROM subscriptions") == 0


@pytest.fixture
def lifecycle_world(database_url, tmp_path):
    world = World()
    world.database_url, world.tmp = database_url, tmp_path
    engine_for(database_url)
    simulator_app = create_app(Knobs(tokens=[SIMULATOR_TOKEN]))
    with (
        serve_on_loopback(lambda _url: simulator_app, "simulator") as simulator_url,
        api_on_loopback(
            api_settings(
                database_url,
                tmp_path / "api-data",
                MAX_BILLING_TRY_LIMIT=str(lm.MAX_BILLING_TRY_LIMIT),  # the MoMo callback's limit
                ISKA_INBOUND_TOKEN=INBOUND_TOKEN,
                SMS_URLS=f"{simulator_url}/sms/replies",
                SMS_TOKEN=SIMULATOR_TOKEN,
            )
        ) as api,
    ):
        simulator = RunningSimulator(simulator_url)
        world.simulator_app = simulator_app
        front = BillingFront(simulator.billing_url)
        thread = threading.Thread(target=front.serve_forever, daemon=True)
        thread.start()
        world.simulator, world.api, world.front = simulator, api, front
        try:
            yield world
        finally:
            front.shutdown()
            front.server_close()


def machine_on(world: World) -> type[Lifecycle]:
    return type("LifecycleOn" + world.database_url.split(":")[0].title(), (Lifecycle,), {"world": world})


def replay(world: World, steps: Callable[[Lifecycle], None]) -> None:
    """A soak's find as its steps, on a fresh machine, inside hypothesis (where rules may
    record events)."""

    @settings(max_examples=1, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.none())
    def run(_):
        state = machine_on(world)()
        try:
            steps(state)
        finally:
            state.teardown()

    run()


def test_a_subscriber_charged_then_cancelled_by_an_older_ts_then_stopping_was_not_charged_after_the_stop(
    lifecycle_world,
):
    """The charge is later than the cancellation's ts (the file came after the charge), so
    `unsub_date` is earlier than a charge made before the STOP."""

    def steps(state: Lifecycle) -> None:
        added = [(2, "plain", 4320, "space", "11", 0, None)]  # joined three days ago
        state.drop_a_subscription_file(kind="additions", drawn=added, at_root=False, repeat_first=False)
        state.billing_run(drawn={}, default="success")
        cancelled = [(2, "plain", 90, "space", "11", 0, None)]  # a cancellation of 90 minutes ago
        state.drop_a_subscription_file(
            kind="cancellations", drawn=cancelled, at_root=False, repeat_first=False
        )
        state.a_subscriber_texts(who=2, words="STOP")
        state.the_database_agrees_with_the_model()
        state.an_opted_out_subscriber_is_never_charged_or_sent_a_forecast_after_the_stop()

    replay(lifecycle_world, steps)


def test_an_api_move_both_stale_and_near_no_grid_point_may_answer_either_refusal(lifecycle_world):
    """A file refused whole for a row two hours ahead (1 of 4 rows) is applied when it comes
    again under another name 90 minutes later: last_event_at is then ahead of the clock, and a
    move to a place near no grid point is both stale and unusable (ISKA answers 409
    stale_event)."""

    def steps(state: Lifecycle) -> None:
        added = [(5, "plain", 4320, "space", "11", 0, None)]
        state.drop_a_subscription_file(kind="additions", drawn=added, at_root=False, repeat_first=False)
        ahead = [(5, "plain", 0, "space", "11", 1, "future_ts")]
        others = [(n, "plain", 5, "space", "11", 0, None) for n in range(3)]  # unknown_msisdn
        state.drop_a_subscription_file(
            kind="updates", drawn=ahead + others, at_root=False, repeat_first=False
        )
        state.time_passes(step="45 minutes")
        state.time_passes(step="45 minutes")
        state.drop_an_earlier_file_again(pick=1, same_name=False)
        state.the_database_agrees_with_the_model()
        state.api_moves_a_subscriber(pick=0, place=3)

    replay(lifecycle_world, steps)


def test_the_subscriber_lifecycle_agrees_with_the_reference_model(lifecycle_world):
    run_state_machine_as_test(
        machine_on(lifecycle_world),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )
