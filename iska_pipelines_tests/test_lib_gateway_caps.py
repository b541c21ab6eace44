"""Per-URL caps (SMS_MAX_TPS, BILLING_MAX_TPS) shared through the database, proven from the
gateway's side: the simulator's log of every request's arrival time."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
import sqlalchemy as sa

from bench.simulator import TOKEN as GATEWAY_TOKEN
from bench.simulator import Simulator
from bench.simulator import simulator as separate_simulator
from iska_pipelines.lib.billing.gateway import BillingClient
from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.http.fanout import fan_out
from iska_pipelines.lib.http.limiter import HEADROOM, DatabaseCaps, SharedCap
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.gateway import OutgoingSms, SmsClient
from iska_pipelines.lib.vocabulary import ChargeOutcome
from iska_pipelines.simulator.rates import most_in_any_second
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN, RunningSimulator


def messages(n: int, prefix: str = "m") -> list[OutgoingSms]:
    return [
        OutgoingSms(f"{prefix}-{i:05d}", f"2330{i:08d}", "Iska test", "http://127.0.0.1:9/cb")
        for i in range(n)
    ]


def test_the_arrival_window_counter_counts_what_it_should():
    assert most_in_any_second([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert most_in_any_second([]) == 0


@pytest.fixture
def gateway() -> Iterator[Simulator]:
    """The simulator in a process of its own: its arrival times are not held back by this
    process's GIL, so the log shows what a gateway on another host would see."""
    with separate_simulator(latency_ms=0) as running:
        yield running


def test_a_capped_sms_run_never_sends_any_url_more_than_its_cap_in_any_second(engine, gateway):
    urls = [f"{gateway.base_url}/sms/a", f"{gateway.base_url}/sms/b"]
    caps = DatabaseCaps(engine, dict.fromkeys(urls, 50))
    with SmsClient(urls, GATEWAY_TOKEN, concurrency=16, pacers=caps) as client:
        outcomes = list(client.send_all(messages(300)))
    assert all(o.accepted for o in outcomes)
    arrivals = gateway.arrivals(since=0)
    assert [len(arrivals[f"sms/{name}"]) for name in "ab"] == [150, 150]
    assert max(most_in_any_second(arrivals[f"sms/{name}"]) for name in "ab") <= 50


def test_two_processes_sharing_a_url_stay_within_its_cap_together(engine, gateway):
    """Two clients with their own caps objects, as two step processes have, on one URL."""
    url = f"{gateway.base_url}/billing"

    def charge_all(offset: int) -> None:
        with BillingClient(url, GATEWAY_TOKEN, pool_size=8, pacers=DatabaseCaps(engine, {url: 40})) as client:
            for batch in fan_out(
                range(offset, offset + 100),
                lambda n: client.charge(f"23320{n:07d}", 11, f"key-{n}"),
                concurrency=8,
            ):
                assert all(r.outcome is ChargeOutcome.SUCCESS for r in batch)

    senders = [threading.Thread(target=charge_all, args=(offset,)) for offset in (0, 1000)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    arrivals = gateway.arrivals(since=0)["billing"]
    assert len(arrivals) == 200 and most_in_any_second(arrivals) <= 40


def fake_time() -> tuple[list[float], Callable[[], float], Callable[[float], None]]:
    now = [1_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    return now, lambda: now[0], sleep


def test_slots_of_every_sharer_are_at_least_one_paced_interval_apart(engine):
    now, clock, sleep = fake_time()
    first, second = (SharedCap(engine, "http://gw/sms/a", 100, clock=clock, sleep=sleep) for _ in range(2))
    sent = []
    for turn in range(200):
        (first if turn % 3 else second).wait()
        sent.append(now[0])
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 1 / (100 * (1 - HEADROOM)) - 1e-9


def test_a_429_pauses_the_url_for_every_sharer_for_its_retry_after(engine):
    now, clock, sleep = fake_time()
    throttled, other = (
        SharedCap(engine, "http://gw/billing", 10, clock=clock, sleep=sleep) for _ in range(2)
    )
    throttled.wait()
    throttled.throttled(retry_after=2.0)
    paused_at = now[0]
    other.wait()
    assert now[0] >= paused_at + 2.0


def test_slots_left_unused_are_dropped_rather_than_sent_in_a_burst(engine):
    now, clock, sleep = fake_time()
    cap = SharedCap(engine, "http://gw/sms/b", 50, clock=clock, sleep=sleep)
    cap.wait()  # leases a block of slots
    now[0] += 5.0  # the senders were busy elsewhere; the leased slots passed
    sent = []
    for _ in range(20):
        cap.wait()
        sent.append(now[0])
    assert most_in_any_second(sent) <= 50
    assert min(b - a for a, b in itertools.pairwise(sent)) > 0


def test_the_simulator_answers_429_above_its_max_tps_and_logs_every_arrival(simulator: RunningSimulator):
    simulator.configure(max_tps=5)
    statuses = [
        requests.post(
            simulator.billing_url,
            json={"msisdn": f"2332{n:08d}", "sub_plan": 11},
            headers={"Auth-Key": SIMULATOR_TOKEN, "Idempotency-Key": f"k{n}"},
            timeout=5,
        ).status_code
        for n in range(20)
    ]
    arrivals = simulator.arrivals()["billing"]
    admitted = [t for t, status in zip(arrivals, statuses, strict=True) if status == 200]
    assert len(arrivals) == 20 and set(statuses) == {200, 429}
    assert most_in_any_second(admitted) <= 5
    assert simulator.billing_counts()["fault_over_max_tps"] == statuses.count(429)


def test_a_throttling_gateway_slows_the_capped_client_down(engine, simulator):
    """The gateway admits 20/s while our cap says 60/s: its 429s pause the URL, and every
    message still goes out (429 is retried), none twice."""
    simulator.configure(max_tps=20, retry_after_seconds=0.5)
    url = simulator.sms_url("a")
    with SmsClient(
        [url],
        SIMULATOR_TOKEN,
        concurrency=8,
        backoff_base_seconds=0.05,
        max_tries=20,
        pacers=DatabaseCaps(engine, {url: 60}),
    ) as client:
        outcomes = list(client.send_all(messages(60, "t")))
    assert all(o.accepted for o in outcomes)
    assert len(simulator.stats()["sms"]["messages"]) == 60
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM gateway_pacing")).scalar_one() == 1


def test_the_caps_are_read_from_the_environment_and_a_bad_one_names_its_variable():
    settings = Settings.from_env({"SMS_MAX_TPS": "50", "BILLING_MAX_TPS": "12.5"})
    assert (settings.sms_max_tps, settings.billing_max_tps) == (50.0, 12.5)
    assert (Settings.from_env({}).sms_max_tps, Settings.from_env({}).billing_max_tps) == (0.0, 0.0)
    with pytest.raises(ConfigurationError, match="SMS_MAX_TPS"):
        Settings.from_env({"SMS_MAX_TPS": "fast"})
