"""Claims on the outbox (SPEC §7) on both databases: a message is claimed before it is sent,
two senders never hold the same msgid, and a dead sender's claim expires and is taken again."""

from __future__ import annotations

import threading
from datetime import timedelta

from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.claims import claim, cutoff, skip_too_late
from iska_pipelines.lib.sms.delivery import record_outcomes
from iska_pipelines.lib.sms.gateway import SmsOutcome
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, messages, today

TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"


def planned_day(engine, subscribers: int):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(subscribers):
        add_subscriber(engine, f"2330100{n:05d}", 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, Settings.from_env({"ISKA_SMS_TEMPLATE": TEMPLATE}).catalog(), 30.0)
    return day


def take(engine, day, owner, limit, seconds=60.0, now=None):
    with engine.begin() as connection:
        return [row.msgid for row in claim(connection, day, owner, limit, seconds, now=now)]


def test_two_senders_claiming_at_once_never_hold_the_same_message(engine):
    day = planned_day(engine, 60)
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def sender(name: str) -> None:
        start.wait()
        mine: list[str] = []
        while chunk := take(engine, day, name, 7):
            mine.extend(chunk)
        taken[name] = mine

    threads = [threading.Thread(target=sender, args=(f"sender-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [msgid for mine in taken.values() for msgid in mine]
    assert len(every) == len(set(every)) == 60


def test_a_live_claim_is_not_taken_again(engine):
    day = planned_day(engine, 3)
    assert len(take(engine, day, "first", 10)) == 3
    assert take(engine, day, "second", 10) == []


def test_an_expired_claim_is_taken_by_the_next_sender(engine):
    day = planned_day(engine, 3)
    dead = take(engine, day, "dead", 10, seconds=30)
    assert sorted(take(engine, day, "next", 10, now=utcnow() + timedelta(seconds=31))) == sorted(dead)


def test_past_the_cutoff_pending_messages_end_skipped_too_late_but_live_claims_are_left(engine):
    day = planned_day(engine, 4)
    [held] = take(engine, day, "sending", 1)
    with engine.begin() as connection:
        assert skip_too_late(connection, day) == 3
    statuses = {row.msgid: row.status for row in messages(engine, day)}
    assert statuses.pop(held) == "pending"
    assert set(statuses.values()) == {"skipped_too_late"}


def test_a_message_skipped_too_late_while_a_slow_sender_still_had_it_ends_accepted_when_it_was_sent(engine):
    """The slow sender outlived its claim; the skip could not know the gateway took it."""
    day = planned_day(engine, 2)
    sent, unsent = take(engine, day, "slow", 2, seconds=30)
    with engine.begin() as connection:
        assert skip_too_late(connection, day, now=utcnow() + timedelta(seconds=31)) == 2
        record_outcomes(
            connection,
            [SmsOutcome(sent, True, 1, "http://gw/sms/a"), SmsOutcome(unsent, False, 2, None, "HTTP 500")],
        )
    statuses = {row.msgid: (row.status, row.accepted_at is not None) for row in messages(engine, day)}
    assert statuses == {sent: ("accepted", True), unsent: ("skipped_too_late", False)}


def test_the_cutoff_is_the_latest_hour_on_the_day_in_the_local_timezone():
    day = today()
    assert cutoff(day, 10, "Africa/Accra").isoformat() == f"{day.isoformat()}T10:00:00+00:00"
    assert cutoff(day, 10, "Africa/Nairobi").utcoffset() == timedelta(hours=3)
