"""Forecasts and subscriptions through the real API (uvicorn on 127.0.0.1), on SQLite and
PostgreSQL: round trips, the CSV rules, the event rules of SPEC §5, history views, pages."""

from __future__ import annotations

from datetime import date

import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.lib.db.schema import billing_attempts, sms_messages
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines_tests.api_server import api_settings

FORECASTS = "/forecasts/api/v1/forecasts/"
SUBSCRIPTIONS = "/subscriptions/api/v1/subscriptions/"
ACCRA = {"lat": 5.6037, "lon": -0.187}
KUMASI = {"lat": 6.6885, "lon": -1.6244}


class Client:
    """requests against one running API, with the paths of the original service."""

    def __init__(self, api):
        self.base = api.base_url

    def __getattr__(self, method):
        def call(path, **kwargs):
            return requests.request(method.upper(), self.base + path, timeout=30, **kwargs)

        return call


@pytest.fixture
def http(api) -> Client:
    return Client(api)


def grid(http, *points) -> None:
    for gid, point in points:
        assert (
            http.post(FORECASTS, json={"gid": gid, **point, "fcat24": "0.5", "fcat48": "0.25"}).status_code
            == 201
        )


def subscribe(http, msisdn="233010000001", plan=11, point=ACCRA, **extra) -> requests.Response:
    return http.post(SUBSCRIPTIONS, json={"msisdn": msisdn, "service_id": plan, **point, **extra})


# --- forecasts --------------------------------------------------------------------------------


def test_a_forecast_round_trip_create_read_replace_patch_and_delete(http):
    created = http.post(
        FORECASTS, json={"gid": 100001, "lat": 4.5, "lon": -3.3, "fcat24": 0.7513, "fcat48": "0.1547"}
    )
    assert created.status_code == 201
    assert created.json() | {"created_at": None, "updated_at": None} == {
        "gid": 100001,
        "lat": 4.5,
        "lon": -3.3,
        "fcat24": "0.7513",
        "fcat48": "0.1547",
        "is_active": True,
        "created_at": None,
        "updated_at": None,
    }
    assert http.get(f"{FORECASTS}100001/").json() == created.json()

    replaced = http.put(f"{FORECASTS}100001/", json={"lat": 4.6, "lon": -3.2, "fcat24": "1", "fcat48": "2"})
    assert replaced.status_code == 200 and (replaced.json()["lat"], replaced.json()["fcat24"]) == (
        4.6,
        "1.0000",
    )
    patched = http.patch(f"{FORECASTS}100001/", json={"fcat48": "0.0001"}).json()
    assert (patched["lat"], patched["fcat24"], patched["fcat48"]) == (4.6, "1.0000", "0.0001")

    assert http.delete(f"{FORECASTS}100001/").status_code == 204
    kept = http.get(f"{FORECASTS}100001/")
    assert kept.status_code == 200 and kept.json()["is_active"] is False
    assert http.get(FORECASTS, params={"is_active": "true"}).json()["count"] == 0
    assert http.get(FORECASTS, params={"is_active": "false"}).json()["count"] == 1


def test_creating_a_known_gid_updates_it_like_a_file_row(http):
    grid(http, (1, ACCRA))
    again = http.post(FORECASTS, json={"gid": 1, **ACCRA, "fcat24": "0.9", "fcat48": "0.8"})
    assert again.status_code == 200 and again.json()["fcat24"] == "0.9000"
    assert http.get(FORECASTS).json()["count"] == 1


def test_a_bad_forecast_is_422_with_the_reason_of_every_field(http):
    answer = http.post(FORECASTS, json={"gid": -4, "lat": 91, "lon": "east", "fcat24": "0.12345"})
    assert answer.status_code == 422
    assert {(e["field"], e["reason"]) for e in answer.json()["errors"]} == {
        ("fcat48", "required"),
        ("gid", "invalid_gid"),
        ("lat", "invalid_lat"),
        ("lon", "invalid_lon"),
        ("fcat24", "invalid_fcat"),
    }
    assert http.get(FORECASTS).json()["count"] == 0


def test_an_unknown_gid_is_404(http):
    for method in ("get", "put", "patch", "delete"):
        kwargs = {} if method in {"get", "delete"} else {"json": {**ACCRA, "fcat24": "1", "fcat48": "1"}}
        answer = getattr(http, method)(f"{FORECASTS}424242/", **kwargs)
        assert answer.status_code == 404 and "424242" in answer.json()["detail"], method


def test_a_gid_that_cannot_exist_is_422(http):
    for gid in ("0", "abc", "1000000000000000000", "-1"):
        assert http.get(f"{FORECASTS}{gid}/").status_code == 422, gid


def test_the_gid_in_the_body_must_match_the_path(http):
    grid(http, (1, ACCRA))
    answer = http.patch(f"{FORECASTS}1/", json={"gid": 2})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "gid"


