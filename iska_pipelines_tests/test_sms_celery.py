"""The daily SMS scaled out on a real distributed engine (docs/scaling.md): `sms_job` on
dagster-celery with two Celery workers and a RabbitMQ broker of the test's own, on PostgreSQL,
a day of two regions whose gateways are capped. One worker is SIGKILLed while it sends, as a lost
machine would be; the day converges all the same, in the same run, with nobody re-executing it:
every planned message is accepted once (the simulator counts each msgid once), no gateway gets
more than its cap in any second (the simulator's arrival log), both runs are green.

The simulator is a process of its own (`iska simulator`), so its arrival times are not skewed by
this process. ISKA_CELERY_TEST_MESSAGES sets the day's size (default 20,000).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.instance.ref import InstanceRef

from bench.simulator import TOKEN as GATEWAY_TOKEN
from bench.simulator import simulator as separate_simulator
from iska_pipelines.lib.db.engine import dispose_engine, engine_for
from iska_pipelines.lib.db.schema import sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.simulator.rates import most_in_any_second
from iska_pipelines_tests.rabbitmq import RabbitMQ, rabbitmq_available
from iska_pipelines_tests.sms_celery import NICE, ROOT, celery_workers
from iska_pipelines_tests.sms_world import add_forecast, today

MESSAGES = int(os.environ.get("ISKA_CELERY_TEST_MESSAGES", "20000"))
CAPS = {"gh1": 150, "gh2": 150, "ng": 200}  # messages per second each gateway may receive
WORKERS = ["a", "b"]
CONCURRENCY = 8  # HTTP threads per sender: a cap of 200/s at 20 ms needs 4 in flight
KILL_AFTER = MESSAGES // 5  # accepted messages before the kill: mid-send
# a guard against a hung day on a loaded 2-core machine, not a timing check: the capped send
# alone takes MESSAGES / 2 / 300 + MESSAGES / 2 / 200 seconds (83 s for 20,000)
DEADLINE_SECONDS = 120 + MESSAGES * (1 / 600 + 1 / 400) * 3
POLL_SECONDS = 0.1


def regions_file(folder: Path, base_url: str) -> Path:
    path = folder / "regions.toml"
    path.write_text(
        f"""
[GH]
timezone = "Africa/Accra"
sms_hour = 5
language = "en"
prefixes = ["233"]
sms_gateways = [{{ url = "{base_url}/sms/gh1", max_tps = {CAPS["gh1"]} }}, {{ url = "{base_url}/sms/gh2", max_tps = {CAPS["gh2"]} }}]

[NG]
timezone = "Africa/Lagos"
sms_hour = 5
language = "en"
prefixes = ["234"]
sms_gateways = [{{ url = "{base_url}/sms/ng", max_tps = {CAPS["ng"]} }}]
""",
        encoding="utf-8",
    )
    return path


def add_paid_subscribers(engine: sa.Engine, prefix: str, region: str, count: int, lid: int) -> None:
    """`count` subscribers of `region`, paid for today, pointing at forecast `lid`: one insert."""
    now, day = utcnow(), today()
    rows = [
        {
            "msisdn": f"{prefix}{n:09d}",
            "plan": "daily",
            "status": "active",
            "region": region,
            "lat": 5.6,
            "lon": -0.2,
            "lid": lid,
            "sub_date": now,
            "last_event_at": now,
            "created_at": now,
            "updated_at": now,
            "last_billing_date": day,
            "next_billing_date": day + timedelta(days=1),
        }
        for n in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(subscriptions.insert(), rows)


@pytest.fixture
def celery_day(postgres_databases, tmp_path):
    """A day of MESSAGES paid subscribers in two regions on PostgreSQL, the simulator, a broker,
    a Dagster home, and the environment the runs and the workers share. Skipped, saying why,
    without RabbitMQ or dagster-celery (an error in CI, which has both)."""
    missing = rabbitmq_available()
    if missing:
        pytest.skip(missing)
    url = postgres_databases("iska_celery").render_as_string(hide_password=False)
    engine = engine_for(url)
    add_forecast(engine, 1, "0.2207", "0.4554")
    add_forecast(engine, 2, "0.1100", "0.3300")
    add_paid_subscribers(engine, "233", "GH", MESSAGES // 2, 1)
    add_paid_subscribers(engine, "234", "NG", MESSAGES - MESSAGES // 2, 2)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with separate_simulator(latency_ms=20) as gateway, RabbitMQ(tmp_path / "rabbitmq") as broker:
        first_on_the_cpu(gateway.process.pid)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DAGSTER_HOME": str(home),
            "ISKA_SMS_EXECUTOR": "celery",
            "ISKA_CELERY_BROKER_URL": broker.url,
            "ISKA_CELERY_WORKERS": str(len(WORKERS)),
            "ISKA_CELERY_TEST_DATABASE_URL": url,
            "ISKA_CELERY_TEST_REGIONS_FILE": str(regions_file(tmp_path, gateway.base_url)),
            "ISKA_CELERY_TEST_TOKEN": GATEWAY_TOKEN,
            "ISKA_CELERY_TEST_CONCURRENCY": str(CONCURRENCY),
        }
        yield engine, home, env, gateway, broker
    dispose_engine(url)


def first_on_the_cpu(pid: int) -> None:
    """The simulator stands for gateways on machines of their own: on this shared machine it
    gets the CPU before the senders (which run at nice 10, sms_celery.NICE), where the system
    allows it (root), so that its arrival log stamps requests when they arrive rather than
    when a starved event loop gets round to them (measured: with two busy processes beside it,
    a run the client paced at 194 calls in its busiest second arrived as 199)."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, pid, -10)


