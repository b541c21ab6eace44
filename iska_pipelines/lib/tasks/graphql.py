"""Dagster as the API sees it: run status and launching runs through the webserver's GraphQL.

In production the API shares no process (and maybe no machine) with the code location, so it
talks to the webserver at ISKA_DAGSTER_URL like any other Dagster client. Reading run status
can also go through the instance in DAGSTER_HOME (api/run_storage.py); both answer RunSummary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import requests

from iska_pipelines.lib.vocabulary import RUNS_IN_PROGRESS

PARTITION_TAG = "dagster/partition"
# the job's Partitions page lists runs by this tag (Dagster's own launches set it): without it a
# run launched here would not show on that page (SPEC §16)
PARTITION_SET_TAG = "dagster/partition_set"
RUN_FIELDS = "runId status creationTime"


class DagsterUnavailable(RuntimeError):
    """The webserver did not answer, or answered with an error; the message says which."""


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str  # Dagster's run status name: QUEUED, STARTED, SUCCESS, FAILURE, ...
    created: float  # epoch seconds


class RunReader(Protocol):
    def runs_for_partition(self, partition_key: str) -> list[RunSummary]:
        """Runs of that partition, newest first."""

    def run(self, run_id: str) -> RunSummary | None: ...


RUNS_QUERY = f"""
query Runs($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on Error {{ message }}
  }}
}}"""
RUN_QUERY = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on Error {{ message }}
  }}
}}"""
JOBS_QUERY = """
query Jobs {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on Error { message }
  }
}"""
LAUNCH_MUTATION = f"""
mutation Launch($params: ExecutionParams!) {{
  launchRun(executionParams: $params) {{
    __typename
    ... on LaunchRunSuccess {{ run {{ {RUN_FIELDS} }} }}
    ... on Error {{ message }}
    ... on RunConfigValidationInvalid {{ errors {{ message }} }}
  }}
}}"""


class DagsterGraphQL:
    """A small client for the few GraphQL calls ISKA needs."""

    def __init__(self, url: str, timeout_seconds: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds

    def _call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        endpoint = f"{self.url}/graphql"
        try:
            answer = requests.post(
                endpoint, json={"query": query, "variables": variables or {}}, timeout=self.timeout_seconds
            )
        except requests.RequestException as error:
            raise DagsterUnavailable(
                f"the Dagster webserver at {self.url} (ISKA_DAGSTER_URL) is not reachable: "
                f"{type(error).__name__}"
            ) from None
        if answer.status_code != 200:
            raise DagsterUnavailable(
                f"the Dagster webserver at {self.url} answered HTTP {answer.status_code}"
            )
        try:
            body = answer.json()
        except ValueError:
            raise DagsterUnavailable(f"the Dagster webserver at {self.url} answered no JSON") from None
        if body.get("errors"):
            raise DagsterUnavailable(f"Dagster GraphQL error: {body['errors'][0].get('message', '?')}")
        data: dict[str, Any] = body["data"]
        return data

    def runs(self, limit: int = 10, **run_filter: Any) -> list[RunSummary]:
        data = self._call(RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
        if data["__typename"] != "Runs":
            raise DagsterUnavailable(
                f"Dagster could not list runs: {data.get('message', data['__typename'])}"
            )
        return [_summary(run) for run in data["results"]]

    def runs_for_partition(self, partition_key: str) -> list[RunSummary]:
        return self.runs(tags=[{"key": PARTITION_TAG, "value": partition_key}])

    def run(self, run_id: str) -> RunSummary | None:
        data = self._call(RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] == "Run":
            return _summary(data)
        if data["__typename"] == "RunNotFoundError":
            return None
        raise DagsterUnavailable(f"Dagster could not read run {run_id}: {data.get('message')}")

    def job_location(self, job_name: str) -> tuple[str, str]:
        """(code location, repository) that define the job."""
        data = self._call(JOBS_QUERY)["repositoriesOrError"]
        if data["__typename"] != "RepositoryConnection":
            raise DagsterUnavailable(f"Dagster could not list its code: {data.get('message')}")
        for repository in data["nodes"]:
            if any(job["name"] == job_name for job in repository["jobs"]):
                return repository["location"]["name"], repository["name"]
        raise DagsterUnavailable(f"no code location served by {self.url} defines the job {job_name}")

    def launch_partition(self, job_name: str, partition_key: str, tags: dict[str, str]) -> RunSummary:
        location, repository = self.job_location(job_name)
        all_tags = {PARTITION_TAG: partition_key, PARTITION_SET_TAG: partition_set_name(job_name), **tags}
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": job_name,
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
        }
        data = self._call(LAUNCH_MUTATION, {"params": params})["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            detail = data.get("message") or "; ".join(e["message"] for e in data.get("errors", []))
            raise DagsterUnavailable(
                f"Dagster did not launch {job_name} for {partition_key}: "
                f"{data['__typename']} {detail}".strip()
            )
        return _summary(data["run"])

    def launch_unless_running(
        self, job_name: str, partition_key: str, tags: dict[str, str]
    ) -> tuple[RunSummary, bool]:
        """The partition's run in progress if there is one (never two at once), else a new run.
        Returns (run, launched)."""
        running = self.runs(
            limit=1,
            pipelineName=job_name,
            statuses=list(RUNS_IN_PROGRESS),
            tags=[{"key": PARTITION_TAG, "value": partition_key}],
        )
        if running:
            return running[0], False
        return self.launch_partition(job_name, partition_key, tags), True


def partition_set_name(job_name: str) -> str:
    """The name Dagster gives a partitioned job's partition set."""
    return f"{job_name}_partition_set"


def _summary(run: dict[str, Any]) -> RunSummary:
    return RunSummary(run_id=run["runId"], status=run["status"], created=float(run.get("creationTime") or 0))
