"""A MoMo billing run SIGKILLed between its requests and their record (SPEC §6, §18): the gateway
took every request (and its payers approved) but ISKA wrote nothing. The next run asks under the
same references, gets 409, looks each one up, and records each charge once: nobody is charged
twice, and no charge the gateway took is left without its attempt row. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from iska_pipelines.lib.billing.references import reference_for
from iska_pipelines_tests.api_server import CALLBACK_SECRET
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN
from iska_pipelines_tests.test_defs_billing import DAILY, WEEKLY, metadata, msisdns, today

SUBSCRIBERS = 6
CHILD = """
import sys
from iska_pipelines.defs.billing.jobs import billing_job
from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.resources import IskaDatabase
database_url, momo_url, token, public_url, secret, concurrency = sys.argv[1:7]
billing_job.execute_in_process(resources={
    "database": IskaDatabase(url=database_url),
    "billing_gateway": BillingGateway(
        url=momo_url, token=token, protocol="momo", public_url=public_url, callback_secret=secret,
        concurrency=int(concurrency), timeout_seconds=60, tries=1,
    ),
    "billing_policy": BillingPolicy(),
})
"""


def test_a_run_killed_between_request_and_record_is_found_by_reference_and_recorded_once(momo):
    subscribers = msisdns(SUBSCRIBERS)
    momo.billing.subscribe({m: DAILY if i % 2 else WEEKLY for i, m in enumerate(subscribers)})
    # every request is taken (and approved at once, its callback sent to an ISKA that knows nothing
    # of it yet), then its answer hangs: the run is killed while it waits
    momo.simulator.configure(
        momo_hold_callbacks=False, faults=["charge_then_timeout"] * SUBSCRIBERS, hang_seconds=120
    )
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            momo.billing.database_url,
            momo.simulator.momo_url,
            SIMULATOR_TOKEN,
            momo.api.base_url,
            CALLBACK_SECRET,
            str(SUBSCRIBERS),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(momo.simulator.momo_requests()) == SUBSCRIBERS or child.poll() is not None, 60)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    assert momo.attempts() == []  # killed between the requests and their record
    assert momo.simulator.charges() == {m: 1 for m in subscribers}  # the gateway took them all
    wait_for(lambda: momo.simulator.billing_counts().get("callbacks_sent", 0) == SUBSCRIBERS)

    momo.simulator.configure(faults=[])
    again = momo.run()

    assert again.success and metadata(again)["charged"] == SUBSCRIBERS
    attempts = momo.attempts()
    assert sorted(a.msisdn for a in attempts) == sorted(subscribers)  # one row each
    assert {(a.outcome, a.settled_by) for a in attempts} == {("success", "request")}
    assert {a.reference for a in attempts} == set(momo.simulator.momo_requests())
    assert all(a.reference == reference_for(a.idempotency_key) for a in attempts)
    counts = momo.simulator.billing_counts()
    assert (counts["requested"], counts["duplicates"]) == (SUBSCRIBERS, SUBSCRIBERS)
    assert momo.simulator.charges() == {m: 1 for m in subscribers}
    assert all(momo.billing.subscription(m).last_billing_date == today() for m in subscribers)
    assert metadata(momo.run())["due"] == 0
