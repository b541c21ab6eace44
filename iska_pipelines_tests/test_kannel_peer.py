"""The generated kannel.conf is a working gateway as ISKA uses it (docs: protocols-wire, kannel):
sendsms answers `202 0:`, fakesmsc gets the SMS (UCS-2 intact), DLRs come back to the dlr-url
with %d substituted, a wrong password is refused, and an SMS typed at fakesmsc reaches the
sms-service get-url. One real Kannel serves the module; a small HTTP server of the test's own
plays ISKA and records what Kannel asks of it."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from iska_pipelines_tests.kannel import KannelGateway, ReceivedSms, join_parts, kannel_available
from iska_pipelines_tests.polling import wait_for

pytestmark = pytest.mark.skipif(kannel_available() is not None, reason=kannel_available() or "")

USERNAME, PASSWORD = "iska", "s3cret-pass"
SHORT_CODE = "1400"
TWI = "Iska 07/12: nsuo bɛtɔ ɔkyena 80%"


@dataclass
class Recorder:
    """What Kannel GETs from "ISKA": path and query of each request, in arrival order."""

    url: str = ""
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def queries(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [query for seen, query in self.requests if seen == path]


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """A single-threaded server: requests are recorded in the order Kannel connected."""
    recorded = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            with recorded.lock:
                recorded.requests.append((url.path, dict(urllib.parse.parse_qsl(url.query))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    recorded.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def kannel(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KannelGateway]:
    inbound = f"{recorder.url}/inbound?token=T&protocol=kannel&from=%p&text=%a&id=%I"
    with KannelGateway(tmp_path_factory.mktemp("kannel"), USERNAME, PASSWORD, get_url=inbound) as gateway:
        yield gateway


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback: no proxy from the environment
    yield session
    session.close()


def sendsms(http: requests.Session, kannel: KannelGateway, **params: str) -> requests.Response:
    query = {"username": USERNAME, "password": PASSWORD, "from": SHORT_CODE, "charset": "utf-8", **params}
    return http.get(f"{kannel.sendsms_url}/cgi-bin/sendsms", params=query, timeout=10)


def arrived_for(kannel: KannelGateway, receiver: str, count: int = 1) -> list[ReceivedSms]:
    """The SMS parts fakesmsc got for `receiver`, once there are `count` (the gateway is shared)."""

    def parts() -> list[ReceivedSms]:
        found = [sms for sms in kannel.received() if sms.receiver == receiver]
        return found if len(found) >= count else []

    try:
        return wait_for(parts, seconds=10)
    except AssertionError:
        raise AssertionError(f"no SMS for {receiver} at fakesmsc\n{kannel.logs_tail()}") from None


def test_sendsms_is_delivered_and_reported_8_then_1(kannel, recorder, http):
    dlr_url = f"{recorder.url}/dlr?msgid=abc&status=%d"
    dlr = {"dlr-mask": "27", "dlr-url": dlr_url}
    answer = sendsms(http, kannel, to="233555000101", text="Iska 07/12: rain tomorrow", **dlr)

    assert answer.status_code == 202 and answer.text.startswith("0:"), answer.text
    [sms] = arrived_for(kannel, "233555000101")
    assert (sms.sender, sms.text) == (SHORT_CODE, "Iska 07/12: rain tomorrow")
    wait_for(lambda: len(recorder.queries("/dlr")) >= 2)
    reports = recorder.queries("/dlr")
    assert [(q["msgid"], q["status"]) for q in reports] == [("abc", "8"), ("abc", "1")]


def test_ucs2_twi_arrives_intact(kannel, http):
    answer = sendsms(http, kannel, to="233555000102", text=TWI, coding="2")

    assert answer.status_code == 202 and answer.text.startswith("0:"), answer.text
    [sms] = arrived_for(kannel, "233555000102")
    assert sms.text == TWI
    assert sms.raw.split(" ")[2] == "ucs-2" and sms.data == TWI.encode("utf-16-be")


def test_long_ucs2_forecast_arrives_in_parts_that_join(kannel, http):
    forecast = (TWI + " ") * 3  # 99 characters: 2 UCS-2 parts of at most 67

    assert sendsms(http, kannel, to="233555000103", text=forecast, coding="2").status_code == 202
    parts = arrived_for(kannel, "233555000103", count=2)
    assert [part.concat[1:] if part.concat else None for part in parts] == [(2, 1), (2, 2)]
    [whole] = join_parts(parts)
    assert whole.text == forecast


def test_wrong_password_is_refused(kannel, http):
    answer = sendsms(http, kannel, to="233555000104", text="x", password="wrong")

    assert answer.status_code == 403
    assert "Authorization failed for sendsms" in answer.text


def test_typed_sms_reaches_the_get_url(kannel, recorder):
    kannel.type_mo("233555000001", SHORT_CODE, "STOP")

    [query] = wait_for(lambda: [q for q in recorder.queries("/inbound") if q["from"] == "233555000001"])
    assert query["text"] == "STOP"
    assert (query["token"], query["protocol"]) == ("T", "kannel")
    assert len(query["id"]) == 36  # Kannel's message UUID


def test_typed_twi_reaches_the_get_url_as_utf8(kannel, recorder):
    kannel.type_mo("233555000002", SHORT_CODE, "Mepɛ nsuo")

    [query] = wait_for(lambda: [q for q in recorder.queries("/inbound") if q["from"] == "233555000002"])
    assert query["text"] == "Mepɛ nsuo"


def test_fixture_gateway_without_service_url_paces_its_link(kannel_gateways, http):
    gateway = kannel_gateways("other", "pw", throughput=50)

    assert "throughput = 50" in gateway.config_path.read_text()
    answer = http.get(
        f"{gateway.sendsms_url}/cgi-bin/sendsms",
        params={"username": "other", "password": "pw", "to": "1", "from": "2", "text": "hi"},
        timeout=10,
    )
    assert answer.status_code == 202
    assert [sms.text for sms in gateway.wait_received(1)] == ["hi"]
