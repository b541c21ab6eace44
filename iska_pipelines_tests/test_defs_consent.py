"""What an SMS opt-out and rejoin mean for the jobs (SPEC §6, §7, §13): billing_job never charges
an opted-out subscriber, sms_job sends them nothing (a forecast planned before the STOP ends
`skipped_opted_out`), a rejoin is charged with a new Idempotency-Key, and replies go out through
`sms_replies_job`, never through the daily job and never billed. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.replies import sms_replies, sms_replies_job
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.consent.chain import verify
from iska_pipelines.lib.consent.inbound import ConsentRules, Handled, Inbound, receive
from iska_pipelines.lib.consent.keywords import keywords_of
from iska_pipelines.lib.db.schema import billing_attempts, sms_messages
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.settings import DEFAULTS
from iska_pipelines.lib.sms.delivery import apply_report
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.vocabulary import MessageStatus
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.scripted_gateway import Gateway, serving
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.sms_runs import refused_url, run_sms_day
from iska_pipelines_tests.sms_world import TIMEZONE, add_forecast, add_subscriber, messages, today
from iska_pipelines_tests.test_defs_billing import Billing, metadata

CATALOG = DEFAULTS.catalog()
RULES = ConsentRules(TIMEZONE, {"daily": "GHS 0.20 a day", "weekly": "GHS 1 a week"})


def text(engine: sa.Engine, msisdn: str, words: str) -> Handled:
    """A subscriber's SMS as the inbound route applies it (without sending the reply)."""
    message = Inbound(str(uuid.uuid4()), msisdn, words, utcnow())
    with engine.begin() as connection:
        return receive(connection, message, keywords_of(CATALOG), CATALOG, RULES)


def keys(engine: sa.Engine, msisdn: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(billing_attempts.c.idempotency_key)
                .where(billing_attempts.c.msisdn == msisdn)
                .order_by(billing_attempts.c.id)
            ).scalars()
        )


def reply_resources(database_url: str, simulator) -> dict:
    return {
        "database": IskaDatabase(url=database_url),
        "sms_gateway": SmsGateway(urls=simulator.sms_url("a"), token=SIMULATOR_TOKEN, backoff_seconds=0.01),
        "sms_outbox": SmsOutbox(public_url=refused_url(), callback_secret="test-callback-secret"),
    }


def test_an_opted_out_subscriber_is_not_charged_by_the_billing_job(database_url, engine, simulator):
    add_subscriber(engine, "233200000001", 1, day=today(), paid=False)  # due today
    add_subscriber(engine, "233200000002", 1, day=today(), paid=False)
    text(engine, "233200000001", "STOP")

    run = Billing(database_url, simulator).run()

    assert run.success and metadata(run)["due"] == 1
    assert simulator.charges() == {"233200000002": 1}
    assert keys(engine, "233200000001") == []


