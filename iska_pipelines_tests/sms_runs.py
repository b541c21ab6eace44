"""Running `sms_job` for a day in tests, against given gateway URLs, the way the daemon would."""

from __future__ import annotations

import socket
from datetime import date

import dagster as dg

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import sms_job
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN


def refused_url(path: str = "/") -> str:
    """A loopback port nobody listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def run_sms_day(
    database_url: str,
    instance: dg.DagsterInstance,
    day: date,
    urls: list[str],
    *,
    public_url: str | None = None,
    callback_secret: str = "test-callback-secret",
    self_callback: bool = False,
    max_tries: int = 5,
    batch_size: int = 5000,
    timeout_seconds: float = 5.0,
    claim_seconds: float = 300.0,
    latest_hour: int = 10,
    tags: dict[str, str] | None = None,
    raise_on_error: bool = True,
    template: str | None = DEFAULT_SMS_TEMPLATE,
    **outbox: object,
) -> dg.ExecuteInProcessResult:
    """`outbox`: more SmsOutbox fields (templates_file, default_language, max_segments, ...)."""
    resources = {
        "database": IskaDatabase(url=database_url),
        "sms_gateway": SmsGateway(
            urls=",".join(urls),
            token=SIMULATOR_TOKEN,
            max_tries=max_tries,
            concurrency=8,
            timeout_seconds=timeout_seconds,
            backoff_seconds=0.01,
            self_callback=self_callback,
        ),
        "sms_outbox": SmsOutbox(
            template=template,
            batch_size=batch_size,
            public_url=public_url or refused_url(),
            callback_secret=callback_secret,
            claim_seconds=claim_seconds,
            latest_hour=latest_hour,
            **outbox,
        ),
    }
    return sms_job.execute_in_process(
        partition_key=day.isoformat(),
        resources=resources,
        instance=instance,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def day_report(result: dg.ExecuteInProcessResult) -> dict:
    return result.output_for_node("report_sms_day")
