"""`trigger_send_sms` in a deployment of two regions (SPEC §8, §15): it launches each region's
local today through a real Dagster webserver and answers every run, the default region's first
and again at the top level for the original clients.

The webserver runs alone (no daemon), so the launched runs stay queued: a second trigger finds
them and launches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from iska_pipelines.lib.tasks.graphql import DagsterGraphQL
from iska_pipelines_tests.api_server import RunningApi, api_on_loopback
from iska_pipelines_tests.dagster_stack import DagsterStack, webserver_alone
from iska_pipelines_tests.sms_runs import refused_url

TRIGGER = "/subscriptions/api/v1/subscriptions/trigger_send_sms/"
REGIONS = """
[GH]
timezone = "Africa/Accra"
prefixes = ["233"]
sms_gateways = [{{ url = "{url}" }}]

[NG]
timezone = "Africa/Lagos"
prefixes = ["234"]
sms_gateways = [{{ url = "{url}" }}]
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[DagsterStack]:
    root = tmp_path_factory.mktemp("trigger-regions")
    regions = root / "regions.toml"
    regions.write_text(REGIONS.format(url=refused_url("/sms")), encoding="utf-8")
    with webserver_alone(root, {"ISKA_REGIONS_FILE": str(regions)}) as stack:
        yield stack


@pytest.fixture(scope="module")
def api(webserver) -> Iterator[RunningApi]:
    with api_on_loopback(webserver.settings()) as running:
        yield running


def today_in(timezone: str) -> str:
    return datetime.now(ZoneInfo(timezone)).date().isoformat()


def test_the_trigger_answers_each_regions_run_and_the_default_regions_at_the_top(api, webserver):
    answer = requests.post(api.base_url + TRIGGER, timeout=60)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    runs = body["runs"]
    assert [(r["region"], r["partition"], r["launched"]) for r in runs] == [
        ("GH", f"{today_in('Africa/Accra')}|GH", True),
        ("NG", f"{today_in('Africa/Lagos')}|NG", True),
    ]
    assert runs[0]["run_id"] != runs[1]["run_id"]
    assert (body["run_id"], body["task_id"], body["partition"], body["launched"]) == (
        runs[0]["run_id"],
        runs[0]["run_id"],
        runs[0]["partition"],
        True,
    )
    client = DagsterGraphQL(webserver.url)
    for run in runs:
        assert [r.run_id for r in client.runs_for_partition(run["partition"])] == [run["run_id"]]


def test_a_second_trigger_while_they_are_queued_answers_the_same_runs(api):
    first = requests.post(api.base_url + TRIGGER, timeout=60).json()
    again = requests.get(api.base_url + TRIGGER, timeout=60).json()

    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in first["runs"]]
    assert [r["launched"] for r in again["runs"]] == [False, False]
    assert (again["run_id"], again["launched"]) == (first["runs"][0]["run_id"], False)
