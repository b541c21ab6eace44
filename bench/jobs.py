"""The billing and SMS jobs with their resources from the environment, reconstructable, so a
multiprocess run can load them in each step process the way a code location would."""

from __future__ import annotations

import os

import dagster as dg

from iska_pipelines.defs.billing.jobs import billing_job
from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import build_sms_job, sms_job
from iska_pipelines.defs.sms.partitions import sms_job_partitions
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE

CONCURRENCY = 32


def resources() -> dict:
    env = os.environ
    token = env["BENCH_GATEWAY_TOKEN"]
    return {
        "database": IskaDatabase(url=env["BENCH_DATABASE_URL"]),
        "billing_gateway": BillingGateway(
            url=env.get("BENCH_BILLING_URL", "http://127.0.0.1:9/billing"),
            token=token,
            concurrency=CONCURRENCY,
            max_tps=float(env.get("BENCH_BILLING_MAX_TPS", "0")),
        ),
        "billing_policy": BillingPolicy(),
        "sms_gateway": SmsGateway(
            urls=env.get("BENCH_SMS_URLS", "http://127.0.0.1:9/sms/a"),
            token=token,
            concurrency=CONCURRENCY,
            max_tps=float(env.get("BENCH_SMS_MAX_TPS", "0")),
            protocol=env.get("BENCH_SMS_PROTOCOL", "iska"),
            username=env.get("BENCH_SMS_USERNAME", ""),
            sender=env.get("BENCH_SMS_SENDER", ""),
        ),
        "sms_outbox": SmsOutbox(
            template=DEFAULT_SMS_TEMPLATE,
            batch_size=int(env.get("BENCH_SMS_BATCH_SIZE", "5000")),
            public_url=env.get("BENCH_PUBLIC_URL", "http://127.0.0.1:9"),
        ),
    }


def bench_sms_job() -> dg.JobDefinition:
    return dg.Definitions(jobs=[sms_job], resources=resources()).get_job_def("sms_job")


def bench_celery_sms_job() -> dg.JobDefinition:
    """sms_job on the Celery executor (ISKA_SMS_EXECUTOR=celery), as the workers rebuild it."""
    job = build_sms_job(sms_job_partitions, executor="celery")
    return dg.Definitions(jobs=[job], resources=resources()).get_job_def("sms_job")


def bench_billing_job() -> dg.JobDefinition:
    return dg.Definitions(jobs=[billing_job], resources=resources()).get_job_def("billing_job")
