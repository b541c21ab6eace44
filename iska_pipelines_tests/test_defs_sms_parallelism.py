"""A day's run starts one sender per batch, but no more than its executor runs at once."""

import multiprocessing

import pytest

from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.parallelism import steps_at_once

MULTIPROCESS = {"execution": {"config": {"multiprocess": {"max_concurrent": 3}}}}


@pytest.mark.parametrize(
    ("executor", "run_config", "expected"),
    [
        ("multi_or_in_process_executor", MULTIPROCESS, 3),
        ("multiprocess", {"execution": {"config": {"max_concurrent": 6}}}, 6),
        ("multi_or_in_process_executor", {"execution": {"config": {"in_process": {}}}}, 1),
        ("in_process", {}, 1),
        ("execute_in_process_executor", MULTIPROCESS, 1),
        ("multi_or_in_process_executor", {}, multiprocessing.cpu_count()),
        (
            "multi_or_in_process_executor",
            {"execution": {"config": {"multiprocess": {"max_concurrent": 0}}}},
            multiprocessing.cpu_count(),
        ),
        ("k8s_job_executor", {"execution": {"config": {"max_concurrent": 2}}}, None),
    ],
)
def test_the_senders_started_are_capped_by_the_steps_the_executor_runs_at_once(
    executor, run_config, expected
):
    assert steps_at_once(executor, run_config) == expected


def test_the_environment_default_of_the_multiprocess_executor_counts(monkeypatch):
    monkeypatch.setenv("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT", "5")
    assert steps_at_once("multi_or_in_process_executor", {}) == 5


def test_sms_job_runs_on_an_executor_whose_parallelism_is_read():
    assert steps_at_once(sms_job.executor_def.name, {}) is not None
