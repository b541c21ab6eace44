"""How many senders a day's run starts: one per batch of ISKA_SMS_BATCH_SIZE pending messages,
but no more than the run's executor runs at once.

Senders claim from the outbox until it is empty, so a sender beyond the executor's parallelism
only starts (a process, its resources, its connections) to find nothing left: on a 100k day the
multiprocess executor with 4 processes used to start 20 senders, 16 of them for nothing.

What "at once" is, per executor:
- in process: 1; multiprocess: its `max_concurrent` (or DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT,
  or one per CPU);
- `k8s_job_executor` (dagster-k8s, named `k8s`): its `max_concurrent`, the pods it runs at once
  for one run, the same key as the multiprocess executor's;
- `celery_executor` (dagster-celery, named `celery`): the workers × each one's concurrency. A
  worker's concurrency is Celery's `worker_concurrency`, which deploy/celery.yaml sets in
  `config_source` for the workers and the run alike; how many workers listen, Celery cannot tell
  a run, so ISKA_CELERY_WORKERS says it.
An executor this cannot read (an unknown one, Celery without both numbers, k8s without
`max_concurrent`) gets a sender per batch: the extra ones wait their turn and find nothing.
"""

import multiprocessing
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from iska_pipelines.defs.resources import SETTINGS

IN_PROCESS = "in_process"
# what `execute_in_process` (tests, scripts) runs a job on: one step at a time
IN_PROCESS_EXECUTORS = {IN_PROCESS, "execute_in_process_executor"}
MULTIPROCESS = "multiprocess"
# the default executor, and the multiprocess one, both read `max_concurrent` from the same place
LOCAL_EXECUTORS = {"multi_or_in_process_executor", MULTIPROCESS}
K8S = "k8s"
CELERY = "celery"


def steps_at_once(
    executor_name: str, run_config: Mapping[str, Any], celery_workers: int | None = None
) -> int | None:
    """Steps the executor runs at the same time, or None when that cannot be read."""
    execution = (run_config.get("execution") or {}).get("config") or {}
    if executor_name in IN_PROCESS_EXECUTORS or IN_PROCESS in execution:
        return 1
    if executor_name == K8S:
        return execution.get("max_concurrent") or None
    if executor_name == CELERY:
        concurrency = (execution.get("config_source") or {}).get("worker_concurrency")
        return celery_workers * int(concurrency) if celery_workers and concurrency else None
    if executor_name not in LOCAL_EXECUTORS:
        return None
    multiprocess = execution.get(MULTIPROCESS, execution) or {}
    configured = multiprocess.get("max_concurrent") or os.getenv(
        "DAGSTER_MULTIPROCESS_EXECUTOR_MAX_CONCURRENT"
    )
    return int(configured) if configured else multiprocessing.cpu_count()


def sender_count(context: dg.OpExecutionContext, pending: int, batch_size: int) -> int:
    batches = -(-pending // batch_size)
    at_once = steps_at_once(context.job_def.executor_def.name, context.run_config, SETTINGS.celery_workers)
    return batches if at_once is None else min(batches, at_once)
