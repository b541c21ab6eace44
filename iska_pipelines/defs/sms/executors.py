"""Where `sms_job`'s steps run (ISKA_SMS_EXECUTOR), with the run config that goes with it.

- `multiprocess` (default): step processes on the run's own machine, forked from a server that
  has imported ISKA once (`STEP_PROCESSES`).
- `celery`: each step is a Celery task that a worker on any machine picks up from the broker
  (dagster-celery, the `celery` extra). `CELERY_RUN_CONFIG` is deploy/celery.yaml, the file the
  workers start from (`dagster-celery worker start -y deploy/celery.yaml`), so the run and the
  workers agree on the broker and on each worker's concurrency, which parallelism.py reads. A
  worker that dies mid-step must not lose the step: with `task_acks_late` the broker keeps a
  task until its step has finished, and gives it to another worker when the one running it goes
  away (its connection closes, or its pool process dies: `task_reject_on_worker_lost`). The
  redelivered sender claims what is still pending, as every sender does, so nothing is sent
  twice and the run goes on to green without anyone re-executing it.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from iska_pipelines.lib.errors import ConfigurationError

# Step processes fork from a server that imported ISKA and Dagster's storage once ("__main__" is
# the run worker's own entry point), instead of each spawning a fresh interpreter that imports
# them again: with spawn, imports were most of a multiprocess run's client CPU per message.
PRELOAD = [
    "__main__",
    "iska_pipelines.step_preload",
    "dagster._core.storage.runs",
    "dagster._core.storage.event_log",
    "dagster._core.storage.schedules",
    "dagster_postgres",
    "psycopg2",
    "upath",
]
STEP_PROCESSES = {"start_method": {"forkserver": {"preload_modules": PRELOAD}}}
MULTIPROCESS_RUN_CONFIG: dict[str, Any] = {"execution": {"config": {"multiprocess": STEP_PROCESSES}}}

CELERY_RUN_CONFIG: dict[str, Any] = {
    "execution": {
        "config": {
            "broker": {"env": "ISKA_CELERY_BROKER_URL"},
            "backend": "rpc://",
            "config_source": {
                # one step at a time per worker: a sender is a process of 32 HTTP threads that
                # the GIL caps near 1,200 requests/s, so more senders take more workers, not more
                # threads (docs/scaling.md)
                "worker_concurrency": 1,
                "task_acks_late": True,
                "task_reject_on_worker_lost": True,
                "broker_connection_retry_on_startup": True,
            },
        }
    }
}


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor; ConfigurationError naming the extra when it is not installed."""
    try:
        from dagster_celery import celery_executor as executor
    except ImportError:
        raise ConfigurationError(
            "ISKA_SMS_EXECUTOR=celery needs dagster-celery: pip install 'iska_pipelines[celery]'"
        ) from None
    return executor


def sms_executor(name: str) -> tuple[dg.ExecutorDefinition | None, dict[str, Any]]:
    """The executor named by ISKA_SMS_EXECUTOR (None: Dagster's default, multiprocess) and the
    job's default run config for it."""
    if name == "celery":
        return celery_executor(), CELERY_RUN_CONFIG
    return None, MULTIPROCESS_RUN_CONFIG
