"""A day's run starts one sender per batch, but no more than its executor runs at once."""

import multiprocessing
from pathlib import Path

import pytest
import yaml

from iska_pipelines.defs.sms.executors import CELERY_RUN_CONFIG
from iska_pipelines.defs.sms.jobs import build_sms_job, sms_job
from iska_pipelines.defs.sms.parallelism import steps_at_once
from iska_pipelines.defs.sms.partitions import sms_days

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
        # dagster-k8s's k8s_job_executor: the pods it runs at once for one run
        ("k8s", {"execution": {"config": {"max_concurrent": 2}}}, 2),
        ("k8s", {"execution": {"config": {"job_namespace": "iska"}}}, None),
        ("some_other_executor", {"execution": {"config": {"max_concurrent": 2}}}, None),
    ],
)
def test_the_senders_started_are_capped_by_the_steps_the_executor_runs_at_once(
    executor, run_config, expected
):
    assert steps_at_once(executor, run_config) == expected


def celery(concurrency: int | None) -> dict:
    source = {} if concurrency is None else {"worker_concurrency": concurrency}
    return {"execution": {"config": {"broker": "pyamqp://", "config_source": source}}}


@pytest.mark.parametrize(
    ("workers", "run_config", "expected"),
    [
        (2, celery(1), 2),
        (3, celery(4), 12),
        (None, celery(1), None),  # how many workers listen, Celery cannot tell a run
        (2, celery(None), None),  # Celery's default: one per CPU of a machine the run cannot see
    ],
)
def test_on_celery_the_senders_are_capped_by_the_workers_times_their_concurrency(
    workers, run_config, expected
):
    assert steps_at_once("celery", run_config, celery_workers=workers) == expected


def test_the_celery_run_config_is_the_workers_file_and_caps_senders_at_the_workers():
    ROOT = Path(__file__).resolve().parents[1]
    shipped = yaml.safe_load((ROOT / "deploy" / "celery.yaml").read_text())
    assert shipped == CELERY_RUN_CONFIG
    job = build_sms_job(sms_days, executor="celery")
    assert job.executor_def.name == "celery"
    assert job.get_run_config_for_partition_key("2026-12-08") == CELERY_RUN_CONFIG
    assert steps_at_once(job.executor_def.name, CELERY_RUN_CONFIG, celery_workers=2) == 2


def test_the_environment_default_of_the_multiprocess_executor_counts(monkeypatch):
    monkeypatch.setenv("DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT", "5")
    assert steps_at_once("multi_or_in_process_executor", {}) == 5


def test_sms_job_runs_on_an_executor_whose_parallelism_is_read():
    assert steps_at_once(sms_job.executor_def.name, {}) is not None