def start_run(partition: str, env: dict[str, str], folder: Path) -> subprocess.Popen:
    """A region's day in a run process of its own, as the run launcher starts it."""
    log = (folder / f"run-{partition.replace('|', '-')}.log").open("ab")
    return subprocess.Popen(
        [*NICE, sys.executable, "-m", "iska_pipelines_tests.sms_celery", partition],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def accepted(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).where(sms_messages.c.status == "accepted")
        ).scalar_one()


def sending_on(instance: dg.DagsterInstance, worker: str) -> list[str]:
    """The send steps a worker has started and that have not succeeded (its Celery engine
    events name the worker), across every run."""
    running: set[str] = set()
    for run in instance.get_runs():
        started, succeeded = set(), set()
        for record in instance.all_logs(run.run_id):
            event, step = record.dagster_event, record.step_key or ""
            if event is None or not step.startswith("send_sms_batch"):
                continue
            if event.event_type_value == "STEP_SUCCESS":
                succeeded.add(step)
            elif event.event_type_value == "ENGINE_EVENT":
                host = event.engine_event_data.metadata.get("Celery worker")
                if host is not None and str(host.value).split("@")[0] == worker:
                    started.add(step)
        running |= {f"{run.run_id[:8]}/{step}" for step in started - succeeded}
    return sorted(running)


def wait_until(condition, what: str, deadline: float, processes: list[subprocess.Popen]) -> None:
    while not condition():
        assert all(p.poll() is None for p in processes), f"a run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_SECONDS)  # polling the database and the event log, not a guess


def test_a_day_on_celery_converges_when_a_worker_is_killed_mid_send(celery_day, tmp_path):
    engine, home, env, gateway, _broker = celery_day
    day = today().isoformat()
    since = time.time()
    deadline = time.monotonic() + DEADLINE_SECONDS
    with (
        # Dagster's SQLite storage is created here, before the workers open it: two processes
        # creating it at once can both stamp its schema version
        dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance,
        celery_workers(WORKERS, env, tmp_path) as workers,
    ):
        runs = [start_run(f"{day}|{region}", env, tmp_path) for region in ("GH", "NG")]
        try:
            wait_until(
                lambda: accepted(engine) >= KILL_AFTER and sending_on(instance, "a"),
                "worker a to be sending",
                deadline,
                runs,
            )
            killed_while = sending_on(instance, "a")
            workers["a"].kill()
            (tmp_path / "killed_at").write_text(str(time.time()))
            for run in runs:
                run.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for run in runs:
                if run.poll() is None:
                    run.kill()
                    run.wait()
        assert killed_while, "worker a was not sending when it was killed"
        assert [run.returncode for run in runs] == [0, 0]
        statuses = {run.tags["dagster/partition"]: run.status for run in instance.get_runs()}
        assert statuses == {
            f"{day}|GH": dg.DagsterRunStatus.SUCCESS,
            f"{day}|NG": dg.DagsterRunStatus.SUCCESS,
        }

    with engine.connect() as connection:
        rows = connection.execute(sa.select(sms_messages.c.msisdn, sms_messages.c.status)).all()
    assert len(rows) == MESSAGES
    assert {status for _msisdn, status in rows} == {"accepted"}
    per_msisdn = gateway_stats(gateway)["sms"]["messages"]
    assert len(per_msisdn) == MESSAGES
    assert set(per_msisdn.values()) == {1}
    arrivals = gateway.arrivals(since)
    (tmp_path / "arrivals.json").write_text(json.dumps(arrivals))  # kept for a failure's analysis
    busiest = {name: most_in_any_second(arrivals.get(f"sms/{name}", [])) for name in CAPS}
    assert all(busiest[name] <= cap for name, cap in CAPS.items()), busiest


def gateway_stats(gateway) -> dict:
    import requests

    response = requests.get(f"{gateway.base_url}/stats", timeout=30)
    response.raise_for_status()
    return response.json()