# --- subscriptions ----------------------------------------------------------------------------


def test_a_subscription_created_through_the_api_gets_its_nearest_grid_point(http):
    grid(http, (1, ACCRA), (2, KUMASI))
    created = subscribe(http, msisdn="+233 020 000 023", plan=21, point={"lat": 6.6, "lon": -1.6})
    assert created.status_code == 201
    body = created.json()
    assert (body["msisdn"], body["plan"], body["status"], body["lid"]) == (
        "233020000023",
        "weekly",
        "active",
        2,
    )
    assert body["next_billing_date"] is not None and body["failed_billing_count"] == 0
    assert http.get(f"{SUBSCRIPTIONS}{body['id']}/").json() == body


def test_a_subscription_before_any_grid_has_no_lid_and_gets_one_when_a_point_arrives(http):
    created = subscribe(http).json()
    assert created["lid"] is None
    grid(http, (7, ACCRA))
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json()["lid"] == 7


def test_a_location_far_from_every_grid_point_is_422_no_grid_point_nearby(http):
    grid(http, (1, ACCRA))
    answer = subscribe(http, point={"lat": 48.85, "lon": 2.35})
    assert answer.status_code == 422
    assert {e["reason"] for e in answer.json()["errors"]} == {"no_grid_point_nearby"}
    assert http.get(SUBSCRIPTIONS).json()["count"] == 0


def test_moving_a_subscription_is_an_update_event_that_reassigns_its_lid(http):
    grid(http, (1, ACCRA), (2, KUMASI))
    created = subscribe(http).json()
    moved = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json=KUMASI)
    assert moved.status_code == 200
    assert (moved.json()["lat"], moved.json()["lid"], moved.json()["status"]) == (KUMASI["lat"], 2, "active")
    assert moved.json()["next_billing_date"] == created["next_billing_date"]


def test_delete_cancels_with_reason_api_and_keeps_the_subscription(http):
    created = subscribe(http).json()
    assert http.delete(f"{SUBSCRIPTIONS}{created['id']}/").status_code == 204
    kept = http.get(f"{SUBSCRIPTIONS}{created['id']}/").json()
    assert (kept["status"], kept["cancel_reason"]) == ("cancelled", "api") and kept["unsub_date"]
    assert http.delete(f"{SUBSCRIPTIONS}{created['id']}/").status_code == 204  # already cancelled
    assert http.get(SUBSCRIPTIONS, params={"status": "cancelled"}).json()["count"] == 1


def test_creating_a_cancelled_msisdn_again_reactivates_it(http):
    created = subscribe(http).json()
    http.delete(f"{SUBSCRIPTIONS}{created['id']}/")
    again = subscribe(http, plan="weekly")
    assert again.status_code == 200
    body = again.json()
    assert (body["id"], body["status"], body["plan"], body["cancel_reason"], body["unsub_date"]) == (
        created["id"],
        "active",
        "weekly",
        None,
        None,
    )


def test_status_active_through_patch_reactivates_and_cancelled_cancels(http):
    created = subscribe(http).json()
    cancelled = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={"status": "cancelled"}).json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "api")
    active = http.put(
        f"{SUBSCRIPTIONS}{created['id']}/", json={"status": "active", "plan": 21, **ACCRA}
    ).json()
    assert (active["status"], active["plan"]) == ("active", "weekly")


def test_an_event_older_than_the_last_one_is_409_stale_event(http):
    created = subscribe(http, ts="2026-01-01 00:00:00").json()
    answer = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={**KUMASI, "ts": "2025-12-31 23:59:59"})
    assert answer.status_code == 409 and answer.json()["errors"][0]["reason"] == "stale_event"
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json()["lat"] == ACCRA["lat"]


def test_a_ts_years_ahead_is_422_future_ts_and_later_events_still_apply(http):
    created = subscribe(http, ts="2026-01-01 00:00:00").json()
    typo = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={**KUMASI, "ts": "2062-01-02 00:00:00"})
    assert typo.status_code == 422
    assert [(e["field"], e["reason"]) for e in typo.json()["errors"]] == [("ts", "future_ts")]
    assert http.delete(f"{SUBSCRIPTIONS}{created['id']}/").status_code == 204
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json()["status"] == "cancelled"


def test_invalid_subscription_values_are_422_and_nothing_changes(http):
    created = subscribe(http).json()
    bad = subscribe(http, msisdn="12", plan=31, point={"lat": "x", "lon": 200})
    assert bad.status_code == 422
    assert {e["reason"] for e in bad.json()["errors"]} == {
        "invalid_msisdn",
        "invalid_plan",
        "invalid_lat",
        "invalid_lon",
    }
    missing = http.put(f"{SUBSCRIPTIONS}{created['id']}/", json={"plan": 11})
    assert missing.status_code == 422 and {e["field"] for e in missing.json()["errors"]} == {"lat", "lon"}
    renamed = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={"msisdn": "233099999999"})
    assert renamed.status_code == 422 and renamed.json()["errors"][0]["field"] == "msisdn"
    status = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={"status": "paused"})
    assert status.status_code == 422
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json() == created


