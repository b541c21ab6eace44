"""One measured run in a fresh process, so its time and peak memory are its own.

`python -m bench.child materialize '{"database_url": ..., "data_dir": ..., "file": ..., "kind": ...}'`
drops the file into the inbox, registers its partition and materialises the asset in process, as
the daemon's run would; the last stdout line is JSON with the wall time and peak RSS.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import time
from pathlib import Path

import dagster as dg
import psutil

from iska_pipelines.defs.forecasts.assets import forecasts
from iska_pipelines.defs.inbox.partitions import partitions_for
from iska_pipelines.defs.resources import IskaDatabase, IskaInbox, IskaRules
from iska_pipelines.defs.subscriptions.assets import subscriptions
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.inbox.folders import InboxFolders, partition_key, sha256_of
from iska_pipelines.lib.vocabulary import FileKind


def materialize(args: dict) -> dict:
    kind = FileKind(args["kind"])
    folders = InboxFolders(Path(args["data_dir"]))
    folders.ensure()
    source = Path(args["file"])
    dropped = folders.inbox / kind / source.name
    shutil.copyfile(source, dropped)
    key = partition_key(kind, dropped.name, sha256_of(dropped))
    engine_for(args["database_url"])  # schema upgrade before the clock starts
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(partitions_for(kind).name, [key])
    resources = {
        "database": IskaDatabase(url=args["database_url"]),
        "inbox": IskaInbox(data_dir=str(folders.root), settle_seconds=0),
        "rules": IskaRules(),
    }
    asset = forecasts if kind is FileKind.FORECASTS else subscriptions
    baseline = psutil.Process().memory_info().rss
    started = time.perf_counter()
    result = dg.materialize(
        [asset], partition_key=key, instance=instance, resources=resources, raise_on_error=True
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    events = result.get_asset_materialization_events()
    metadata = {
        k: v.value
        for k, v in events[-1].materialization.metadata.items()
        if isinstance(v.value, (int, float, str))
    }
    return {
        "seconds": seconds,
        "peak_rss_mb": peak_kb / 1024,
        "baseline_rss_mb": baseline / 2**20,
        "metadata": metadata,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, of the step processes it waited for, and of its children still
    alive with theirs (a forkserver and the step processes it forked and reaped)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    alive = 0.0
    for child in psutil.Process().children():
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        alive += times.user + times.system + times.children_user + times.children_system
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + alive


def _step_window(instance: dg.DagsterInstance, run_id: str, prefix: str) -> float:
    """Seconds from the first `prefix` step's start to the last one's success."""
    starts, ends = [], []
    for record in instance.all_logs(run_id):
        step = record.step_key or ""
        if not step.startswith(prefix) or record.dagster_event is None:
            continue
        if record.dagster_event.event_type_value == "STEP_START":
            starts.append(record.timestamp)
        elif record.dagster_event.event_type_value == "STEP_SUCCESS":
            ends.append(record.timestamp)
    return max(ends) - min(starts) if starts and ends else float("nan")


def billing(args: dict) -> dict:
    from bench.jobs import bench_billing_job

    job = bench_billing_job()
    instance = dg.DagsterInstance.ephemeral()
    cpu = _cpu_seconds()
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=True)
    seconds = time.perf_counter() - started
    step = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = {k: v.value for k, v in step.event_specific_data.metadata.items()}
    return {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu, "metadata": metadata}


def sms(args: dict) -> dict:
    """One day of sms_job: in process, or with the multiprocess executor as a deployment runs it."""
    from bench.jobs import bench_sms_job
    from iska_pipelines.defs.sms.executors import STEP_PROCESSES

    day = args["day"]
    cpu = _cpu_seconds()
    if args["executor"] == "celery":
        return _sms_on_celery(day, args["instance_dir"], cpu)
    if args["executor"] == "in_process":
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        result = bench_sms_job().execute_in_process(partition_key=day, instance=instance, raise_on_error=True)
        seconds = time.perf_counter() - started
        run_id, success = result.run_id, result.success
    else:
        Path(args["instance_dir"]).mkdir(parents=True, exist_ok=True)
        with dg.instance_for_test(temp_dir=args["instance_dir"]) as instance:
            started = time.perf_counter()
            result = dg.execute_job(
                dg.reconstructable(bench_sms_job),
                instance=instance,
                tags={"dagster/partition": day},
                run_config={
                    "execution": {
                        "config": {
                            "multiprocess": {
                                "max_concurrent": args["max_concurrent"],
                                **({} if args.get("start_method") == "spawn" else STEP_PROCESSES),
                            }
                        }
                    }
                },
            )
            seconds = time.perf_counter() - started
            run_id, success = result.run_id, result.success
            window = _step_window(instance, run_id, "send_sms_batch")
    if args["executor"] == "in_process":
        window = _step_window(instance, run_id, "send_sms_batch")
    if not success:
        raise RuntimeError(f"sms_job for {day} failed")
    return {"seconds": seconds, "send_seconds": window, "cpu_seconds": _cpu_seconds() - cpu}


def _sms_on_celery(day: str, instance_dir: str, cpu: float) -> dict:
    """The run as the schedule starts it (the partition's run config, deploy/celery.yaml); its
    steps on the workers the harness started. CPU here is the run process's own: the workers'
    is measured by the harness."""
    from dagster._core.instance.ref import InstanceRef

    from bench.jobs import bench_celery_sms_job

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(instance_dir)) as instance:
        started = time.perf_counter()
        result = dg.execute_job(
            dg.reconstructable(bench_celery_sms_job),
            instance=instance,
            run_config=bench_celery_sms_job().get_run_config_for_partition_key(day),
            tags={"dagster/partition": day},
        )
        seconds = time.perf_counter() - started
        window = _step_window(instance, result.run_id, "send_sms_batch")
    if not result.success:
        raise RuntimeError(f"sms_job on celery for {day} failed")
    return {"seconds": seconds, "send_seconds": window, "cpu_seconds": _cpu_seconds() - cpu}


def floor(args: dict) -> dict:
    """The transport's floor: bare urllib3 from `concurrency` threads, the same JSON bodies and
    headers ISKA sends, the answer read and parsed; nothing else (no retries, no database)."""
    import threading

    import urllib3

    urls, token, count = args["urls"], args["token"], args["requests"]
    sms = "/sms/" in urls[0]
    pool = urllib3.PoolManager(maxsize=args["concurrency"], block=True, retries=False)
    turn = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                n = next(turn, None)
            if n is None:
                return
            if sms:
                body = {
                    "msisdn": f"23340{n:07d}",
                    "msgid": f"floor-{args['tag']}-{n}",
                    "text": "Iska 2026-01-01: next 24h 12.3, next 48h 7.5",
                    "callback": "http://127.0.0.1:9/cb?sig=00",
                }
                headers = {"Auth-Key": token, "Content-Type": "application/json"}
            else:
                body = {"msisdn": f"23340{n:07d}", "sub_plan": 11}
                headers = {
                    "Auth-Key": token,
                    "Idempotency-Key": f"floor-{args['tag']}-{n}",
                    "Content-Type": "application/json",
                }
            response = pool.request(
                "POST", urls[n % len(urls)], body=json.dumps(body).encode(), headers=headers
            )
            json.loads(response.data)

    threads = [threading.Thread(target=work) for _ in range(args["concurrency"])]
    cpu = _cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu, "requests": count}


TASKS = {"materialize": materialize, "billing": billing, "sms": sms, "floor": floor}

if __name__ == "__main__":
    print(json.dumps(TASKS[sys.argv[1]](json.loads(sys.argv[2]))))
