"""The subscriber lifecycle billed through MTN MoMo (SPEC §18), as a model-based test: the
machine of test_lifecycle_state_machine.py (its rules, its world, its invariants) with
BILLING_PROTOCOL=momo, plus MoMo's own steps and invariants. Charges are asked under their
reference and answered 202; the simulator's payers answer at once (approve, decline, or never) and
their callbacks wait until a step lets them arrive, once, twice or not at all; the poll sensor
ticks when a step says so. In a file of its own so that `make test` runs it beside the iska
machine rather than after it.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule, run_state_machine_as_test

from iska_pipelines.defs.billing.poll import pending_charges_poll
from iska_pipelines.lib.billing.references import reference_for
from iska_pipelines.lib.db.schema import billing_attempts, subscriptions
from iska_pipelines_tests import lifecycle_model as lm
from iska_pipelines_tests.test_lifecycle_state_machine import (
    EXAMPLES,
    MOMO_HANG_SECONDS,
    POPULATION,
    STEPS,
    Lifecycle,
    _utc,
    lifecycle_world,  # noqa: F401 - the fixture, shared with the iska machine
)


class MomoLifecycle(Lifecycle):
    """The same lifecycle billed through MoMo (SPEC §18): every charge is asked under its
    reference and stays pending until its callback arrives (once, twice, or never) or the poll
    looks it up; a payer who never answers ends `expired` after PENDING_HOURS. Besides the
    model's agreement after every step: every request the gateway took has its attempt row and
    was asked once, every billing cancellation is a decline's, and at the end of every example
    the poll, PENDING_HOURS later, leaves no charge pending."""

    protocol = "momo"

    def __init__(self) -> None:
        super().__init__()
        self.world.simulator.configure(hang_seconds=MOMO_HANG_SECONDS)

    @initialize(
        joining=st.lists(
            st.tuples(st.integers(0, POPULATION - 1), st.sampled_from(["daily", "weekly"])),
            min_size=1,
            max_size=3,
            unique_by=lambda joined: joined[0],
        )
    )
    def a_few_subscribers_join_by_api(self, joining):
        """Charges to ask from the first billing run on: what this machine is about."""
        for who, plan in joining:
            self.api_creates_a_subscription(who, plan, place=0)

    @precondition(lambda self: self.model.held)
    @rule(fates=st.lists(st.sampled_from(["once", "once", "lost", "twice"]), max_size=POPULATION * 2))
    def the_held_callbacks_arrive(self, fates):
        """MoMo calls back once per settled charge; here some are lost and some come twice."""
        before = self.tables()
        sent = self.world.simulator.send_held_callbacks(*fates)
        held = list(self.model.held)
        did = self.model.callbacks_arrive(fates, self.now)
        assert [s["reference"] for s in sent] == [self.reference_of(i) for i in held], (
            "callbacks out of order"
        )
        assert all(code == 200 for s in sent for code in s["iska_status"]), sent
        if did["lost"]:
            event("a MoMo callback was lost")
        if did["repeated"]:
            event("a MoMo callback came twice")
        if did["late"]:
            event("a MoMo callback came after its charge was settled")
        if not did["settled"]:
            assert self.tables() == before, "callbacks that settled nothing changed something"
        self.note_cancellations(before)

    @precondition(lambda self: any(a.outcome == "pending" for a in self.model.attempts))
    @rule()
    def the_poll_ticks(self):
        before = self.tables()
        said = self.poll()
        did = self.model.poll(self.now)
        assert f"{did['still_pending']} still pending" in said, (said, did)
        if did["settled"]:
            event("the poll settled a charge whose callback had not come")
        if did["expired"]:
            event("a charge nobody answered expired")
        self.note_cancellations(before)

    def note_cancellations(self, before: dict) -> None:
        was = {r["msisdn"]: r["status"] for r in before["subscriptions"]}
        if any(
            r["cancel_reason"] == "billing" and was.get(r["msisdn"]) == "active"
            for r in self.table(subscriptions, subscriptions.c.id)
        ):
            event("a settled decline cancelled a subscriber at the limit")

    def poll(self) -> str:
        with dg.build_sensor_context(
            instance=self.iska.instance, resources=self.billing_resources()
        ) as context:
            return pending_charges_poll(context).skip_message

    def reference_of(self, intent: lm.Intent) -> str:
        """The reference ISKA asked `intent` under: from its attempt rows (every request has one)."""
        keys = {
            r["idempotency_key"]
            for r, a in zip(
                self.table(billing_attempts, billing_attempts.c.id), self.model.attempts, strict=True
            )
            if a.intent == intent
        }
        assert len(keys) <= 1, f"{intent} asked under several keys {keys}"
        return reference_for(next(iter(keys))) if keys else f"unrecorded {intent}"

    @invariant()
    def every_request_the_gateway_took_has_its_attempt_and_was_asked_once(self):
        requests_ = self.world.simulator.momo_requests()
        attempts = self.table(billing_attempts, billing_attempts.c.id)
        recorded = {a["reference"] for a in attempts}
        assert set(requests_) <= recorded, f"requests without an attempt: {sorted(set(requests_) - recorded)}"
        assert len(requests_) == len(self.model.momo), "the gateway holds a request per intent asked"
        for row in attempts:
            assert row["reference"] == reference_for(row["idempotency_key"]), row
        counts = self.world.simulator.billing_counts()
        assert counts.get("requested", 0) == len(requests_), "a request was created twice"

    @invariant()
    def every_billing_cancellation_is_a_decline_s(self):
        """Pending, expired and lost-callback charges never cancel: a billing cancellation
        happens at the moment a decline of the subscriber's became known."""
        attempts = self.table(billing_attempts, billing_attempts.c.id)
        for sub in self.table(subscriptions, subscriptions.c.id):
            if sub["cancel_reason"] != "billing":
                continue
            known = {
                _utc(a["settled_at"] or a["attempted_at"])
                for a in attempts
                if a["subscription_id"] == sub["id"] and a["outcome"] == "declined"
            }
            assert _utc(sub["unsub_date"]) in known, (
                f"{sub['msisdn']} cancelled for billing without a decline then"
            )

    def teardown(self) -> None:
        """A day later, the poll leaves no charge pending: each is settled or expired."""
        try:
            self.now += timedelta(hours=lm.PENDING_HOURS + 1)
            self.clock.move_to(self.now)
            self.poll()
            self.model.poll(self.now)
            pending = [
                a for a in self.table(billing_attempts, billing_attempts.c.id) if a["outcome"] == "pending"
            ]
            assert not pending, f"still pending after the poll, {lm.PENDING_HOURS} h later: {pending}"
            self.billing_attempts_agree_and_each_key_names_one_intent()
            self.the_database_agrees_with_the_model()
        finally:
            super().teardown()


def test_momo_billing_through_the_subscriber_lifecycle_agrees_with_the_reference_model(lifecycle_world):  # noqa: F811
    machine = type(
        "MomoLifecycleOn" + lifecycle_world.database_url.split(":")[0].title(),
        (MomoLifecycle,),
        {"world": lifecycle_world},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )
