"""Every path that changes consent writes the consent log (SPEC §13): additions and cancellation
files (with the file's name and hash), the API, billing cancellations; re-running a file adds
nothing, and the chain always verifies. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import requests
import sqlalchemy as sa

from iska_pipelines.lib.consent.chain import verify
from iska_pipelines.lib.db.schema import consent_events
from iska_pipelines_tests.test_defs_billing import DAILY, Billing, decline_until_cancelled, msisdns

SUBSCRIPTIONS = "/subscriptions/api/v1/subscriptions/"
ADDITIONS = "msisdn,ts,service_id,lat,lon\n233200000001,2024-01-05 08:00:00,11,5.6,-0.2\n233200000002,2024-01-05 08:00:00,21,5.6,-0.2\n"
CANCELLATIONS = "msisdn,ts\n233200000001,2024-01-06 08:00:00\n"


def log(engine: sa.Engine) -> list[tuple[str, str, str, str]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.select(
                    consent_events.c.msisdn,
                    consent_events.c.event,
                    consent_events.c.source,
                    consent_events.c.detail,
                ).order_by(consent_events.c.id)
            )
        ]


def chain_holds(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return verify(connection).ok


def test_additions_and_cancellation_files_are_logged_with_the_files_name_and_hash(iska):
    assert iska.ingest(ADDITIONS, name="batch1_additions.csv").success
    assert iska.ingest(CANCELLATIONS, name="batch1_cancellations.csv").success

    added = f"batch1_additions.csv sha256 {hashlib.sha256(ADDITIONS.encode()).hexdigest()}"
    cancelled = f"batch1_cancellations.csv sha256 {hashlib.sha256(CANCELLATIONS.encode()).hexdigest()}"
    assert log(iska.engine) == [
        ("233200000001", "added", "file", added),
        ("233200000002", "added", "file", added),
        ("233200000001", "cancelled", "file", cancelled),
    ]
    assert chain_holds(iska.engine)


def test_re_running_an_applied_file_adds_nothing_to_the_log(iska):
    run = iska.ingest(ADDITIONS, name="batch1_additions.csv")
    before = log(iska.engine)
    assert iska.run(run.dagster_run.tags["dagster/partition"]).success
    assert log(iska.engine) == before and len(before) == 2


def test_an_addition_that_only_renews_an_active_subscriber_is_no_change_of_consent(iska):
    iska.ingest(ADDITIONS, name="batch1_additions.csv")
    iska.ingest(ADDITIONS.replace("2024-01-05", "2024-01-07"), name="batch2_additions.csv")
    assert [event for _, event, _, _ in log(iska.engine)] == ["added", "added"]


def test_api_creation_and_deletion_are_logged_as_the_api(api, engine):
    created = requests.post(
        api.base_url + SUBSCRIPTIONS,
        json={"msisdn": "233200000003", "service_id": 11, "lat": 5.6, "lon": -0.2},
        timeout=30,
    )
    assert created.status_code == 201
    assert (
        requests.delete(f"{api.base_url}{SUBSCRIPTIONS}{created.json()['id']}/", timeout=30).status_code
        == 204
    )
    assert (
        requests.delete(f"{api.base_url}{SUBSCRIPTIONS}{created.json()['id']}/", timeout=30).status_code
        == 204
    )

    assert [(event, source) for _, event, source, _ in log(engine)] == [
        ("added", "api"),
        ("cancelled", "api"),
    ]
    assert chain_holds(engine)


def test_a_billing_cancellation_is_logged_as_billing(database_url, engine, simulator):
    billing = Billing(database_url, simulator)
    billing.policy["max_tries"] = 2
    (msisdn,) = msisdns(1)
    billing.subscribe({msisdn: DAILY})

    decline_until_cancelled(billing, msisdn)

    assert log(engine) == [(msisdn, "cancelled", "billing", "2 declined charges")]
    assert chain_holds(engine)