def test_a_malformed_body_is_400_or_422_json_without_a_trace(http):
    for body in ("not json", "[1, 2]", '{"msisdn": ', "\xff"):
        answer = http.post(
            SUBSCRIPTIONS, data=body.encode("latin-1"), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code in (400, 422) and isinstance(answer.json()["detail"], str), body
        assert "Traceback" not in answer.text


def test_an_unknown_subscription_is_404(http):
    assert http.get(f"{SUBSCRIPTIONS}99/").status_code == 404
    assert http.patch(f"{SUBSCRIPTIONS}99/", json=ACCRA).status_code == 404
    assert http.delete(f"{SUBSCRIPTIONS}99/").status_code == 404
    assert http.get(f"{SUBSCRIPTIONS}99/billing_attempts/").status_code == 404


def test_the_msisdn_filter_matches_the_number_however_it_is_written(http):
    subscribe(http, msisdn="233010000001")
    subscribe(http, msisdn="233010000002")
    for written in ("233010000001", "+233010000001", "00233 010 000 001"):
        page = http.get(SUBSCRIPTIONS, params={"msisdn": written}).json()
        assert [s["msisdn"] for s in page["results"]] == ["233010000001"]
    assert http.get(SUBSCRIPTIONS, params={"msisdn": "nonsense"}).json()["count"] == 0
    assert http.get(SUBSCRIPTIONS, params={"status": "paused"}).status_code == 422


def test_billing_attempts_and_sms_messages_are_read_only_views_newest_first(http, engine):
    created = subscribe(http).json()
    with engine.begin() as connection:
        connection.execute(
            billing_attempts.insert(),
            [
                {
                    "subscription_id": created["id"],
                    "msisdn": created["msisdn"],
                    "plan": "daily",
                    "period_start": date(2026, 11, day),
                    "idempotency_key": f"k{day}",
                    "attempted_at": utcnow(),
                    "outcome": "success",
                    "http_status": 200,
                }
                for day in (1, 2, 3)
            ],
        )
        connection.execute(
            sms_messages.insert(),
            [
                {
                    "msgid": f"00000000-0000-0000-0000-00000000000{day}",
                    "subscription_id": created["id"],
                    "msisdn": created["msisdn"],
                    "send_date": date(2026, 11, day),
                    "text": "Iska",
                    "status": "delivered",
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
                for day in (1, 2)
            ],
        )
    attempts = http.get(f"{SUBSCRIPTIONS}{created['id']}/billing_attempts/", params={"limit": 2}).json()
    assert attempts["count"] == 3 and [a["idempotency_key"] for a in attempts["results"]] == ["k3", "k2"]
    messages = http.get(f"{SUBSCRIPTIONS}{created['id']}/sms_messages/").json()
    assert [m["send_date"] for m in messages["results"]] == ["2026-11-02", "2026-11-01"]
    assert http.post(f"{SUBSCRIPTIONS}{created['id']}/sms_messages/", json={}).status_code == 405


# --- pages ------------------------------------------------------------------------------------


def test_following_next_visits_every_row_once_and_previous_walks_back(http):
    for number in range(5):
        subscribe(http, msisdn=f"23301000000{number}")
    seen, url, pages = [], f"{http.base}{SUBSCRIPTIONS}?status=active&limit=2", []
    while url:
        page = requests.get(url, timeout=10).json()
        assert page["count"] == 5
        pages.append(page)
        seen += [s["msisdn"] for s in page["results"]]
        url = page["next"]
        assert url is None or "status=active" in url
    assert seen == [f"23301000000{n}" for n in range(5)] and len(pages) == 3
    assert pages[0]["previous"] is None
    back = requests.get(pages[2]["previous"], timeout=10).json()
    assert back["results"] == pages[1]["results"]
    first = requests.get(pages[1]["previous"], timeout=10).json()
    assert first["results"] == pages[0]["results"] and "offset" not in pages[1]["previous"]


def test_an_offset_past_the_end_is_an_empty_page(http):
    subscribe(http)
    page = http.get(SUBSCRIPTIONS, params={"offset": 10, "limit": 3}).json()
    assert (page["count"], page["results"], page["next"]) == (1, [], None)
    assert page["previous"].endswith("limit=3&offset=7")
    exact = http.get(SUBSCRIPTIONS, params={"offset": 1, "limit": 1}).json()
    assert (exact["results"], exact["next"]) == ([], None)


def test_a_page_that_cannot_be_is_422(http):
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "ten"}, {"offset": 10**13}):
        for path in (FORECASTS, SUBSCRIPTIONS):
            answer = http.get(path, params=params)
            assert answer.status_code == 422 and answer.json()["errors"], (path, params)


