"""The original README's curl flows against the real API and a real Dagster deployment, and
schema-driven fuzzing of every route (SPEC §8).

One `dagster dev` serves the module: the files are uploaded once, and each step reads what
became of them.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from iska_pipelines.lib.tasks.graphql import DagsterGraphQL
from iska_pipelines_tests.api_server import api_on_loopback
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.dagster_stack import dagster_stack  # noqa: F401 (module fixture)

FORECASTS = "/forecasts/api/v1/forecasts/"
SUBSCRIPTIONS = "/subscriptions/api/v1/subscriptions/"
README_UPLOADS = [  # (resource, upload endpoint, sample file), in the README's order
    ("forecasts", FORECASTS + "upload_csv/", "forecasts_ghana.csv"),
    ("subscriptions", SUBSCRIPTIONS + "upload_additions_csv/", "2021-02-05_additions.csv"),
    ("subscriptions", SUBSCRIPTIONS + "upload_cancellations_csv/", "2021-02-06_deletions.csv"),
    ("subscriptions", SUBSCRIPTIONS + "upload_updates_csv/", "2021-02-06_locupdates.csv"),
]
FINAL = {"SUCCESS", "FAILURE", "EXPIRED"}
WAIT_SECONDS = 300.0  # a deadline for a stuck run, generous for a busy machine
FUZZ_EXAMPLES = 10  # per operation: about 250 requests, bounded in time


@pytest.fixture(scope="module")
def api(dagster_stack):  # noqa: F811
    """The API over the deployment's data folder and database, asking its webserver."""
    with api_on_loopback(dagster_stack.settings()) as running:
        yield running


