"""Each subscriber's forecast in their own language (SPEC §14), end to end: the sample additions
file with a `language` column through the real ingest, `sms_job` against the real simulator,
on SQLite and PostgreSQL."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.lib.db.schema import forecasts, subscriptions
from iska_pipelines.lib.sms.templates import SHIPPED
from iska_pipelines.lib.sms.text import format_number
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.sms_runs import day_report, run_sms_day
from iska_pipelines_tests.sms_world import messages, today

EN, TW, HA = "233030000001", "233030000002", "233030000003"
# two UCS-2 segments at its widest (ɛ, ɔ); one GSM-7 segment spelt without them
LONG_TWI = "Iska {date}: nsu bɛtɔ anɔpa yi, dɔnhwerew 24 mu {fcat24}, dɔnhwerew 48 mu {fcat48}"


def billed(iska) -> None:
    day = today()
    with iska.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE subscriptions SET last_billing_date = :day, next_billing_date = :next"
            ).bindparams(
                sa.bindparam("day", day, type_=sa.Date),
                sa.bindparam("next", day + timedelta(days=1), type_=sa.Date),
            )
        )


def three_languages(iska):
    iska.ingest(sample_path("forecasts_ghana.csv"))
    iska.ingest(sample_path("additions_languages.csv"), folder="additions")
    billed(iska)
    return today()


def forecast_values(iska, msisdn: str) -> tuple[str, str]:
    """The subscriber's grid point's numbers, as the SMS writes them."""
    query = (
        sa.select(forecasts.c.fcat24, forecasts.c.fcat48)
        .join(subscriptions, subscriptions.c.lid == forecasts.c.gid)
        .where(subscriptions.c.msisdn == msisdn)
    )
    with iska.engine.connect() as connection:
        fcat24, fcat48 = connection.execute(query).one()
    return format_number(fcat24), format_number(fcat48)


def test_the_sample_subscribers_each_get_the_forecast_in_their_own_language(iska, simulator):
    day = three_languages(iska)
    assert dict(iska.rows("SELECT msisdn, language FROM subscriptions")) == {EN: "en", TW: "tw", HA: "ha"}

    result = run_sms_day(iska.database_url, iska.instance, day, [simulator.sms_url("a")], template=None)

    received = simulator.stats()["sms"]["texts"]
    numeric, iso = f"{day.day}/{day.month}/{day.year}", day.isoformat()
    en24, en48 = forecast_values(iska, EN)
    tw24, tw48 = forecast_values(iska, TW)
    ha24, ha48 = forecast_values(iska, HA)
    assert received == {
        EN: f"Iska {iso}: next 24h {en24}, next 48h {en48}",
        TW: f"Iska {numeric}: nsu dɔnhwerew 24 {tw24}, 48 {tw48}",
        HA: f"Iska {numeric}: ruwan sama awa 24 {ha24}, awa 48 {ha48}",
    }
    stored = {m.msisdn: (m.text, m.language, m.encoding, m.segments) for m in messages(iska.engine, day)}
    assert stored == {
        EN: (received[EN], "en", "gsm7", 1),
        TW: (received[TW], "tw", "ucs2", 1),
        HA: (received[HA], "ha", "gsm7", 1),
    }
    assert simulator.stats()["sms"]["segments"] == {EN: 1, TW: 1, HA: 1}
    assert simulator.stats()["sms"]["counts"].get("bad_encoding", 0) == 0  # each declared rightly
    report = day_report(result)
    assert {k: v for k, v in report.items() if k.startswith(("messages_", "segments_"))} == {
        "messages_en": 1,
        "segments_en": 1,
        "messages_ha": 1,
        "segments_ha": 1,
        "messages_tw": 1,
        "segments_tw": 1,
        "messages_per_second": report["messages_per_second"],
    }
    assert report["day_segments"] == 3


def test_a_subscriber_without_a_language_gets_the_default_language(iska, simulator):
    day = three_languages(iska)
    with iska.engine.begin() as connection:
        connection.execute(sa.text("UPDATE subscriptions SET language = NULL WHERE msisdn = :m"), {"m": TW})
        connection.execute(sa.text("UPDATE subscriptions SET language = 'dag' WHERE msisdn = :m"), {"m": HA})

    run_sms_day(
        iska.database_url, iska.instance, day, [simulator.sms_url("a")], template=None, default_language="fr"
    )

    stored = {m.msisdn: (m.language, m.text.split(":")[0]) for m in messages(iska.engine, day)}
    french = f"Iska {day.day:02d}/{day.month:02d}/{day.year} "
    assert stored == {EN: ("en", f"Iska {day.isoformat()}"), TW: ("fr", french), HA: ("fr", french)}


def long_twi_templates(tmp_path):
    text = SHIPPED.read_text(encoding="utf-8")
    shipped = tomllib.loads(text)["tw"]["forecast"]
    path = tmp_path / "templates.toml"
    path.write_text(text.replace(f'forecast = "{shipped}"', f'forecast = "{LONG_TWI}"'), encoding="utf-8")
    return str(path)


def test_a_twi_template_of_two_segments_stops_the_day_before_anything_is_planned(iska, simulator, tmp_path):
    day = three_languages(iska)

    result = run_sms_day(
        iska.database_url,
        iska.instance,
        day,
        [simulator.sms_url("a")],
        template=None,
        templates_file=long_twi_templates(tmp_path),
        max_segments=1,
        raise_on_error=False,
    )

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "[tw] forecast takes 2 UCS-2 segments" in failure.step_failure_data.error.message
    assert messages(iska.engine, day) == [] and simulator.stats()["sms"]["messages"] == {}


def test_with_the_fallback_the_same_twi_template_goes_as_one_gsm7_segment(iska, simulator, tmp_path):
    day = three_languages(iska)

    result = run_sms_day(
        iska.database_url,
        iska.instance,
        day,
        [simulator.sms_url("a")],
        template=None,
        templates_file=long_twi_templates(tmp_path),
        max_segments=1,
        gsm7_fallback=True,
    )

    [twi] = [m for m in messages(iska.engine, day) if m.msisdn == TW]
    tw24, tw48 = forecast_values(iska, TW)
    sent = (
        f"Iska {day.day}/{day.month}/{day.year}: nsu beto anopa yi, donhwerew 24 mu {tw24}, "
        f"donhwerew 48 mu {tw48}"
    )
    assert (twi.text, twi.language, twi.encoding, twi.segments) == (sent, "tw", "gsm7", 1)
    assert simulator.stats()["sms"]["texts"][TW] == sent  # the stored text is the text sent
    assert day_report(result)["segments_tw"] == 1
