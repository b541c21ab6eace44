"""Billing and SMS against the simulator at 20 ms latency, beside concurrency ÷ latency and beside
the transport's floor (bare urllib3, same simulator, same run); then the caps, checked from the
simulator's log of arrivals."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import sqlalchemy as sa

from bench import pg
from bench.jobs import CONCURRENCY
from bench.measure import ROOT, Sample, run_child
from bench.result import Line
from bench.simulator import TOKEN, Simulator, simulator
from bench.sizes import Sizes
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.simulator.rates import most_in_any_second

LATENCY_MS = 20.0
IDEAL = CONCURRENCY / (LATENCY_MS / 1000)
TARGET = 0.7 * IDEAL
FLOOR_FACTOR = 1.2  # SPEC §12: client CPU per call within 1.2× of the urllib3 floor
TIMEZONE = "Africa/Accra"
MAX_CONCURRENT_STEPS = 4
BILLING_CAP = 200.0  # calls per second, below what the machine can do
SMS_CAP = 100.0  # per SMS URL (three URLs)
CAP_SHARE = 0.95  # SPEC §12: at least 95% of a cap when the machine allows


def today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def _subscribers(url: str, count: int, lids: int | None) -> None:
    """`count` active subscribers; with `lids`, paid through tomorrow and spread over that many
    fresh grid points (SMS-eligible), else due for billing today."""
    with engine_for(url).begin() as connection:
        if lids:
            connection.execute(
                sa.text("""
                INSERT INTO forecasts (gid, lat, lon, fcat24, fcat48, is_active, created_at, updated_at)
                SELECT g, 5 + g * 0.001, -1 + g * 0.001, 12.3456, 7.5, true, now(), now()
                FROM generate_series(1, :n) g"""),
                {"n": lids},
            )
        connection.execute(
            sa.text("""
            INSERT INTO subscriptions (msisdn, plan, status, lat, lon, lid, sub_date, next_billing_date,
                                       last_billing_date, failed_billing_count, last_event_at,
                                       created_at, updated_at)
            SELECT (233300000000 + g)::text, CASE WHEN g % 2 = 0 THEN 'daily' ELSE 'weekly' END, 'active',
                   5.6, -0.2, CASE WHEN :lids > 0 THEN 1 + g % :lids END, now(),
                   CASE WHEN :lids > 0 THEN :today + 1 ELSE :today END,
                   CASE WHEN :lids > 0 THEN :today END, 0, now(), now(), now()
            FROM generate_series(1, :n) g"""),
            {"n": count, "lids": lids or 0, "today": today()},
        )


def _due_again(url: str, rep: int, count: int | None = None) -> None:
    """Everyone (or the first `count`) due once more, for an earlier period each repetition (a
    fresh idempotency key)."""
    with engine_for(url).begin() as connection:
        connection.execute(sa.text("DELETE FROM billing_attempts"))
        connection.execute(
            sa.text(
                "UPDATE subscriptions SET next_billing_date = CASE WHEN id <= :n THEN :day ELSE :later END, "
                "last_billing_date = NULL, failed_billing_count = 0"
            ),
            {
                "day": today() - timedelta(days=rep + 1),
                "later": today() + timedelta(days=30),
                "n": count if count is not None else 2**31 - 1,
            },
        )


def _only_first(url: str, count: int) -> None:
    """The first `count` subscribers are paid up (SMS-eligible today), the rest are not."""
    with engine_for(url).begin() as connection:
        connection.execute(
            sa.text("UPDATE subscriptions SET last_billing_date = CASE WHEN id <= :n THEN :today END"),
            {"n": count, "today": today()},
        )


class CpuWatch:
    """Machine-wide busy share and the simulator's CPU over a measured interval."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def __enter__(self) -> CpuWatch:
        self.machine = psutil.cpu_times()
        self.sim_cpu = self.sim.cpu_seconds()
        return self

    def __exit__(self, *_: object) -> None:
        after = psutil.cpu_times()

        def busy(t: psutil._common.scputimes) -> float:
            return t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

        def total(t: psutil._common.scputimes) -> float:
            return busy(t) + t.idle + getattr(t, "iowait", 0)

        self.busy_share = (busy(after) - busy(self.machine)) / max(1e-9, total(after) - total(self.machine))
        self.simulator_cpu = self.sim.cpu_seconds() - self.sim_cpu


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Floor:
    """Bare urllib3 against the same simulator, one measurement per repetition of a row."""

    def __init__(self) -> None:
        self.rate, self.cpu = Sample(), Sample()

    def measure(self, urls: list[str], count: int, tag: str) -> None:
        run = run_child(
            "floor", {"urls": urls, "token": TOKEN, "requests": count, "concurrency": CONCURRENCY, "tag": tag}
        )
        self.rate.add(count / run["seconds"])
        self.cpu.add(1000 * run["cpu_seconds"] / count)


