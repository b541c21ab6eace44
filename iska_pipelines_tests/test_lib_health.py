"""The day's figures of SPEC §16, counted from ISKA's tables on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health import billing, deliveries, intake
from iska_pipelines.lib.health.checks import (
    HealthRules,
    delivery_rate,
    grid_fresh,
    next_sms_time,
    no_refused_files,
    no_transport_errors,
)
from iska_pipelines.lib.health.grid import grid_age
from iska_pipelines.lib.health.status import snapshot
from iska_pipelines_tests.health_world import REFUSAL, age_grid, seed_day
from iska_pipelines_tests.sms_world import TIMEZONE

RULES = HealthRules(timezone=TIMEZONE)


def test_sms_figures_count_every_message_of_the_day_by_outcome(engine):
    seeded = seed_day(engine)
    with engine.connect() as connection:
        figures = deliveries.day_figures(connection, seeded.day)
        skips = deliveries.skips_now(connection, seeded.day, utcnow() - timedelta(hours=30))
    assert figures["planned"] == 20 and figures["sent"] == 19 and figures["pending"] == 1
    assert (
        figures["delivered"],
        figures["failed"],
        figures["undelivered"],
        figures["rejected"],
        figures["accepted"],
    ) == (13, 2, 1, 1, 2)
    assert figures["answered"] == 17
    assert figures["delivery_rate"] == round(13 / 19, 4)
    assert figures["answered_delivery_rate"] == round(13 / 17, 4)
    assert figures["segments"] == 19
    assert skips["skipped_already_sent"] == 20 and skips["skipped_unpaid"] == 1


def test_a_day_without_messages_counts_zero_and_no_rate(engine):
    with engine.connect() as connection:
        figures = deliveries.day_figures(connection, utcnow().date() - timedelta(days=3))
    assert figures["planned"] == 0 and figures["delivery_rate"] == 0.0


def test_a_long_text_counts_its_segments():
    assert deliveries.segments("x" * 160) == 1
    assert deliveries.segments("x" * 161) == 2
    assert deliveries.segments("ɛ" * 70) == 1 and deliveries.segments("ɛ" * 71) == 2


def test_billing_figures_count_the_days_charges_and_departures(engine):
    seeded = seed_day(engine)
    with engine.connect() as connection:
        still_due = billing.due_untried(connection, seeded.day, TIMEZONE)
        figures = billing.day_figures(connection, seeded.day, TIMEZONE, still_due)
    assert figures["charged"] == 4 and figures["declined"] == 2 and figures["transport_errors"] == 1
    assert figures["revenue_daily_plans"] == 3 and figures["revenue_weekly_plans"] == 1
    assert figures["cancelled_for_billing"] == 1 and figures["opt_outs"] == 1
    assert still_due == 1  # the unpaid subscriber nobody tried yet
    assert figures["due"] == 7 + 1


def test_file_figures_count_outcomes_and_refused_rows_by_reason(engine):
    seeded = seed_day(engine)
    with engine.connect() as connection:
        figures = intake.day_figures(connection, seeded.day, TIMEZONE)
        refused = intake.recent_files(connection, refused_only=True)
    assert (
        figures["files_applied"],
        figures["files_refused"],
        figures["duplicates"],
        figures["unknown_names"],
    ) == (2, 1, 1, 1)
    assert figures["rows_applied"] == 13 and figures["rows_refused"] == 2
    assert figures["refused_invalid_msisdn"] == 1 and figures["refused_invalid_ts"] == 1
    assert {line.name for line in refused} == {"forecasts_bad.csv", "notes.csv"}
    assert f"refused: {REFUSAL}" in [line.detail for line in refused]


@pytest.mark.parametrize("age, passed", [(2.0, True), (60.0, False)])
def test_the_grid_check_judges_the_grids_age_at_the_sms_hour(engine, age, passed):
    seed_day(engine)
    age_grid(engine, age)
    with engine.connect() as connection:
        verdict = grid_fresh(grid_age(connection), next_sms_time(utcnow(), RULES), RULES)
    assert verdict.passed is passed
    assert ("drop a newer forecasts file" in verdict.description) is not passed


def test_the_delivery_check_fails_below_the_minimum_of_answered_messages(engine):
    seeded = seed_day(engine)
    with engine.connect() as connection:
        figures = deliveries.day_figures(connection, seeded.day)
    assert not delivery_rate(figures, RULES).passed  # 13 of 17 < 90%
    assert delivery_rate(figures, HealthRules(min_delivery_rate=0.7)).passed
    assert delivery_rate({**figures, "answered": 0}, RULES).passed  # nothing answered yet


def test_the_billing_and_file_checks_fail_on_errors_and_refusals(engine):
    seeded = seed_day(engine)
    with engine.connect() as connection:
        charges = billing.day_figures(connection, seeded.day, TIMEZONE)
        files = intake.day_figures(connection, seeded.day, TIMEZONE)
    assert not no_transport_errors(charges).passed
    assert not no_refused_files(files).passed


def test_the_snapshot_has_today_the_grid_the_files_and_the_verdicts(engine):
    seed_day(engine)
    status = snapshot(engine, utcnow(), RULES)
    assert status["sms"]["delivered"] == 13 and status["billing"]["charged"] == 4
    assert status["grid"]["points"] == 1 and 1.9 < status["grid"]["age_hours"] < 2.5
    assert len(status["last_files"]) == 5
    assert {c["name"]: c["passed"] for c in status["checks"]} == {
        "delivery_rate_at_least_minimum": False,
        "grid_fresh_at_sms_hour": True,
        "no_billing_transport_errors": False,
        "no_refused_files": False,
    }


def test_the_next_sms_hour_is_todays_until_it_has_passed():
    from datetime import UTC, datetime

    assert next_sms_time(datetime(2026, 5, 1, 4, 59, tzinfo=UTC), RULES).day == 1
    assert next_sms_time(datetime(2026, 5, 1, 5, 1, tzinfo=UTC), RULES).day == 2


def test_sms_figures_count_messages_and_segments_per_language(engine):
    seeded = seed_day(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE sms_messages SET language = 'tw', segments = 2 WHERE send_date = :day AND msgid IN "
                "(SELECT msgid FROM sms_messages WHERE send_date = :day AND status = 'delivered' "
                "ORDER BY msgid LIMIT 3)"
            ).bindparams(sa.bindparam("day", seeded.day, type_=sa.Date))
        )
        figures = deliveries.day_figures(connection, seeded.day)
    assert (figures["messages_tw"], figures["segments_tw"]) == (3, 6)
    assert (figures["messages_en"], figures["segments_en"]) == (16, 16)  # 19 sent, the rest English
    assert figures["segments"] == 22
