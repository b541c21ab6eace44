"""A day's SMS converge whatever crashes (SPEC §7), on PostgreSQL with the multiprocess executor:
the run process of `sms_job` is SIGKILLed mid-send, then re-executed the ways Dagster and an
operator do; every planned message is sent exactly once, and the run is green only then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from iska_pipelines.defs.sms.jobs import CATCH_UP_TAG
from iska_pipelines.lib.db.engine import dispose_engine, engine_for
from iska_pipelines.lib.settings import DEFAULTS
from iska_pipelines.lib.sms.claims import claim
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.sms_crash import reexecute, run_day
from iska_pipelines_tests.sms_runs import run_sms_day
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, messages, today

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIBERS = 200
KILL_AFTER = 40  # accepted messages before the kill: mid-send
DEADLINE_SECONDS = 120.0


@pytest.fixture
def day_of_200(postgres_databases, simulator, tmp_path):
    """200 paid subscribers on PostgreSQL, a simulator answering in 50 ms, a Dagster home."""
    url = postgres_databases("iska_crash").render_as_string(hide_password=False)
    engine = engine_for(url)
    day = today()
    add_forecast(engine, 1, "0.2207", "0.4554")
    for n in range(SUBSCRIBERS):
        add_subscriber(engine, f"23302{n:07d}", 1, day=day)
    simulator.configure(tokens=[SIMULATOR_TOKEN], latency_ms=50)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ISKA_CRASH_DATABASE_URL": url,
        "ISKA_CRASH_SMS_URL": simulator.sms_url("a"),
        "ISKA_CRASH_TOKEN": SIMULATOR_TOKEN,
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("ISKA_CRASH_")})
    yield engine, day, home, env
    for key in [k for k in os.environ if k.startswith("ISKA_CRASH_")]:
        del os.environ[key]
    dispose_engine(url)


def accepted(simulator) -> int:
    return simulator.stats()["sms"]["counts"].get("accepted", 0)


def start_and_kill_mid_send(simulator, day, env, *, whole_group: bool) -> None:
    """Run the day in a process of its own; SIGKILL it once KILL_AFTER messages are accepted:
    the run process alone (its step processes live on), or with its step processes."""
    child = subprocess.Popen(
        [sys.executable, "-m", "iska_pipelines_tests.sms_crash", day.isoformat()],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while accepted(simulator) < KILL_AFTER:
            assert child.poll() is None, "the run ended before the kill"
            assert time.monotonic() < deadline, "no message went out in time"
            time.sleep(0.05)  # polling the simulator's count, not waiting for a guess
    finally:
        if whole_group:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            child.kill()
        child.wait()


def the_killed_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The killed run, marked failed as the code server does when its run process dies."""
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.STARTED
    instance.report_run_failed(run)
    return instance.get_run_by_id(run.run_id)


def assert_every_message_sent_exactly_once(engine, simulator, day) -> None:
    rows = messages(engine, day)
    assert len(rows) == SUBSCRIBERS
    assert {r.status for r in rows} == {"accepted"}
    per_msisdn = simulator.stats()["sms"]["messages"]
    assert sorted(per_msisdn) == sorted(r.msisdn for r in rows)
    assert set(per_msisdn.values()) == {1}


def test_a_run_killed_mid_send_then_reexecuted_from_failure_sends_every_message_once(day_of_200, simulator):
    engine, day, home, env = day_of_200
    start_and_kill_mid_send(simulator, day, env, whole_group=True)
    assert any(r.status == "pending" for r in messages(engine, day))
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        killed = the_killed_run(instance)

        retried = reexecute(instance, killed, dg.ReexecutionOptions.from_failure(killed.run_id, instance))

        assert retried.success
    assert_every_message_sent_exactly_once(engine, simulator, day)


def test_a_new_run_of_the_day_started_while_the_killed_runs_steps_still_send_sends_each_once(
    day_of_200, simulator
):
    engine, day, home, env = day_of_200
    start_and_kill_mid_send(simulator, day, env, whole_group=False)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        the_killed_run(instance)

        caught_up = run_day(instance, day.isoformat(), tags={CATCH_UP_TAG: "send"})

        assert caught_up.success
    assert_every_message_sent_exactly_once(engine, simulator, day)
    # nothing was sent twice, not even with the same msgid: the live steps held their claims
    assert simulator.stats()["sms"]["counts"].get("replays", 0) == 0


def test_a_run_that_ends_with_messages_another_sender_holds_fails_and_says_how_many(
    engine, database_url, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(5):
        add_subscriber(engine, f"2330300000{n}", 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, DEFAULTS.catalog(), 30.0)
        claim(connection, day, "a sender that hangs", 5, claim_seconds=600)

    result = run_sms_day(
        database_url, instance, day, [simulator.sms_url("a")], raise_on_error=False, claim_seconds=0.5
    )

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "report_sms_day"
    assert "5 of the 5 messages for" in failure.event_specific_data.error.message
    assert simulator.stats()["sms"]["messages"] == {}
