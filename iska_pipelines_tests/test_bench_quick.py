"""The benchmark harness still runs end to end (`make bench-quick`'s code at a tiny size).

Nothing here is about speed: the run only has to complete and write a table with a row for
every measurement. It needs PostgreSQL (the harness creates and drops its own databases).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iska_pipelines_tests.kannel import kannel_available
from iska_pipelines_tests.rabbitmq import rabbitmq_available

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    "Forecasts file, first load: asset step (PostgreSQL)",
    "Forecasts file, daily update of every gid: asset step (PostgreSQL)",
    "Forecasts file, first load: peak RSS",
    "Forecasts file, daily update: peak RSS",
    "Old method, first load",
    "Old method, daily update",
    "Forecasts file, first load: asset step (SQLite)",
    "Forecasts file, daily update: asset step (SQLite)",
    "Additions file: asset step incl. nearest-grid assignment",
    "Nearest-point search alone",
    "Old method: per-row `ORDER BY great-circle distance LIMIT 1`",
    "Additions file: asset step (SQLite)",
    "Billing: due subscribers charged per second",
    "SMS: sms_job messages per second, whole run (multiprocess executor",
    "SMS: sms_job messages per second, whole run (in-process executor",
    "Inbox sensor tick",
]
if kannel_available() is None:  # the Kannel rows need a real Kannel (installed by .ci/run)
    ROWS.append("SMS through a real Kannel 1.4.5")
if rabbitmq_available() is None:  # the Celery rows, RabbitMQ and dagster-celery (.ci/run)
    ROWS.append("SMS: sms_job messages per second, whole run (celery executor, 2 workers)")


def test_the_quick_benchmark_writes_a_table_with_every_measurement(tmp_path, postgres_databases):
    # the harness creates and drops its own databases through this connection
    admin_url = postgres_databases("iska_bench_admin").render_as_string(hide_password=False)
    out = tmp_path / "benchmarks.md"
    env = {
        **os.environ,
        "ISKA_BENCH_DATABASE_URL": admin_url,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--scale",
            "0.001",
            "--repeats",
            "1",
            "--inline",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    assert "| Measurement |" in report
    assert "PostgreSQL 1" in report and "dagster" in report
    missing = [row for row in ROWS if row not in report]
    assert not missing, f"rows missing from the table: {missing}"
