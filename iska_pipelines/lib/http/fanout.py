"""One fan-out for the gateway runs (billing and SMS): bounded concurrency, stop, batched results.

`fan_out(items, work, ...)` runs `work(item)` from `concurrency` threads and hands the results
back to the calling thread in batches, by count (`batch_size`) or by time (`batch_seconds`,
counted from a batch's first result), whichever comes first. The caller writes each batch in one
statement: workers only talk HTTP, the database sees one writer and one round trip per batch.

Items are drawn lazily (under a lock) as workers get free, so a source that claims work from the
database a chunk at a time is asked for more only when it is needed, and memory stays flat.
When `stop(result)` says so (a 401/403: our credentials are wrong for every call), no further
item is started; calls already in flight finish and are handed back. An exception in `work` or
in the source stops the fan-out too: the results before it are handed back first, then it is
raised in the calling thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = 500  # results written per statement
BATCH_SECONDS = 0.5  # at most this much sending is asked again (same keys) after a crash
POLL_SECONDS = 0.02  # while a batch fills, the calling thread looks for results this often


class _Done:
    """A worker ran out of items (or was told to stop)."""


_DONE = _Done()


def _never(_result: object) -> bool:
    return False


def fan_out(
    items: Iterable[T],
    work: Callable[[T], R],
    *,
    concurrency: int,
    stop: Callable[[R], bool] = _never,
    batch_size: int = BATCH_SIZE,
    batch_seconds: float = BATCH_SECONDS,
) -> Iterator[list[R]]:
    """Yield the results of `work` over `items` in batches, in completion order."""
    source = iter(items)
    source_lock = threading.Lock()
    stopping = threading.Event()
    results: queue.SimpleQueue[R | _Done | BaseException] = queue.SimpleQueue()

    def next_item() -> tuple[bool, T | None]:
        with source_lock:
            if stopping.is_set():
                return False, None
            for item in source:
                return True, item
            return False, None

    def worker() -> None:
        try:
            while True:
                got, item = next_item()
                if not got:
                    return
                result = work(item)  # type: ignore[arg-type]
                if stop(result):
                    stopping.set()
                results.put(result)
        except BaseException as failure:  # handed to the calling thread, which raises it
            stopping.set()
            results.put(failure)
        finally:
            results.put(_DONE)

    threads = [
        threading.Thread(target=worker, name=f"fan-out-{i}", daemon=True) for i in range(max(1, concurrency))
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    failure: BaseException | None = None
    batch: list[R] = []
    deadline = 0.0
    try:
        while running:
            item = results.get() if not batch else None  # the first result of a batch: wait for it
            while True:
                if item is _DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    failure = failure or item
                elif item is not None:
                    if not batch:
                        deadline = time.monotonic() + batch_seconds
                    batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= batch_size:
                    break
                try:  # then take what is there without waiting on each one
                    item = results.get_nowait()
                except queue.Empty:
                    break
            now = time.monotonic()
            if batch and (len(batch) >= batch_size or now >= deadline or not running):
                yield batch
                batch = []
            elif batch:  # let results gather: one wake-up per poll, not per result
                time.sleep(min(POLL_SECONDS, deadline - now))
        if batch:
            yield batch
        if failure is not None:
            raise failure
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