def upload(api, endpoint: str, path) -> str:
    """`curl -X POST -F file=@<path> <endpoint>`."""
    with open(path, "rb") as handle:
        answer = requests.post(api.base_url + endpoint, files={"file": (path.name, handle)}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["task_id"]


def task_status(api, resource: str, task_id: str) -> dict:
    """`curl -X GET -H 'Content-Type: application/json' -d '{"task_id": ...}' .../task_status/`."""
    answer = requests.get(
        f"{api.base_url}/{resource}/api/v1/{resource}/task_status/",
        data=json.dumps({"task_id": task_id}),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for(api, tasks: dict[str, str], stack) -> dict[str, list[str]]:
    """Poll every task until it is final; returns the statuses each one went through."""
    seen: dict[str, list[str]] = {task_id: [] for task_id in tasks}
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for task_id, resource in tasks.items():
            if seen[task_id] and seen[task_id][-1] in FINAL:
                continue
            status = task_status(api, resource, task_id)
            assert status["task_id"] == task_id
            if not seen[task_id] or seen[task_id][-1] != status["task_status"]:
                seen[task_id].append(status["task_status"])
        if all(statuses and statuses[-1] in FINAL for statuses in seen.values()):
            return seen
        time.sleep(0.25)  # polling interval, not a synchronisation delay
    pytest.fail(f"tasks not final after {WAIT_SECONDS} s: {seen}\n{stack.log_tail()}")


def run_readme_flow(api, dagster_stack, folder):  # noqa: F811
    """The sample files uploaded through the original endpoints, a forecasts file without its
    fcat columns, and today's SMS triggered, all at once (Dagster runs them side by side), then
    polled until final."""
    tasks = {}
    for resource, endpoint, name in README_UPLOADS:
        tasks[upload(api, endpoint, sample_path(name))] = resource
    broken = folder / "forecasts_without_fcat.csv"
    broken.write_text("gid,lat,lon\n1,5.6,-0.2\n")
    refused = upload(api, FORECASTS + "upload_csv/", broken)
    answer = requests.get(api.base_url + SUBSCRIPTIONS + "trigger_send_sms/", timeout=30)
    assert answer.status_code == 200, answer.text
    triggered = answer.json()
    seen = wait_for(api, {**tasks, refused: "forecasts", triggered["run_id"]: "subscriptions"}, dagster_stack)
    return tasks, seen, triggered, refused


def every_uploaded_sample_file_reaches_success(flow):
    tasks, seen, _, _ = flow
    assert [seen[task_id][-1] for task_id in tasks] == ["SUCCESS"] * len(README_UPLOADS)
    for task_id in tasks:
        assert set(seen[task_id]) <= {"PENDING", "STARTED", "SUCCESS"}


def the_task_id_is_the_partition_the_dagster_ui_shows(flow, dagster_stack):  # noqa: F811
    tasks, _, _, _ = flow
    for task_id in tasks:
        runs = DagsterGraphQL(dagster_stack.url).runs_for_partition(task_id)
        assert [run.status for run in runs][:1] == ["SUCCESS"]


def uploaded_records_can_be_listed_and_fetched(api, flow):
    forecasts = requests.get(api.base_url + FORECASTS, params={"limit": 5}, timeout=10).json()
    assert forecasts["count"] == 3128 and len(forecasts["results"]) == 5
    assert forecasts["results"][0]["gid"] == 100001 and forecasts["next"].endswith("limit=5&offset=5")
    assert requests.get(f"{api.base_url}{FORECASTS}100002/", timeout=10).json()["fcat24"] == "0.6838"

    [added] = requests.get(
        api.base_url + SUBSCRIPTIONS, params={"msisdn": "+233 020 000 016"}, timeout=10
    ).json()["results"]
    assert (added["msisdn"], added["plan"], added["status"]) == ("233020000016", "weekly", "active")
    assert (added["lat"], added["lon"]) == (6.083333, -0.25)
    assert added["lid"] is not None
    fetched = requests.get(f"{api.base_url}{SUBSCRIPTIONS}{added['id']}/", timeout=10).json()
    assert fetched == added

    [cancelled] = requests.get(
        api.base_url + SUBSCRIPTIONS, params={"msisdn": "233010000012"}, timeout=10
    ).json()["results"]
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "user")
    [moved] = requests.get(
        api.base_url + SUBSCRIPTIONS, params={"msisdn": "233020000001"}, timeout=10
    ).json()["results"]
    assert (moved["lat"], moved["lon"]) == (4.904203, -1.759872)


def a_file_refused_as_a_whole_is_failure(api, flow, dagster_stack):  # noqa: F811
    _, seen, _, refused = flow
    assert seen[refused][-1] == "FAILURE"
    detail = task_status(api, "forecasts", refused)["detail"]
    assert detail.startswith("refused: ") and "fcat24" in detail
    [rejected] = (dagster_stack.data_dir / "rejected" / "forecasts").glob("forecasts_without_fcat.*.csv")
    assert "fcat24" in rejected.with_name(rejected.name + ".error.txt").read_text()


def the_same_content_uploaded_again_is_success_without_applying_twice(api, flow, dagster_stack):  # noqa: F811
    task_id = upload(
        api, SUBSCRIPTIONS + "upload_cancellations_csv/", sample_path("2021-02-06_deletions.csv")
    )
    assert wait_for(api, {task_id: "subscriptions"}, dagster_stack)[task_id][-1] == "SUCCESS"
    assert "same content as cancellations-" in task_status(api, "subscriptions", task_id)["detail"]
    assert DagsterGraphQL(dagster_stack.url).runs_for_partition(task_id) == []
    assert len(list((dagster_stack.data_dir / "archive" / "cancellations" / "duplicates").iterdir())) == 1


def an_id_no_upload_gave_is_expired(api):
    for task_id in ("not-a-task", "forecasts-never_uploaded.csv-0123456789", str(uuid.uuid4())):
        answer = task_status(api, "forecasts", task_id)
        assert (answer["task_status"], answer["task_id"]) == ("EXPIRED", task_id)


def task_id_as_a_query_parameter_works_too(api, flow):
    tasks, _, _, _ = flow
    task_id = next(iter(tasks))
    answer = requests.get(f"{api.base_url}{FORECASTS}task_status/", params={"task_id": task_id}, timeout=10)
    assert (answer.json()["task_status"], answer.json()["task_id"]) == ("SUCCESS", task_id)


def status_can_be_read_from_the_instance_in_dagster_home(flow, dagster_stack):  # noqa: F811
    tasks, _, _, _ = flow
    settings_with_home = dagster_stack.settings(ISKA_DAGSTER_URL="http://127.0.0.1:9")  # no webserver
    assert settings_with_home.dagster_home == str(dagster_stack.home)
    with api_on_loopback(settings_with_home) as direct:
        for task_id, resource in tasks.items():
            assert task_status(direct, resource, task_id)["task_status"] == "SUCCESS"


def trigger_send_sms_launched_todays_partition_and_its_run_can_be_followed(api, flow, dagster_stack):  # noqa: F811
    _, seen, triggered, _ = flow
    today = datetime.now(ZoneInfo("Africa/Accra")).date().isoformat()
    assert triggered["partition"] == today and triggered["task_id"] == triggered["run_id"]
    assert seen[triggered["run_id"]][-1] == "SUCCESS"
    [run] = DagsterGraphQL(dagster_stack.url).runs(
        runIds=[triggered["run_id"]],
        pipelineName="sms_job",
        tags=[{"key": "dagster/partition", "value": today}],
    )
    assert run.status == "SUCCESS"
    # and it shows on sms_job's Partitions page, as a scheduled run would
    statuses = requests.post(
        f"{dagster_stack.url}/graphql", timeout=30, json={"query": PARTITION_PAGE}
    ).json()
    [repository] = statuses["data"]["repositoriesOrError"]["nodes"]
    [partition_set] = [p for p in repository["partitionSets"] if p["name"] == "sms_job_partition_set"]
    shown = {
        p["partitionName"]: p["runId"]
        for p in partition_set["partitionStatusesOrError"]["results"]
        if p["runId"]
    }
    assert shown.get(today) == triggered["run_id"]


PARTITION_PAGE = """{ repositoriesOrError { ... on RepositoryConnection { nodes { partitionSets {
  name partitionStatusesOrError { ... on PartitionStatuses { results { partitionName runId } } } } } } } }"""


def a_trigger_while_the_days_run_is_queued_answers_that_run(api, dagster_stack):  # noqa: F811
    first = requests.post(api.base_url + SUBSCRIPTIONS + "trigger_send_sms/", timeout=30).json()
    second = requests.post(api.base_url + SUBSCRIPTIONS + "trigger_send_sms/", timeout=30).json()
    status = task_status(api, "subscriptions", first["run_id"])["task_status"]
    if second["run_id"] != first["run_id"]:  # only if the first run finished in between
        assert status in FINAL and second["launched"]
    else:
        assert not second["launched"]


# --- fuzzing ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed_api(dagster_stack, tmp_path_factory):  # noqa: F811
    """An API of its own (data folder and database) so fuzzed uploads stay out of the
    deployment's inbox; it asks the same Dagster for status and launches."""
    folder = tmp_path_factory.mktemp("fuzz")
    settings_ = dagster_stack.settings(
        ISKA_DATA_DIR=str(folder),
        ISKA_DATABASE_URL=f"sqlite:///{folder / 'iska.sqlite3'}",
        ISKA_MAX_UPLOAD_MB="1",
    )
    with api_on_loopback(settings_) as running:
        yield running


def fuzz(schema, base_url: str, examples: int) -> dict[str, str]:
    """Property-based requests to every operation in the schema; failures by operation."""
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(
                base_url=base_url,
                timeout=30,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        try:
            check()
        except Exception as failure:  # noqa: BLE001 (collected and reported below)
            failures[operation.label] = "".join(traceback.format_exception(failure))[-3000:]
    return failures


def no_route_answers_5xx_or_breaks_its_schema(fuzzed_api):
    schema = schemathesis.openapi.from_url(f"{fuzzed_api.base_url}/openapi.json")
    assert len(list(schema.get_all_operations())) >= 20
    failures = fuzz(schema, fuzzed_api.base_url, FUZZ_EXAMPLES)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_original_clients_work_against_a_real_dagster(api, dagster_stack, fuzzed_api, tmp_path):  # noqa: F811
    """One test on purpose: `dagster dev` takes long to start, and with several tests here
    pytest-xdist's default distribution would start one per worker. Each step below is one
    behaviour; they share the deployment and what the README flow put into it."""
    flow = run_readme_flow(api, dagster_stack, tmp_path)
    every_uploaded_sample_file_reaches_success(flow)
    the_task_id_is_the_partition_the_dagster_ui_shows(flow, dagster_stack)
    uploaded_records_can_be_listed_and_fetched(api, flow)
    a_file_refused_as_a_whole_is_failure(api, flow, dagster_stack)
    task_id_as_a_query_parameter_works_too(api, flow)
    status_can_be_read_from_the_instance_in_dagster_home(flow, dagster_stack)
    trigger_send_sms_launched_todays_partition_and_its_run_can_be_followed(api, flow, dagster_stack)
    an_id_no_upload_gave_is_expired(api)
    the_same_content_uploaded_again_is_success_without_applying_twice(api, flow, dagster_stack)
    a_trigger_while_the_days_run_is_queued_answers_that_run(api, dagster_stack)
    no_route_answers_5xx_or_breaks_its_schema(fuzzed_api)