def test_an_empty_table_is_one_empty_page(http):
    assert http.get(FORECASTS).json() == {"count": 0, "next": None, "previous": None, "results": []}


# --- uploads ----------------------------------------------------------------------------------


def test_an_upload_lands_in_its_kinds_inbox_folder_under_the_task_id(http, data_dir):
    answer = http.post(
        SUBSCRIPTIONS + "upload_updates_csv/",
        files={"file": ("2021-02-06_locupdates.csv", b"ts,msisdn,lat,lon\n")},
    )
    assert answer.status_code == 200
    [stored] = (data_dir / "inbox" / "updates").iterdir()
    assert answer.json()["task_id"].startswith(f"updates-{stored.name}-")


def test_an_upload_without_a_file_is_422(http):
    answer = http.post(FORECASTS + "upload_csv/", data={"other": "x"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "file"


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(database_url, data_dir, start_api):
    api = start_api(api_settings(database_url, data_dir, ISKA_MAX_UPLOAD_MB="1"))
    answer = requests.post(
        api.base_url + FORECASTS + "upload_csv/",
        files={"file": ("forecasts.csv", b"0" * (2 * 1024 * 1024))},
        timeout=30,
    )
    assert answer.status_code == 413 and "ISKA_MAX_UPLOAD_MB=1" in answer.json()["detail"]
    small = requests.post(
        api.base_url + FORECASTS + "upload_csv/",
        files={"file": ("forecasts.csv", b"0" * (1024 * 1024 + 1))},
        timeout=30,
    )
    assert small.status_code == 413
    assert not any((data_dir / "inbox").rglob("*.csv*")) if (data_dir / "inbox").exists() else True


def test_every_write_is_kept_in_the_database_as_the_event_it_was(http, engine):
    created = subscribe(http).json()
    http.delete(f"{SUBSCRIPTIONS}{created['id']}/")
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT status, cancel_reason FROM subscriptions")).one()
    assert tuple(row) == ("cancelled", "api")


def test_without_a_dagster_webserver_the_sms_trigger_is_a_clear_503(database_url, data_dir, start_api):
    api = start_api(api_settings(database_url, data_dir, ISKA_DAGSTER_URL="http://127.0.0.1:9"))
    for method in ("get", "post"):
        answer = requests.request(method, api.base_url + SUBSCRIPTIONS + "trigger_send_sms/", timeout=30)
        assert answer.status_code == 503 and "ISKA_DAGSTER_URL" in answer.json()["detail"]


# --- languages (SPEC §14) ---------------------------------------------------------------------


def test_a_subscriptions_language_is_set_on_create_kept_when_not_given_and_changed_by_patch(http):
    created = subscribe(http, language=" TW ")
    assert created.status_code == 201 and created.json()["language"] == "tw"
    renewed = subscribe(http, plan=21).json()  # an addition without a language keeps it
    assert (renewed["plan"], renewed["language"]) == ("weekly", "tw")
    patched = http.patch(f"{SUBSCRIPTIONS}{created.json()['id']}/", json={"language": "ha"})
    assert patched.status_code == 200 and patched.json()["language"] == "ha"
    assert http.get(f"{SUBSCRIPTIONS}{created.json()['id']}/").json()["language"] == "ha"
    assert subscribe(http, msisdn="233010000002").json()["language"] is None  # not chosen


def test_a_code_that_names_no_language_is_422_invalid_language_and_nothing_changes(http):
    created = subscribe(http, language="ee").json()
    for code in ("xx", "twi-gh", "english"):
        answer = http.patch(f"{SUBSCRIPTIONS}{created['id']}/", json={"language": code})
        assert answer.status_code == 422, code
        assert [(e["field"], e["reason"]) for e in answer.json()["errors"]] == [
            ("language", "invalid_language")
        ]
    assert subscribe(http, msisdn="233010000002", language="xx").status_code == 422
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json() == created
    assert http.get(SUBSCRIPTIONS).json()["count"] == 1


def test_a_language_change_older_than_the_last_event_is_409_stale_event(http):
    created = subscribe(http, ts="2026-01-01 00:00:00").json()
    answer = http.patch(
        f"{SUBSCRIPTIONS}{created['id']}/", json={"language": "fr", "ts": "2025-12-31 00:00:00"}
    )
    assert answer.status_code == 409 and answer.json()["errors"][0]["reason"] == "stale_event"
    assert http.get(f"{SUBSCRIPTIONS}{created['id']}/").json()["language"] is None
