"""API writes against the files (SPEC §5): every API write moves the subscription's
`last_event_at` to the write's own time, so re-running an applied file, or a late file, whose
events are older never undoes what the API did. Files go through the real sensor and asset
(the `iska` driver); the API is the real one on 127.0.0.1, over the same database."""

from __future__ import annotations

from datetime import datetime

import requests

from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines_tests.conftest import sample_path

SUBSCRIPTIONS = "/subscriptions/api/v1/subscriptions/"
ACCRA = {"lat": 5.6037, "lon": -0.187}


def partition_of(result) -> str:
    return result.dagster_run.tags["dagster/partition"]


def subscriber(api, msisdn: str) -> dict:
    found = requests.get(api.base_url + SUBSCRIPTIONS, params={"msisdn": msisdn}, timeout=30).json()
    [row] = found["results"]
    return row


def event_time(row: dict) -> datetime:
    return datetime.fromisoformat(row["last_event_at"])


def test_an_api_delete_is_not_undone_by_re_running_the_earlier_additions_partition(iska, api):
    applied = iska.ingest(sample_path("2021-02-05_additions.csv"))
    added = subscriber(api, "233020000023")
    assert requests.delete(f"{api.base_url}{SUBSCRIPTIONS}{added['id']}/", timeout=30).status_code == 204
    rerun = iska.run(partition_of(applied))
    assert rerun.success
    after = subscriber(api, "233020000023")
    assert (after["status"], after["cancel_reason"]) == ("cancelled", "api")


def test_an_api_patch_that_cancels_is_not_undone_by_re_running_the_earlier_additions_partition(iska, api):
    applied = iska.ingest(sample_path("2021-02-05_additions.csv"))
    added = subscriber(api, "233020000017")
    patched = requests.patch(
        f"{api.base_url}{SUBSCRIPTIONS}{added['id']}/", json={"status": "cancelled"}, timeout=30
    )
    assert patched.status_code == 200
    assert iska.run(partition_of(applied)).success
    assert subscriber(api, "233020000017")["status"] == "cancelled"


def test_an_api_delete_of_a_subscriber_already_cancelled_survives_re_running_the_additions(iska, api):
    # the cancellations file is stamped the same second as the addition: re-running the
    # additions alone would reactivate; the operator's DELETE afterwards must prevent that
    applied = iska.ingest(sample_path("2021-02-05_additions.csv"))
    iska.ingest("msisdn,ts\n233020000023,2021-02-04 06:09:06\n", name="2021-02-05_deletions.csv")
    cancelled = subscriber(api, "233020000023")
    assert cancelled["status"] == "cancelled"
    assert requests.delete(f"{api.base_url}{SUBSCRIPTIONS}{cancelled['id']}/", timeout=30).status_code == 204
    assert iska.run(partition_of(applied)).success
    assert subscriber(api, "233020000023")["status"] == "cancelled"


def test_every_api_write_moves_last_event_at_even_when_it_changes_nothing_else(iska, api):
    iska.ingest(sample_path("2021-02-05_additions.csv"))
    iska.ingest("msisdn,ts\n233020000023,2021-02-05 09:00:00\n", name="2021-02-05_deletions.csv")
    cancelled = subscriber(api, "233020000023")
    path = f"{api.base_url}{SUBSCRIPTIONS}{cancelled['id']}/"
    writes = [
        ("delete", {}),  # already cancelled: nothing else changes
        ("patch", {"json": {"status": "cancelled"}}),  # the same
        ("patch", {"json": {"lat": cancelled["lat"], "lon": cancelled["lon"]}}),  # same place
        (
            "put",
            {
                "json": {
                    "plan": cancelled["plan"],
                    "lat": cancelled["lat"],
                    "lon": cancelled["lon"],
                    "status": "cancelled",
                }
            },
        ),
    ]
    for method, body in writes:
        before = utcnow()
        answer = requests.request(method, path, timeout=30, **body)
        assert answer.status_code in (200, 204), (method, body, answer.text)
        row = subscriber(api, "233020000023")
        assert event_time(row) >= before.replace(microsecond=0), (method, body)
        assert (row["status"], row["cancel_reason"]) == ("cancelled", "user"), (method, body)
