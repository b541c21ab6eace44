"""`sms_job` on Celery as a deployment runs it: the job built with ISKA_SMS_EXECUTOR=celery and its
default run config (deploy/celery.yaml), its steps run by `dagster-celery` workers, its run in a
process of its own (`python -m iska_pipelines_tests.sms_celery <partition>`, DAGSTER_HOME set).

The job's resources come from ISKA_CELERY_TEST_* variables, so that the workers, which rebuild
the job from this module for every step, get the same ones: the database, the regions file with
each region's capped gateways, the simulator's token.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import build_sms_job
from iska_pipelines.defs.sms.partitions import sms_partitions
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.regions.config import load_regions
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE

ROOT = Path(__file__).resolve().parents[1]
CELERY_YAML = ROOT / "deploy" / "celery.yaml"
WORKER_STARTUP_SECONDS = 90.0
POLL_SECONDS = 0.1
# the senders (workers, run processes) yield the CPU to the simulator (test_sms_celery.py)
NICE = ["nice", "-n", "10"]


def celery_day_job() -> dg.JobDefinition:
    env = os.environ
    regions_file = env["ISKA_CELERY_TEST_REGIONS_FILE"]
    resources = {
        "database": IskaDatabase(url=env["ISKA_CELERY_TEST_DATABASE_URL"]),
        "sms_gateway": SmsGateway(
            urls="http://127.0.0.1:9/unused",  # the regions file names every region's gateways
            token=env["ISKA_CELERY_TEST_TOKEN"],
            concurrency=int(env.get("ISKA_CELERY_TEST_CONCURRENCY", "16")),
            timeout_seconds=5.0,
            backoff_seconds=0.01,
        ),
        "sms_outbox": SmsOutbox(
            template=DEFAULT_SMS_TEMPLATE,
            batch_size=int(env.get("ISKA_CELERY_TEST_BATCH_SIZE", "5000")),
            claim_seconds=float(env.get("ISKA_CELERY_TEST_CLAIM_SECONDS", "5")),
            public_url="http://127.0.0.1:9",
            latest_hour=24,
            regions_file=regions_file,
            send_window_minutes=24 * 60,
        ),
    }
    regions = load_regions(Path(regions_file), sms_hour=5)
    job = build_sms_job(sms_partitions(regions), executor="celery")
    return dg.Definitions(jobs=[job], resources=resources).get_job_def("sms_job")


def run_partition(instance: dg.DagsterInstance, partition: str) -> dg.ExecutionResult:
    """One region's day on the run config Dagster gives a partition's run (the schedule's, a
    backfill's, the UI's): the job's own, deploy/celery.yaml."""
    job = celery_day_job()
    return dg.execute_job(
        dg.reconstructable(celery_day_job),
        instance=instance,
        run_config=job.get_run_config_for_partition_key(partition),
        tags={"dagster/partition": partition},
    )


class CeleryWorker:
    """`dagster-celery worker start` as docs/scaling.md runs it, in a process group of its own
    (the CLI, the Celery worker it starts and that worker's pool), so that it can be killed whole
    as a lost machine would be."""

    def __init__(self, name: str, env: dict[str, str], log: Path, nice: list[str] = NICE) -> None:
        self.name = name
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [
                *nice,
                str(Path(sys.executable).with_name("dagster-celery")),
                *["worker", "start", "-A", "dagster_celery.app", "-y", str(CELERY_YAML)],
                *["-n", name, "-i", "iska_pipelines.step_preload", "-l", "INFO"],
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cpu_seconds(self) -> float:
        """CPU time of the worker's processes (the CLI, the Celery worker, its pool) so far."""
        import psutil

        total = 0.0
        try:
            root = psutil.Process(self.process.pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
        return total

    def kill(self) -> None:
        """SIGKILL to the worker's whole group: no shutdown, no acknowledgement, no goodbye."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)  # Celery's warm shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def answering(broker_url: str, timeout: float = 1.0) -> set[str]:
    """The names (before the @) of the workers that answer a ping on the broker."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(timeout=timeout) or []
    finally:
        app.close()
    return {name.split("@")[0] for reply in replies for name in reply}


@contextmanager
def celery_workers(
    names: list[str], env: dict[str, str], folder: Path, nice: list[str] = NICE
) -> Iterator[dict[str, CeleryWorker]]:
    """The workers, started together and yielded once every one answers on the broker. `nice`:
    the command they run under (the tests' senders yield the CPU to the simulator; the bench's
    do not, to be measured as the multiprocess executor's step processes are)."""
    workers = {name: CeleryWorker(name, env, folder / f"worker-{name}.log", nice) for name in names}
    try:
        deadline = time.monotonic() + WORKER_STARTUP_SECONDS
        while not set(names) <= answering(env["ISKA_CELERY_BROKER_URL"]):
            for name, worker in workers.items():
                if worker.process.poll() is not None:
                    log = (folder / f"worker-{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"celery worker {name} exited while starting:\n{log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery workers {names} did not answer within {WORKER_STARTUP_SECONDS} s")
            time.sleep(POLL_SECONDS)  # polling interval, not a synchronisation delay
        yield workers
    finally:
        for worker in workers.values():
            worker.stop()


if __name__ == "__main__":
    with dg.DagsterInstance.get() as running:
        sys.exit(0 if run_partition(running, sys.argv[1]).success else 1)
