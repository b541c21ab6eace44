"""`sms_job` as a deployment runs it (multiprocess executor, persistent instance), in a process of
its own that a test can SIGKILL mid-send, and the re-executions that follow.

The job's resources come from ISKA_CRASH_* variables so that the step processes the executor
spawns (which rebuild the job from this module) get the same ones.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE

MAX_CONCURRENT_STEPS = 2


def crash_job() -> dg.JobDefinition:
    env = os.environ
    resources = {
        "database": IskaDatabase(url=env["ISKA_CRASH_DATABASE_URL"]),
        "sms_gateway": SmsGateway(
            urls=env["ISKA_CRASH_SMS_URL"],
            token=env["ISKA_CRASH_TOKEN"],
            concurrency=int(env.get("ISKA_CRASH_CONCURRENCY", "2")),
            timeout_seconds=5.0,
            backoff_seconds=0.01,
        ),
        "sms_outbox": SmsOutbox(
            template=DEFAULT_SMS_TEMPLATE,
            batch_size=int(env.get("ISKA_CRASH_BATCH_SIZE", "20")),
            claim_seconds=float(env.get("ISKA_CRASH_CLAIM_SECONDS", "3")),
            public_url="http://127.0.0.1:9",
            latest_hour=24,
        ),
    }
    return dg.Definitions(jobs=[sms_job], resources=resources).get_job_def("sms_job")


def run_config() -> dict:
    return {"execution": {"config": {"multiprocess": {"max_concurrent": MAX_CONCURRENT_STEPS}}}}


def run_day(instance: dg.DagsterInstance, day: str, tags: dict | None = None) -> dg.ExecutionResult:
    return dg.execute_job(
        dg.reconstructable(crash_job),
        instance=instance,
        run_config=run_config(),
        tags={"dagster/partition": day, **(tags or {})},
    )


def reexecute(
    instance: dg.DagsterInstance, parent: dg.DagsterRun, options: dg.ReexecutionOptions
) -> dg.ExecutionResult:
    """As the UI's re-execute and the daemon's retry do: the parent's tags come along."""
    tags = {k: v for k, v in parent.tags.items() if not k.startswith(".dagster")}
    return dg.execute_job(
        dg.reconstructable(crash_job),
        instance=instance,
        run_config=run_config(),
        reexecution_options=options,
        tags=tags,
    )


if __name__ == "__main__":  # python -m iska_pipelines_tests.sms_crash <day>; DAGSTER_HOME set
    with dg.DagsterInstance.get() as running:
        sys.exit(0 if run_day(running, sys.argv[1]).success else 1)