def test_a_forecast_planned_before_the_stop_is_skipped_and_the_daily_job_sends_nothing_to_them(
    database_url, engine, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1.5", "2.5")
    add_subscriber(engine, "233200000001", 1, day=day)
    add_subscriber(engine, "233200000002", 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, CATALOG, 30.0)
    stop = text(engine, "233200000001", "STOP")

    run = run_sms_day(database_url, instance, day, [simulator.sms_url("a")])

    assert run.success
    forecasts = {m.msisdn: m.status for m in messages(engine, day) if m.kind == "forecast"}
    assert forecasts == {"233200000001": "skipped_opted_out", "233200000002": "accepted"}
    (reply,) = [m for m in messages(engine, day) if m.kind == "reply"]
    assert (reply.msgid, reply.status) == (stop.reply_msgid, "pending")  # not the daily job's to send
    assert simulator.stats()["sms"]["counts"].get("accepted", 0) == 1


class StopWhileSending(Gateway):
    """A gateway that, while it holds the SMS request for `msisdn`, lets the subscriber text
    STOP (and, with `report_first`, delivers the message before answering the send)."""

    def __init__(self, engine: sa.Engine, msisdn: str, report_first: bool = False) -> None:
        super().__init__()
        self.engine, self.msisdn, self.report_first = engine, msisdn, report_first

    def handle(self, body: dict, token: str):
        if body["msisdn"] == self.msisdn:
            text(self.engine, self.msisdn, "STOP")
            if self.report_first:
                deliver(self.engine, body["msgid"])
        return super().handle(body, token)


def deliver(engine: sa.Engine, msgid: str) -> None:
    """The gateway's delivery report, as the callback route applies it."""
    with engine.begin() as connection:
        apply_report(connection, msgid, MessageStatus.DELIVERED)


def stop_while_sending(database_url, engine, instance, report_first: bool) -> sa.Row:
    day = today()
    add_forecast(engine, 1, "1.5", "2.5")
    add_subscriber(engine, "233200000001", 1, day=day)
    with serving(StopWhileSending(engine, "233200000001", report_first)) as gateway:
        assert run_sms_day(database_url, instance, day, [gateway.url]).success
    assert sum(gateway.tries.values()) == 1  # sent once, accepted
    [forecast] = [m for m in messages(engine, day) if m.kind == "forecast"]
    return forecast


def test_a_stop_while_its_forecast_is_being_sent_leaves_it_accepted_and_its_report_applies(
    database_url, engine, instance
):
    forecast = stop_while_sending(database_url, engine, instance, report_first=False)
    assert (forecast.status, forecast.accepted_at is not None) == ("accepted", True)  # it was sent

    deliver(engine, forecast.msgid)

    [forecast] = [m for m in messages(engine) if m.kind == "forecast"]
    assert (forecast.status, forecast.delivered_at is not None) == ("delivered", True)


def test_a_report_that_overtakes_the_send_answer_of_a_forecast_sent_during_a_stop_applies(
    database_url, engine, instance
):
    forecast = stop_while_sending(database_url, engine, instance, report_first=True)

    assert forecast.status == "delivered"
    assert forecast.accepted_at is not None and forecast.delivered_at is not None


def test_a_stopped_subscriber_gets_no_forecast_on_the_following_days(
    database_url, engine, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1.5", "2.5")
    add_subscriber(engine, "233200000001", 1, day=day)
    text(engine, "233200000001", "STOP")

    assert run_sms_day(database_url, instance, day, [simulator.sms_url("a")]).success

    assert [m.kind for m in messages(engine)] == ["reply"]


def test_the_replies_job_sends_pending_replies_once_and_they_are_never_billed(
    database_url, engine, simulator
):
    add_subscriber(engine, "233200000001", 1, day=today())
    stop = text(engine, "233200000001", "STOP")
    helped = text(engine, "233209999999", "help")  # not a subscriber: HELP still answers

    first = sms_replies_job.execute_in_process(resources=reply_resources(database_url, simulator))
    again = sms_replies_job.execute_in_process(resources=reply_resources(database_url, simulator))

    assert first.output_for_node("send_pending_replies") == 2
    assert again.output_for_node("send_pending_replies") == 0
    with engine.connect() as connection:
        statuses = dict(
            connection.execute(sa.select(sms_messages.c.msgid, sms_messages.c.status)).tuples().all()
        )
        attempts = connection.execute(sa.select(sa.func.count()).select_from(billing_attempts)).scalar_one()
    assert statuses == {stop.reply_msgid: "accepted", helped.reply_msgid: "accepted"}
    assert attempts == 0 and simulator.charges() == {}


def test_the_replies_sensor_asks_for_a_run_only_while_an_old_enough_reply_is_pending(database_url, engine):
    add_subscriber(engine, "233200000001", 1, day=today())
    resources = {"database": IskaDatabase(url=database_url)}
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        assert isinstance(sms_replies(context), dg.SkipReason)
        stop = text(engine, "233200000001", "STOP")
        assert isinstance(sms_replies(context), dg.SkipReason)  # the API is sending it right now
        with engine.begin() as connection:
            connection.execute(
                sms_messages.update()
                .where(sms_messages.c.msgid == stop.reply_msgid)
                .values(created_at=utcnow().replace(year=2020))
            )
        assert isinstance(sms_replies(context), dg.RunRequest)


def test_a_rejoin_by_sms_is_charged_again_with_a_new_idempotency_key(database_url, engine, simulator):
    msisdn = "233200000001"
    add_subscriber(engine, msisdn, 1, day=today(), paid=False)
    billing = Billing(database_url, simulator)
    assert billing.run().success and simulator.charges() == {msisdn: 1}

    text(engine, msisdn, "STOP")
    assert metadata(billing.run())["due"] == 0
    text(engine, msisdn, "START")
    assert text(engine, msisdn, "YES").outcome == "rejoined"
    rejoined = billing.run()

    assert rejoined.success and metadata(rejoined)["charged"] == 1
    assert simulator.charges() == {msisdn: 2}
    assert simulator.billing_counts().get("replays", 0) == 0
    first, second = keys(engine, msisdn)
    assert first != second
    with engine.connect() as connection:
        assert verify(connection).ok


def test_a_farmer_who_texts_stop_through_the_simulator_gets_only_the_confirmation_until_rejoining(
    phone, database_url, engine, instance, simulator
):
    """The issue's whole story over loopback: charged and sent the forecast; STOP through the
    simulator; then neither charged nor sent anything but the confirmation, even on the next
    runs; START and YES bring them back due now, charged under a new Idempotency-Key."""
    msisdn, day = "233200000001", today()
    add_forecast(engine, 1, "1.5", "2.5")
    add_subscriber(engine, msisdn, 1, day=day, paid=False)
    billing = Billing(database_url, simulator)
    assert billing.run().success
    assert run_sms_day(database_url, instance, day, [simulator.sms_url("a")]).success
    sent = lambda: simulator.stats()["sms"]["messages"].get(msisdn, 0)  # noqa: E731
    assert (simulator.charges(), sent()) == ({msisdn: 1}, 1)

    assert phone.text(msisdn, "STOP")["outcome"] == "opted_out"
    wait_for(lambda: sent() == 2)  # the confirmation
    with engine.begin() as connection:  # as if the paid day were over
        connection.execute(
            sa.text("UPDATE subscriptions SET next_billing_date = :day WHERE msisdn = :msisdn"),
            {"day": day, "msisdn": msisdn},
        )
    assert metadata(billing.run())["due"] == 0
    assert run_sms_day(database_url, instance, day, [simulator.sms_url("a")]).success  # the day again
    assert (simulator.charges(), sent()) == ({msisdn: 1}, 2)

    assert phone.text(msisdn, "START")["outcome"] == "rejoin_asked"
    assert phone.text(msisdn, "YES")["outcome"] == "rejoined"
    wait_for(lambda: sent() == 4)
    assert phone.subscription(msisdn).next_billing_date == day  # due now
    assert billing.run().success
    assert simulator.charges() == {msisdn: 2} and simulator.billing_counts().get("replays", 0) == 0
    first, second = keys(engine, msisdn)
    assert first != second
    with engine.connect() as connection:
        assert verify(connection).ok
