"""Billing and SMS against the simulator at 20 ms latency, beside concurrency ÷ latency."""

from __future__ import annotations

import os
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import sqlalchemy as sa

from bench import pg
from bench.jobs import CONCURRENCY
from bench.measure import Sample, run_child
from bench.result import Line
from bench.simulator import TOKEN, simulator
from bench.sizes import Sizes
from iska_pipelines.lib.storage.database import engine_for

LATENCY_MS = 20.0
IDEAL = CONCURRENCY / (LATENCY_MS / 1000)
TARGET = 0.7 * IDEAL
TIMEZONE = "Africa/Accra"
MAX_CONCURRENT_STEPS = 4


def today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def _subscribers(url: str, count: int, lids: int | None) -> None:
    """`count` active subscribers; with `lids`, paid through tomorrow and spread over that many
    fresh grid points (SMS-eligible), else due for billing today."""
    with engine_for(url).begin() as connection:
        if lids:
            connection.execute(sa.text("""
                INSERT INTO forecasts (gid, lat, lon, fcat24, fcat48, is_active, created_at, updated_at)
                SELECT g, 5 + g * 0.001, -1 + g * 0.001, 12.3456, 7.5, true, now(), now()
                FROM generate_series(1, :n) g"""), {"n": lids})
        connection.execute(sa.text("""
            INSERT INTO subscriptions (msisdn, plan, status, lat, lon, lid, sub_date, next_billing_date,
                                       last_billing_date, failed_billing_count, last_event_at,
                                       created_at, updated_at)
            SELECT (233300000000 + g)::text, CASE WHEN g % 2 = 0 THEN 'daily' ELSE 'weekly' END, 'active',
                   5.6, -0.2, CASE WHEN :lids > 0 THEN 1 + g % :lids END, now(),
                   CASE WHEN :lids > 0 THEN :today + 1 ELSE :today END,
                   CASE WHEN :lids > 0 THEN :today END, 0, now(), now(), now()
            FROM generate_series(1, :n) g"""), {"n": count, "lids": lids or 0, "today": today()})


def _due_again(url: str, rep: int) -> None:
    """Everyone due once more, for an earlier period each repetition (a fresh idempotency key)."""
    with engine_for(url).begin() as connection:
        connection.execute(sa.text("DELETE FROM billing_attempts"))
        connection.execute(sa.text(
            "UPDATE subscriptions SET next_billing_date = :day, last_billing_date = NULL, "
            "failed_billing_count = 0"), {"day": today() - timedelta(days=rep + 1)})


def _only_first(url: str, count: int) -> None:
    """The first `count` subscribers are paid up (SMS-eligible today), the rest are not."""
    with engine_for(url).begin() as connection:
        connection.execute(sa.text(
            "UPDATE subscriptions SET last_billing_date = CASE WHEN id <= :n THEN :today END"),
            {"n": count, "today": today()})


class CpuWatch:
    """Machine-wide busy share and the simulator's CPU over a measured interval."""

    def __init__(self, sim):
        self.sim = sim

    def __enter__(self):
        self.machine = psutil.cpu_times()
        self.sim_cpu = self.sim.cpu_seconds()
        return self

    def __exit__(self, *_):
        after = psutil.cpu_times()

        def busy(t):
            return t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

        def total(t):
            return busy(t) + t.idle + getattr(t, "iowait", 0)

        self.busy_share = (busy(after) - busy(self.machine)) / max(1e-9, total(after) - total(self.machine))
        self.simulator_cpu = self.sim.cpu_seconds() - self.sim_cpu


def measure(sizes: Sizes, work: Path) -> list[Line]:
    lines: list[Line] = []
    ideal = Sample([IDEAL])
    with simulator(LATENCY_MS) as sim, pg.scratch_database() as url:
        os.environ.update(BENCH_DATABASE_URL=url, BENCH_GATEWAY_TOKEN=TOKEN,
                          BENCH_BILLING_URL=f"{sim.base_url}/billing",
                          BENCH_SMS_URLS=",".join(f"{sim.base_url}/sms/{n}" for n in "abc"))
        _subscribers(url, sizes.billing, None)
        rate, cpu_client, cpu_sim, busy = Sample(), Sample(), Sample(), Sample()
        for rep in range(sizes.repeats):
            _due_again(url, rep)
            with CpuWatch(sim) as watch:
                run = run_child("billing", {})
            answered = run["metadata"]["charged"] + run["metadata"]["declined"]
            rate.add(run["metadata"]["charges_per_second"])
            cpu_client.add(1000 * run["cpu_seconds"] / answered)
            cpu_sim.add(1000 * watch.simulator_cpu / answered)
            busy.add(100 * watch.busy_share)
        lines.append(Line(
            f"Billing: due subscribers charged per second, concurrency {CONCURRENCY}, {LATENCY_MS:g} ms latency",
            f"{sizes.billing:,} due", rate, "/s", "concurrency ÷ latency", ideal,
            f"{rate.median / IDEAL:.0%}", f"≥ {TARGET:,.0f}/s (70%)", rate.median >= TARGET,
            [_profile(cpu_client, cpu_sim, busy)]))
    with simulator(LATENCY_MS) as sim, pg.scratch_database() as url:
        os.environ.update(BENCH_DATABASE_URL=url, BENCH_GATEWAY_TOKEN=TOKEN,
                          BENCH_SMS_URLS=",".join(f"{sim.base_url}/sms/{n}" for n in "abc"))
        _subscribers(url, sizes.sms, sizes.sms_grid)
        day_offset = 0
        for executor, count, label in (
                ("multiprocess", sizes.sms, f"multiprocess executor, {MAX_CONCURRENT_STEPS} step processes"),
                ("in_process", sizes.sms_in_process, "in-process executor, one process")):
            total, send, cpu_client, cpu_sim, busy = Sample(), Sample(), Sample(), Sample(), Sample()
            for _ in range(sizes.repeats):
                day = today() - timedelta(days=day_offset)
                day_offset += 1
                _only_first(url, count)
                with CpuWatch(sim) as watch:
                    run = run_child("sms", {"day": day.isoformat(), "executor": executor,
                                            "max_concurrent": MAX_CONCURRENT_STEPS,
                                            "instance_dir": str(work / f"instance-{day}")})
                shutil.rmtree(work / f"instance-{day}", ignore_errors=True)
                total.add(count / run["seconds"])
                send.add(count / run["send_seconds"])
                cpu_client.add(1000 * run["cpu_seconds"] / count)
                cpu_sim.add(1000 * watch.simulator_cpu / count)
                busy.add(100 * watch.busy_share)
            lines.append(Line(
                f"SMS: sms_job messages per second, whole run ({label})", f"{count:,} messages",
                total, "/s", "concurrency ÷ latency", ideal, f"{total.median / IDEAL:.0%}",
                f"≥ {TARGET:,.0f}/s (70%)", total.median >= TARGET, [_profile(cpu_client, cpu_sim, busy)]))
            lines.append(Line(
                f"SMS: messages per second while the batches send ({label})", f"{count:,} messages",
                send, "/s", "concurrency ÷ latency", ideal, f"{send.median / IDEAL:.0%}"))
    return lines


def _profile(client: Sample, sim: Sample, busy: Sample) -> str:
    return (f"CPU per request: client {client.median:.2f} ms, simulator {sim.median:.2f} ms; "
            f"machine busy {busy.median:.0f}% of {psutil.cpu_count()} cores")
