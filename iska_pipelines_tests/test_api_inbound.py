"""Inbound SMS over the real API on loopback (SPEC §13): the route's token, JSON and form bodies,
repeats, each keyword's effect, and replies sent through the SMS gateway (the simulator) and
delivered back through the callback. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.api.access import INBOUND_PATH
from iska_pipelines.lib.db.schema import billing_attempts
from iska_pipelines_tests.api_server import api_on_loopback, api_settings
from iska_pipelines_tests.consent_world import INBOUND_TOKEN, subscribe
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.sms_world import today

MSISDN = "233201234567"


def delivered_replies(phone, msisdn: str, count: int = 1):
    return wait_for(
        lambda: (
            (rows := phone.replies(msisdn))
            and len(rows) == count
            and all(r.status == "delivered" for r in rows)
            and rows
        )
    )


def test_stop_cancels_at_once_as_an_opt_out_and_one_free_confirmation_is_delivered(phone, engine):
    subscribe(engine, MSISDN, day=today())

    answer = phone.text(MSISDN, "Stop")

    assert (answer["keyword"], answer["outcome"]) == ("stop", "opted_out")
    row = phone.subscription(MSISDN)
    assert (row.status, row.cancel_reason) == ("cancelled", "opt_out")
    (reply,) = delivered_replies(phone, MSISDN)
    assert reply.text.startswith("Iska: you are unsubscribed") and reply.msgid == answer["reply_msgid"]
    assert phone.consent(MSISDN) == [("opted_out", "sms")]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(billing_attempts)).scalar_one() == 0


def test_a_stop_moves_last_event_at_to_the_messages_time(phone, engine):
    subscribe(engine, MSISDN, day=today())
    before = phone.subscription(MSISDN).last_event_at
    phone.text(MSISDN, "STOP")
    assert phone.subscription(MSISDN).last_event_at > before


def test_a_form_with_the_gateway_field_names_is_read_like_json(phone, engine):
    subscribe(engine, MSISDN, day=today())
    response = phone.post(
        {"from": f"+{MSISDN}", "text": "arrêt", "id": "gw-1", "date": "2026-01-01 10:00:00"}, form=True
    )
    assert response.status_code == 200 and response.json()["outcome"] == "opted_out"
    (stored,) = phone.inbound()
    assert (stored.gateway_id, stored.msisdn, stored.text) == ("gw-1", MSISDN, "arrêt")


def test_a_repeat_of_the_gateway_id_changes_nothing_and_gets_no_second_reply(phone, engine):
    subscribe(engine, MSISDN, day=today())
    first = phone.post(
        {"msisdn": MSISDN, "text": "STOP", "id": "same", "received_at": "2026-01-01T10:00:00Z"}
    )
    again = phone.post(
        {"msisdn": MSISDN, "text": "STOP", "id": "same", "received_at": "2026-01-01T10:00:00Z"}
    )
    assert first.status_code == again.status_code == 200
    assert (first.json()["repeat"], again.json()["repeat"]) == (False, True)
    assert again.json()["reply_msgid"] == first.json()["reply_msgid"]
    assert len(phone.inbound()) == 1
    delivered_replies(phone, MSISDN, 1)
    assert phone.consent(MSISDN) == [("opted_out", "sms")]


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_wrong_or_missing_token_is_403_and_nothing_is_stored(phone, engine, token):
    subscribe(engine, MSISDN, day=today())
    response = phone.post({"msisdn": MSISDN, "text": "STOP", "id": "x"}, token=token)
    assert response.status_code == 403
    assert phone.inbound() == [] and phone.subscription(MSISDN).status == "active"


def test_without_an_inbound_token_configured_every_message_is_refused_saying_why(database_url, data_dir):
    with api_on_loopback(api_settings(database_url, str(data_dir))) as api:
        response = requests.post(
            f"{api.base_url}{INBOUND_PATH}",
            params={"token": ""},
            json={"msisdn": MSISDN, "text": "STOP"},
            timeout=10,
        )
    assert response.status_code == 403 and "ISKA_INBOUND_TOKEN" in response.json()["detail"]


def test_a_body_without_an_msisdn_is_422(phone):
    assert phone.post({"text": "STOP"}).status_code == 422


def test_an_unknown_msisdn_gets_no_reply_except_to_help(phone):
    stop = phone.text("233209999999", "STOP")
    helped = phone.text("233209999999", "HELP")
    assert (stop["outcome"], stop["reply_msgid"]) == ("unknown_msisdn", None)
    assert helped["outcome"] == "helped"
    (reply,) = delivered_replies(phone, "233209999999")
    assert "GHS 0.20 a day" in reply.text and "STOP" in reply.text and reply.subscription_id is None


def test_any_other_text_is_stored_for_the_operator_without_a_reply(phone, engine):
    subscribe(engine, MSISDN, day=today())
    answer = phone.text(MSISDN, "When will it rain in Tamale?")
    assert (answer["keyword"], answer["outcome"], answer["reply_msgid"]) == ("other", "for_operator", None)
    assert phone.inbound()[0].text == "When will it rain in Tamale?" and phone.replies() == []
    assert phone.subscription(MSISDN).status == "active"


def test_start_then_yes_within_24_hours_rejoins_as_a_new_period_due_now(phone, engine):
    subscribe(engine, MSISDN, day=today())
    phone.text(MSISDN, "STOP")
    before = phone.subscription(MSISDN)

    asked = phone.text(MSISDN, "START")
    assert asked["outcome"] == "rejoin_asked"
    assert phone.subscription(MSISDN).status == "cancelled"  # not before YES
    joined = phone.text(MSISDN, "yes")

    assert joined["outcome"] == "rejoined"
    row = phone.subscription(MSISDN)
    assert (row.status, row.cancel_reason, row.unsub_date, row.failed_billing_count) == (
        "active",
        None,
        None,
        0,
    )
    assert (
        row.next_billing_date == today() and row.joins == before.joins + 1 and row.sub_date > before.sub_date
    )
    replies = delivered_replies(phone, MSISDN, 3)
    assert "reply YES" in replies[1].text and "GHS 0.20 a day" in replies[1].text
    assert replies[2].text.startswith("Iska: welcome back")
    assert phone.consent(MSISDN) == [("opted_out", "sms"), ("rejoined", "sms")]


def test_yes_more_than_24_hours_after_start_does_not_rejoin(phone, engine):
    subscribe(engine, MSISDN, day=today())
    phone.text(MSISDN, "STOP")
    phone.text(MSISDN, "START")
    phone.age_inbound(hours=25)

    late = phone.text(MSISDN, "YES")

    assert (late["outcome"], late["reply_msgid"]) == ("no_pending_ask", None)
    assert phone.subscription(MSISDN).status == "cancelled"


def test_yes_without_a_start_since_the_opt_out_does_not_rejoin(phone, engine):
    subscribe(engine, MSISDN, day=today())
    phone.text(MSISDN, "STOP")
    phone.text(MSISDN, "START")
    phone.text(MSISDN, "STOP")  # changed their mind again: the question no longer stands
    assert phone.text(MSISDN, "YES")["outcome"] == "no_pending_ask"


def test_replies_are_in_the_subscribers_language(phone, engine):
    subscribe(engine, MSISDN, day=today(), language="fr")
    phone.text(MSISDN, "ARRET")
    (reply,) = delivered_replies(phone, MSISDN)
    assert reply.language == "fr" and reply.text.startswith("Iska : vous êtes désabonné")


def test_the_consent_route_returns_one_subscribers_history(phone, engine):
    subscription_id = subscribe(engine, MSISDN, day=today())
    phone.text(MSISDN, "STOP")
    phone.text(MSISDN, "START")
    phone.text(MSISDN, "YES")
    response = requests.get(
        f"{phone.api.base_url}/subscriptions/api/v1/subscriptions/{subscription_id}/consent/", timeout=10
    )
    assert response.status_code == 200
    history = response.json()
    assert [(r["event"], r["source"]) for r in history] == [("opted_out", "sms"), ("rejoined", "sms")]
    assert history[1]["prev_hash"] == history[0]["hash"]
    assert "inbound message" in history[0]["detail"]


def test_the_simulator_posts_a_form_with_the_gateway_names_when_asked(phone, engine):
    subscribe(engine, MSISDN, day=today())
    said = requests.post(
        f"{phone.simulator.base_url}/simulator/inbound",
        json={"msisdn": MSISDN, "text": "STOP", "id": "sim-form-1", "form": True},
        timeout=15,
    ).json()
    assert said["iska_status"] == 200 and said["iska_answer"]["outcome"] == "opted_out"
    (stored,) = phone.inbound()
    assert (stored.gateway_id, stored.msisdn) == ("sim-form-1", MSISDN)


def test_the_simulator_without_an_inbound_url_says_what_to_set(simulator):
    simulator.configure(inbound_url="")
    answer = requests.post(
        f"{simulator.base_url}/simulator/inbound", json={"msisdn": MSISDN, "text": "STOP"}, timeout=15
    )
    assert answer.status_code == 409 and "ISKA_SIM_INBOUND_URL" in answer.json()["detail"]


def test_json_sent_with_a_form_content_type_is_still_read_as_json(phone, engine):
    subscribe(engine, MSISDN, day=today())
    response = requests.post(
        phone.inbound_url,
        params={"token": INBOUND_TOKEN},
        data=f'{{"msisdn": "{MSISDN}", "text": "STOP", "id": "curl-1"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["outcome"] == "opted_out"


def test_a_reply_delivered_does_not_count_as_the_last_good_forecast(phone, engine):
    subscribe(engine, MSISDN, day=today())
    phone.text(MSISDN, "HELP")
    delivered_replies(phone, MSISDN)
    assert phone.subscription(MSISDN).last_successful_sms_date is None