def _floor_lines(what: str, size: str, cpu: Sample, floor: Floor) -> list[Line]:
    ratio = cpu.median / floor.cpu.median
    return [
        Line(
            f"{what}: client CPU per call, database writes included",
            size,
            cpu,
            "ms",
            "bare urllib3 from 32 threads, same simulator (the floor)",
            floor.cpu,
            f"{ratio:.2f}×",
            f"≤ {FLOOR_FACTOR}× the floor",
            ratio <= FLOOR_FACTOR,
        )
    ]


def achieved_rate(times: list[float]) -> float:
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def _cap_lines(what: str, size: str, cap: float, per_url: dict[str, list[float]]) -> list[Line]:
    most = max(most_in_any_second(times) for times in per_url.values())
    rate = min(achieved_rate(times) for times in per_url.values())
    reference = Sample([cap])
    return [
        Line(
            f"{what}: most calls in any one-second window at the gateway (simulator's arrival log)",
            size,
            Sample([most]),
            "/s",
            "the cap",
            reference,
            f"{most / cap:.0%}",
            "≤ the cap",
            most <= cap,
        ),
        Line(
            f"{what}: achieved rate at the gateway (calls ÷ span of arrivals)",
            size,
            Sample([rate]),
            "/s",
            "the cap",
            reference,
            f"{rate / cap:.0%}",
            f"≥ {CAP_SHARE:.0%} of the cap",
            rate >= CAP_SHARE * cap,
        ),
    ]


def _billing(sizes: Sizes, sim: Simulator, url: str) -> list[Line]:
    ideal = Sample([IDEAL])
    _subscribers(url, max(sizes.billing, sizes.capped), None)
    rate, cpu_client, cpu_sim, busy, floor = Sample(), Sample(), Sample(), Sample(), Floor()
    for rep in range(sizes.repeats):
        floor.measure([f"{sim.base_url}/billing"], sizes.billing, f"billing-{rep}")
        _due_again(url, rep, sizes.billing)
        with CpuWatch(sim) as watch:
            run = run_child("billing", {})
        answered = run["metadata"]["charged"] + run["metadata"]["declined"]
        rate.add(run["metadata"]["charges_per_second"])
        cpu_client.add(1000 * run["cpu_seconds"] / answered)
        cpu_sim.add(1000 * watch.simulator_cpu / answered)
        busy.add(100 * watch.busy_share)
    size = f"{sizes.billing:,} due"
    lines = [
        Line(
            f"Billing: due subscribers charged per second, concurrency {CONCURRENCY}, {LATENCY_MS:g} ms latency",
            size,
            rate,
            "/s",
            "concurrency ÷ latency",
            ideal,
            f"{rate.median / IDEAL:.0%}",
            f"≥ {TARGET:,.0f}/s (70%)",
            rate.median >= TARGET,
            [_profile(cpu_client, cpu_sim, busy)],
        ),
        Line(
            "Bare urllib3 floor (billing endpoint): calls per second from 32 threads",
            f"{sizes.billing:,} calls",
            floor.rate,
            "/s",
            "concurrency ÷ latency",
            ideal,
            f"{floor.rate.median / IDEAL:.0%}",
        ),
        *_floor_lines("Billing", size, cpu_client, floor),
    ]
    _due_again(url, sizes.repeats, sizes.capped)
    since = time.time()
    with _environment(BENCH_BILLING_MAX_TPS=str(BILLING_CAP)):
        run_child("billing", {})
    arrivals = sim.arrivals(since)
    lines += _cap_lines(
        f"Billing capped at BILLING_MAX_TPS={BILLING_CAP:g}",
        f"{sizes.capped:,} charges",
        BILLING_CAP,
        {"billing": arrivals["billing"]},
    )
    return lines


