"""The whole system as docker-compose.yml runs it, natively, against PostgreSQL.

Code server, webserver with the gRPC workspace, daemon, API and simulator as real processes.
Files go in through the API's upload endpoints and the inbox; the sensor, the run queue, the
billing sensor, a triggered SMS run and the delivery reports all happen on their own.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa

from iska_pipelines.lib.db.engine import create_iska_engine
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.stack import start_stack

TOKEN = "full-stack-token"
DEADLINE_SECONDS = 300
UPLOADS = [
    ("/forecasts/api/v1/forecasts/upload_csv/", "forecasts_ghana.csv"),
    ("/subscriptions/api/v1/subscriptions/upload_additions_csv/", "2021-02-05_additions.csv"),
    ("/subscriptions/api/v1/subscriptions/upload_additions_csv/", "2021-02-06_additions.csv"),
]
DROPPED = ["2021-02-06_deletions.csv", "2021-02-06_locupdates.csv"]


def wait_until(what: str, check, deadline: float, stack, interval: float = 0.5):
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    logs = "\n".join(f"--- {name}\n{stack.log(name)}" for name in stack.processes)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def test_files_to_delivered_forecasts_through_every_process(tmp_path, postgres_databases):
    dagster_url = postgres_databases("iska_fs_dagster")
    iska_url = postgres_databases("iska_fs_data")
    stack = start_stack(
        tmp_path,
        {
            "username": dagster_url.username or "postgres",
            "password": dagster_url.password or "",
            "host": dagster_url.host or "127.0.0.1",
            "port": str(dagster_url.port or 5432),
            "database": dagster_url.database,
        },
        iska_url.render_as_string(hide_password=False),
        {
            "BILLING_TOKEN": TOKEN,
            "ISKA_API_TOKEN": TOKEN,
            "ISKA_CALLBACK_SECRET": "fs-secret",
            "ISKA_SENSOR_INTERVAL_SECONDS": "1",
            "ISKA_FILE_SETTLE_SECONDS": "0.5",
            "ISKA_SIM_REPORT_DELAY_SECONDS": "0.2",
            "ISKA_HTTP_TIMEOUT_SECONDS": "5",
        },
    )
    engine = create_iska_engine(iska_url.render_as_string(hide_password=False))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        api = stack.url("api")
        tasks = []
        for path, name in UPLOADS:
            with sample_path(name).open("rb") as handle:
                answer = requests.post(
                    api + path, files={"file": (name, handle, "text/csv")}, headers=auth, timeout=30
                )
            assert answer.status_code in (200, 201), answer.text
            status_path = path.rsplit("/", 2)[0] + "/task_status/"
            tasks.append((status_path, answer.json()["task_id"]))

        def scalar(sql: str):
            with engine.connect() as connection:
                return connection.execute(sa.text(sql)).scalar()

        # cancellations and updates name subscribers added above: drop them once those applied
        wait_until(
            "the uploaded files applied",
            lambda: scalar("SELECT count(*) FROM ingested_files WHERE outcome = 'applied'") == 3,
            deadline,
            stack,
        )
        inbox = tmp_path / "data" / "inbox"
        for name in DROPPED:
            shutil.copy(sample_path(name), inbox / f".{name}.part")
            os.replace(inbox / f".{name}.part", inbox / name)
        wait_until(
            "five applied files",
            lambda: scalar("SELECT count(*) FROM ingested_files WHERE outcome = 'applied'") == 5,
            deadline,
            stack,
        )
        for status_path, task_id in tasks:
            answer = wait_until(
                f"task {task_id} SUCCESS",
                lambda status_path=status_path, task_id=task_id: (
                    lambda r: r if r.json().get("task_status") == "SUCCESS" else None
                )(requests.get(api + status_path, json={"task_id": task_id}, headers=auth, timeout=10)),
                deadline,
                stack,
            )
            assert answer.json()["task_status"] == "SUCCESS" and answer.json()["task_id"] == task_id
            assert answer.json()["detail"].startswith("applied ")
        assert scalar("SELECT count(*) FROM subscriptions") == 150
        assert scalar("SELECT count(*) FROM subscriptions WHERE status = 'cancelled'") == 25

        today = datetime.now(ZoneInfo("Africa/Accra")).date().isoformat()
        wait_until(
            "every active subscriber charged",
            lambda: (
                scalar(
                    "SELECT count(*) FROM subscriptions WHERE status = 'active' "
                    f"AND last_billing_date = '{today}'"
                )
                == 125
            ),
            deadline,
            stack,
        )
        charges = requests.get(stack.url("simulator") + "/stats", timeout=10).json()["billing"]["charges"]
        assert max(charges.values()) == 1

        triggered = requests.post(
            api + "/subscriptions/api/v1/subscriptions/trigger_send_sms/", headers=auth, timeout=60
        )
        assert triggered.status_code == 200, triggered.text
        assert triggered.json()["run_id"]
        wait_until(
            "125 forecasts delivered",
            lambda: (
                scalar(
                    f"SELECT count(*) FROM sms_messages WHERE send_date = '{today}' AND status = 'delivered'"
                )
                == 125
            ),
            deadline,
            stack,
        )
        assert scalar("SELECT count(*) FROM sms_messages") == 125
        assert scalar(f"SELECT count(*) FROM subscriptions WHERE last_successful_sms_date = '{today}'") == 125
        messages = requests.get(stack.url("simulator") + "/stats", timeout=10).json()
        assert sum(messages["sms"]["messages"].values()) == 125
    finally:
        stack.stop()
        engine.dispose()
    assert all(process.poll() is not None for process in stack.processes.values())
