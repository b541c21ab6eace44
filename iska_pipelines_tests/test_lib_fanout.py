"""The one fan-out billing and SMS share: bounded concurrency, stop, batches by count and time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from iska_pipelines.lib.http.fanout import fan_out


def test_every_item_is_worked_once_and_handed_back_in_batches_of_at_most_the_batch_size():
    batches = list(fan_out(range(1000), lambda n: n * 2, concurrency=8, batch_size=64, batch_seconds=60))
    assert sorted(r for batch in batches for r in batch) == [n * 2 for n in range(1000)]
    assert all(1 <= len(batch) <= 64 for batch in batches)


def test_no_more_than_the_concurrency_run_at_once():
    lock, running, most = threading.Lock(), [0], [0]
    gate = threading.Barrier(4, timeout=10)  # proves all four do run at once

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if n < 4:
            gate.wait()
        with lock:
            running[0] -= 1
        return n

    results = [r for batch in fan_out(range(200), work, concurrency=4) for r in batch]
    assert sorted(results) == list(range(200)) and most[0] == 4


def test_a_batch_is_handed_back_when_its_time_is_up_even_if_it_is_not_full():
    released = threading.Event()

    def work(n: int) -> int:
        if n == 1:  # the second result only comes once the first was handed back on its own
            assert released.wait(timeout=10)
        return n

    batches = fan_out(range(2), work, concurrency=2, batch_size=100, batch_seconds=0.01)
    assert next(batches) == [0]
    released.set()
    assert list(batches) == [[1]]


def test_a_stopping_result_starts_nothing_more_but_hands_back_what_was_done():
    drawn: list[int] = []

    def source() -> Iterator[int]:
        for n in range(100):
            drawn.append(n)
            yield n

    results = [
        r for batch in fan_out(source(), lambda n: n, concurrency=1, stop=lambda r: r == 3) for r in batch
    ]
    assert results == [0, 1, 2, 3] and drawn == [0, 1, 2, 3]


def test_a_failure_is_raised_after_the_results_that_came_before_it():
    def work(n: int) -> int:
        if n == 5:
            raise RuntimeError("boom")
        return n

    handed_back: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        for batch in fan_out(range(10), work, concurrency=1):
            handed_back += batch
    assert handed_back == [0, 1, 2, 3, 4]


def test_a_failing_source_stops_the_fan_out_with_its_error():
    def source() -> Iterator[int]:
        yield 1
        raise ValueError("no more claims")

    with pytest.raises(ValueError, match="no more claims"):
        list(fan_out(source(), lambda n: n, concurrency=3))
