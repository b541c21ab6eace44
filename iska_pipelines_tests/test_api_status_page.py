"""The status view (SPEC §16): `/status` answers today's figures as JSON, and `/` shows them in
a real headless browser, with nothing loaded from elsewhere. The screenshot is kept in
artifacts/ (gitignored) for a person to look at."""

from __future__ import annotations

import re
import shutil

import requests

from iska_pipelines_tests.api_server import api_settings
from iska_pipelines_tests.browser import ARTIFACTS, dump_dom, need_chromium, screenshot
from iska_pipelines_tests.health_world import REFUSAL, seed_day


def figure(dom: str, key: str) -> str:
    found = re.search(rf'data-figure="{re.escape(key)}"><b>([^<]*)</b>', dom)
    assert found, f"{key} is not on the page"
    return found.group(1)


def test_status_answers_todays_figures_as_json(api, engine):
    seeded = seed_day(engine)
    body = requests.get(api.base_url + "/status", timeout=30).json()
    assert body["day"] == seeded.day.isoformat()
    assert (body["sms"]["planned"], body["sms"]["sent"], body["sms"]["delivered"]) == (20, 19, 13)
    assert body["billing"]["charged"] == 4 and body["billing"]["transport_errors"] == 1
    assert body["grid"]["points"] == 1
    assert [f["name"] for f in body["last_files"] if f["outcome"] == "rejected"] == ["forecasts_bad.csv"]


def test_the_status_page_shows_today_at_a_glance_in_a_browser(api, engine, database_url, tmp_path):
    need_chromium()
    seed_day(engine)
    dom = dump_dom(api.base_url + "/", tmp_path / "chromium")
    assert (
        figure(dom, "sms.planned"),
        figure(dom, "sms.sent"),
        figure(dom, "sms.delivered"),
        figure(dom, "sms.failed"),
    ) == ("20", "19", "13", "4")
    assert figure(dom, "sms.delivery_rate") == "68.4%"
    assert (figure(dom, "billing.charged"), figure(dom, "billing.transport_errors")) == ("4", "1")
    assert REFUSAL in dom and "forecasts_bad.csv" in dom
    assert re.search(r'data-check="no_billing_transport_errors">.*?failed \(ERROR\)', dom)
    assert "<script" not in dom and not re.search(
        r'(src|href)="(https?:)?//(?!127\.0\.0\.1)', dom.split("Dagster</a>")[-1]
    ), "the page loads something from elsewhere"
    shot = screenshot(api.base_url + "/", tmp_path / "status.png", tmp_path / "chromium")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / f"status_page_{database_url.split(':')[0]}.png")


def test_the_status_page_needs_the_token_when_one_is_set(start_api, database_url, data_dir):
    running = start_api(api_settings(database_url, data_dir, ISKA_API_TOKEN="s3cret"))
    assert requests.get(running.base_url + "/", timeout=30).status_code == 401
    assert requests.get(running.base_url + "/status", timeout=30).status_code == 401
    answer = requests.get(running.base_url + "/", headers={"Authorization": "Bearer s3cret"}, timeout=30)
    assert answer.status_code == 200 and "ISKA status" in answer.text