def _sms_run(sim: Simulator, url: str, work: Path, day: date, count: int, executor: str) -> dict:
    _only_first(url, count)
    return run_child(
        "sms",
        {
            "day": day.isoformat(),
            "executor": executor,
            "max_concurrent": MAX_CONCURRENT_STEPS,
            "instance_dir": str(work / f"instance-{day}"),
        },
    )


def _sms(sizes: Sizes, sim: Simulator, url: str, work: Path) -> list[Line]:
    ideal = Sample([IDEAL])
    urls = [f"{sim.base_url}/sms/{n}" for n in "abc"]
    _subscribers(url, max(sizes.sms, sizes.capped), sizes.sms_grid)
    days = (today() - timedelta(days=offset) for offset in range(1000))
    lines: list[Line] = []
    measured: dict[str, tuple[Sample, Sample, Sample]] = {}
    for executor, count, label in (
        ("multiprocess", sizes.sms, f"multiprocess executor, {MAX_CONCURRENT_STEPS} step processes"),
        ("in_process", sizes.sms_in_process, "in-process executor, one process"),
    ):
        total, send, cpu_client, cpu_sim, busy, floor = (
            Sample(),
            Sample(),
            Sample(),
            Sample(),
            Sample(),
            Floor(),
        )
        for rep in range(sizes.repeats):
            floor.measure(urls, count, f"{executor}-{rep}")
            day = next(days)
            with CpuWatch(sim) as watch:
                run = _sms_run(sim, url, work, day, count, executor)
            shutil.rmtree(work / f"instance-{day}", ignore_errors=True)
            total.add(count / run["seconds"])
            send.add(count / run["send_seconds"])
            cpu_client.add(1000 * run["cpu_seconds"] / count)
            cpu_sim.add(1000 * watch.simulator_cpu / count)
            busy.add(100 * watch.busy_share)
        size = f"{count:,} messages"
        measured[executor] = (total, send, cpu_client)
        lines += [
            Line(
                f"SMS: sms_job messages per second, whole run ({label})",
                size,
                total,
                "/s",
                "concurrency ÷ latency",
                ideal,
                f"{total.median / IDEAL:.0%}",
                f"≥ {TARGET:,.0f}/s (70%)",
                total.median >= TARGET,
                [_profile(cpu_client, cpu_sim, busy)],
            ),
            Line(
                f"SMS: messages per second while the batches send ({label})",
                size,
                send,
                "/s",
                "concurrency ÷ latency",
                ideal,
                f"{send.median / IDEAL:.0%}",
            ),
            Line(
                f"Bare urllib3 floor (SMS endpoints, beside the {executor} runs): calls per second",
                f"{count:,} calls",
                floor.rate,
                "/s",
                "concurrency ÷ latency",
                ideal,
                f"{floor.rate.median / IDEAL:.0%}",
            ),
            *_floor_lines(f"SMS ({label})", size, cpu_client, floor),
        ]
    lines += _celery(sizes, url, work, days, measured["multiprocess"])
    day = next(days)
    since = time.time()
    with _environment(BENCH_SMS_MAX_TPS=str(SMS_CAP)):
        _sms_run(sim, url, work, day, sizes.capped, "multiprocess")
    shutil.rmtree(work / f"instance-{day}", ignore_errors=True)
    arrivals = sim.arrivals(since)
    lines += _cap_lines(
        f"SMS capped at SMS_MAX_TPS={SMS_CAP:g} per URL (3 URLs, multiprocess)",
        f"{sizes.capped:,} messages",
        SMS_CAP,
        {name: times for name, times in arrivals.items() if name.startswith("sms/")},
    )
    return lines


