"""Who may call the API (SPEC §8): a token when ISKA_API_TOKEN is set, loopback only without."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from iska_pipelines.api.auth import is_loopback_client
from iska_pipelines.lib.sms.signing import CALLBACK_PATH
from iska_pipelines_tests.api_server import api_settings

TOKEN = "s3cret-token"
PROTECTED = [
    ("get", "/forecasts/api/v1/forecasts/"),
    ("get", "/subscriptions/api/v1/subscriptions/"),
    ("get", "/subscriptions/api/v1/subscriptions/1/billing_attempts/"),
    ("get", "/forecasts/api/v1/forecasts/task_status/?task_id=x"),
    ("post", "/forecasts/api/v1/forecasts/upload_csv/"),
    ("post", "/subscriptions/api/v1/subscriptions/trigger_send_sms/"),
]


@pytest.fixture
def guarded(tmp_path, start_api):
    """An API with ISKA_API_TOKEN set (SQLite is enough: this is about the door, not the data)."""
    return start_api(
        api_settings(
            f"sqlite:///{tmp_path / 'iska.sqlite3'}",
            tmp_path / "data",
            ISKA_API_TOKEN=TOKEN,
            ISKA_DAGSTER_URL="http://127.0.0.1:9",
        )
    )


def call(api, method, path, headers=None):
    return requests.request(
        method,
        api.base_url + path,
        headers=headers or {},
        timeout=10,
        files={"file": ("f.csv", b"gid\n")} if "upload" in path else None,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Auth-Key": "wrong"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic " + TOKEN},
        {"Auth-Key": TOKEN + "x"},
        {"Auth-Key": ""},
    ],
)
def test_a_missing_or_wrong_token_is_401_on_every_protected_route(guarded, headers):
    for method, path in PROTECTED:
        answer = call(guarded, method, path, headers)
        assert answer.status_code == 401, (method, path)
        assert "token" in answer.json()["detail"] and answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": f"Bearer {TOKEN}"}, {"authorization": f"bearer {TOKEN}"}, {"Auth-Key": TOKEN}],
)
def test_the_right_token_as_bearer_or_auth_key_is_let_through(guarded, headers):
    assert call(guarded, "get", "/forecasts/api/v1/forecasts/", headers).status_code == 200
    assert call(guarded, "post", "/forecasts/api/v1/forecasts/upload_csv/", headers).status_code == 200
    # past the door, Dagster is what is missing here
    assert (
        call(guarded, "post", "/subscriptions/api/v1/subscriptions/trigger_send_sms/", headers).status_code
        == 503
    )


def test_health_and_the_callback_need_no_token(guarded):
    assert requests.get(guarded.base_url + "/health", timeout=10).status_code == 200
    report = guarded.report("00000000-0000-0000-0000-000000000000", "delivered")
    assert report.status_code == 200 and report.json()["outcome"] == "unknown_msgid"


def test_without_a_token_loopback_clients_are_served(api):
    assert requests.get(api.base_url + "/forecasts/api/v1/forecasts/", timeout=10).status_code == 200


def test_without_a_token_a_client_forwarded_from_elsewhere_is_refused(api):
    # uvicorn trusts X-Forwarded-For from a proxy on 127.0.0.1: this is a remote client
    answer = requests.get(
        api.base_url + "/forecasts/api/v1/forecasts/", timeout=10, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert answer.status_code == 403 and "ISKA_API_TOKEN" in answer.json()["detail"]


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("203.0.113.7", False),
        ("", False),
        (None, False),
        ("testclient", False),
    ],
)
def test_loopback_clients_are_recognised(host, loopback):
    assert is_loopback_client(host) is loopback


def test_iska_api_refuses_to_bind_beyond_loopback_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ISKA_API_TOKEN"}
    started = subprocess.run(
        [str(Path(sys.executable).parent / "iska"), "api", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        env={**env, "ISKA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "ISKA_API_TOKEN" in started.stderr and "Traceback" not in started.stderr


def test_the_callback_path_is_outside_the_token_check(guarded):
    answer = requests.post(
        guarded.base_url + CALLBACK_PATH,
        json={"msgid": "x", "status": "delivered"},
        params={"sig": "0"},
        timeout=10,
    )
    assert answer.status_code == 403 and "sig" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_docs_and_the_openapi_document_need_the_token_too(guarded, path):
    refused = requests.get(guarded.base_url + path, timeout=10)
    assert refused.status_code == 401 and "token" in refused.json()["detail"]
    assert requests.get(guarded.base_url + path, headers={"Auth-Key": TOKEN}, timeout=10).status_code == 200


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe", b'{"msisdn": 1}'])
def test_without_a_token_a_request_is_401_whatever_its_body(guarded, body):
    for method in ("post", "put", "patch"):
        path = "/subscriptions/api/v1/subscriptions/" + ("" if method == "post" else "1/")
        answer = requests.request(
            method,
            guarded.base_url + path,
            data=body,
            timeout=10,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 401, (method, body)