CELERY_WORKERS = 2


def _celery(
    sizes: Sizes, url: str, work: Path, days: Iterator[date], multiprocess: tuple[Sample, Sample, Sample]
) -> list[Line]:
    """The same day on dagster-celery: two workers (deploy/celery.yaml: one step each, so two
    senders) and a RabbitMQ of the harness's own, against the simulator and database the
    multiprocess rows used, right after them. Client CPU: the run process and the workers."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from iska_pipelines_tests.rabbitmq import RabbitMQ, rabbitmq_available
    from iska_pipelines_tests.sms_celery import celery_workers

    missing = rabbitmq_available()
    if missing:
        print(f"[bench] celery rows skipped: {missing}", flush=True)
        return []
    count = sizes.sms
    home = work / "celery-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))):
        pass  # Dagster's storage made once, before the workers open it at the same time
    total, send, cpu = Sample(), Sample(), Sample()
    with RabbitMQ(work / "rabbitmq") as broker:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DAGSTER_HOME": str(home),
            "ISKA_SMS_EXECUTOR": "celery",
            "ISKA_CELERY_BROKER_URL": broker.url,
            "ISKA_CELERY_WORKERS": str(CELERY_WORKERS),
        }
        names = [f"bench{n}" for n in range(CELERY_WORKERS)]
        with celery_workers(names, env, work, nice=[]) as workers, _environment(**env):
            for _rep in range(sizes.repeats):
                day = next(days)
                _only_first(url, count)
                before = sum(worker.cpu_seconds() for worker in workers.values())
                run = run_child(
                    "sms", {"day": day.isoformat(), "executor": "celery", "instance_dir": str(home)}
                )
                used = run["cpu_seconds"] + sum(worker.cpu_seconds() for worker in workers.values()) - before
                total.add(count / run["seconds"])
                send.add(count / run["send_seconds"])
                cpu.add(1000 * used / count)
    label = f"celery executor, {CELERY_WORKERS} workers"
    reference = "the multiprocess executor (4 step processes), same run"
    multi_total, multi_send, multi_cpu = multiprocess
    size = f"{count:,} messages"
    return [
        Line(
            f"SMS: sms_job messages per second, whole run ({label})",
            size,
            total,
            "/s",
            reference,
            multi_total,
            f"{total.median / multi_total.median:.0%}",
        ),
        Line(
            f"SMS: messages per second while the batches send ({label})",
            size,
            send,
            "/s",
            reference,
            multi_send,
            f"{send.median / multi_send.median:.0%}",
        ),
        Line(
            f"SMS ({label}): client CPU per message, run process and workers, database writes included",
            size,
            cpu,
            "ms",
            reference,
            multi_cpu,
            f"{cpu.median / multi_cpu.median:.2f}×",
        ),
    ]


def _per_cpu(lines: list[Line]) -> list[Line]:
    """The multiprocess run's client CPU per message against the in-process run's."""
    cpu = {line.measurement: line.result for line in lines if "client CPU per call" in line.measurement}
    multi = next((s for m, s in cpu.items() if "multiprocess" in m), None)
    single = next((s for m, s in cpu.items() if "in-process" in m), None)
    if multi is None or single is None:
        return []
    ratio = multi.median / single.median
    return [
        Line(
            "SMS: client CPU per message, multiprocess run",
            "",
            multi,
            "ms",
            "the in-process run",
            single,
            f"{ratio:.2f}×",
            "≤ in-process",
            ratio <= 1.0,
        )
    ]


KANNEL_USER, KANNEL_PASSWORD = "bench", "bench-sendsms"


def _kannel(sizes: Sizes, sim: Simulator, url: str, work: Path) -> list[Line]:
    """The same in-process day twice, through a real Kannel 1.4.5 (bearerbox, smsbox, fakesmsc
    on loopback) over the `kannel` protocol and through the simulator over `iska`, alternating
    each repetition, so both see the same machine."""
    from iska_pipelines_tests.kannel import KannelGateway, kannel_available

    missing = kannel_available()
    if missing:
        print(f"[bench] kannel rows skipped: {missing}", flush=True)
        return []
    count = sizes.kannel
    _subscribers(url, count, sizes.sms_grid)
    days = (today() - timedelta(days=offset) for offset in range(1000))
    rate = {"kannel": Sample(), "iska": Sample()}
    cpu = {"kannel": Sample(), "iska": Sample()}
    with KannelGateway(work / "kannel", KANNEL_USER, KANNEL_PASSWORD) as kannel:
        routes = {
            "kannel": {
                "BENCH_SMS_URLS": kannel.sendsms_url,
                "BENCH_SMS_PROTOCOL": "kannel",
                "BENCH_GATEWAY_TOKEN": KANNEL_PASSWORD,
                "BENCH_SMS_USERNAME": KANNEL_USER,
                "BENCH_SMS_SENDER": "1400",
            },
            "iska": {"BENCH_SMS_URLS": f"{sim.base_url}/sms/a", "BENCH_SMS_PROTOCOL": "iska"},
        }
        for _rep in range(sizes.repeats):
            for protocol, env in routes.items():
                day = next(days)
                with _environment(**env):
                    run = _sms_run(sim, url, work, day, count, "in_process")
                rate[protocol].add(count / run["send_seconds"])
                cpu[protocol].add(1000 * run["cpu_seconds"] / count)
        kannel.wait_received(count * sizes.repeats, timeout=120)
    size = f"{count:,} messages"
    return [
        Line(
            "SMS through a real Kannel 1.4.5 (smsbox sendsms, fakesmsc), in-process sms_job: messages per second while sending",
            size,
            rate["kannel"],
            "/s",
            "the iska protocol against the simulator (0 ms), same run",
            rate["iska"],
            f"{rate['kannel'].median / rate['iska'].median:.0%}",
        ),
        Line(
            "SMS through a real Kannel 1.4.5: client CPU per message, database writes included",
            size,
            cpu["kannel"],
            "ms",
            "the iska protocol against the simulator, same run",
            cpu["iska"],
            f"{cpu['kannel'].median / cpu['iska'].median:.2f}×",
        ),
    ]


def measure(sizes: Sizes, work: Path, parts: Callable[[str], bool] = lambda _p: True) -> list[Line]:
    lines: list[Line] = []
    if parts("billing"):
        with (
            simulator(LATENCY_MS) as sim,
            pg.scratch_database() as url,
            _environment(
                BENCH_DATABASE_URL=url, BENCH_GATEWAY_TOKEN=TOKEN, BENCH_BILLING_URL=f"{sim.base_url}/billing"
            ),
        ):
            lines += _billing(sizes, sim, url)
    if parts("sms"):
        with (
            simulator(LATENCY_MS) as sim,
            pg.scratch_database() as url,
            _environment(
                BENCH_DATABASE_URL=url,
                BENCH_GATEWAY_TOKEN=TOKEN,
                BENCH_SMS_URLS=",".join(f"{sim.base_url}/sms/{n}" for n in "abc"),
            ),
        ):
            sms_lines = _sms(sizes, sim, url, work)
            lines += sms_lines + _per_cpu(sms_lines)
    if parts("kannel"):
        with (
            simulator(0.0) as sim,
            pg.scratch_database() as url,
            _environment(BENCH_DATABASE_URL=url, BENCH_GATEWAY_TOKEN=TOKEN),
        ):
            lines += _kannel(sizes, sim, url, work)
    return lines


def _profile(client: Sample, sim: Sample, busy: Sample) -> str:
    return (
        f"CPU per request: client {client.median:.2f} ms, simulator {sim.median:.2f} ms; "
        f"machine busy {busy.median:.0f}% of {psutil.cpu_count()} cores"
    )
