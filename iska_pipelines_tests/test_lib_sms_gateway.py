"""The SMS client against small gateways of the test's own on 127.0.0.1 (the simulator's
fault knobs are random; these answer exactly as told)."""

from __future__ import annotations

import pytest

from iska_pipelines.lib.sms.gateway import OutgoingSms, SmsAuthError, SmsClient
from iska_pipelines_tests.scripted_gateway import ACCEPTED, Gateway, connect_timeout_url, refused_url, serving


def messages(n: int) -> list[OutgoingSms]:
    return [
        OutgoingSms(f"msg-{i:04d}", f"23301000{i:04d}", "Iska test", "http://127.0.0.1:9/cb")
        for i in range(n)
    ]


def client(urls: list[str], **options) -> SmsClient:
    return SmsClient(urls, "tok", backoff_base_seconds=0.01, concurrency=8, timeout_seconds=5, **options)


def test_messages_go_round_robin_over_every_url():
    with serving(Gateway()) as a, serving(Gateway()) as b, serving(Gateway()) as c:
        with client([a.url, b.url, c.url]) as sms:
            outcomes = list(sms.send_all(messages(30)))
    assert all(o.accepted and o.tries == 1 for o in outcomes)
    assert [sum(g.tries.values()) for g in (a, b, c)] == [10, 10, 10]
    assert set(a.tokens + b.tokens + c.tokens) == {"tok"}


def test_a_url_that_refuses_connections_is_skipped_for_the_next_one():
    with serving(Gateway()) as a, serving(Gateway()) as b:
        with client([a.url, refused_url(), b.url]) as sms:
            outcomes = list(sms.send_all(messages(30)))
    assert all(o.accepted and o.tries == 1 for o in outcomes)
    assert sum(a.tries.values()) + sum(b.tries.values()) == 30
    assert sum(a.tries.values()) > 10 or sum(b.tries.values()) > 10  # the dead one's share moved


def test_a_url_whose_connect_times_out_is_skipped_for_the_next_one_within_the_same_try():
    with connect_timeout_url() as stuck, serving(Gateway()) as good:
        with SmsClient([stuck, good.url], "tok", backoff_base_seconds=0.01, timeout_seconds=0.3) as sms:
            outcomes = [sms.send(message) for message in messages(2)]  # one starts at each URL
    assert all(o.accepted and o.tries == 1 and o.gateway == good.url for o in outcomes)


def test_a_throttling_url_is_skipped_for_the_next_one_within_the_same_try():
    throttled = Gateway(lambda _n: (429, {"status": "error"}, {"Retry-After": "0"}))
    with serving(throttled) as a, serving(Gateway()) as b:
        with client([a.url, b.url]) as sms:
            outcomes = list(sms.send_all(messages(10)))
    assert all(o.accepted and o.tries == 1 and o.gateway == b.url for o in outcomes)


def test_server_errors_are_retried_with_the_same_msgid_until_accepted():
    # one gateway under three URLs, so its count per msgid is the message's tries over all URLs
    third_time_lucky = Gateway(lambda n: ACCEPTED if n >= 3 else (500, {"status": "error"}, {}))
    with serving(third_time_lucky) as gateway:
        urls = [gateway.url, gateway.url + "?b", gateway.url + "?c"]
        with client(urls, max_tries=5) as sms:
            outcomes = list(sms.send_all(messages(12)))
    assert all(o.accepted and o.tries == 3 for o in outcomes)
    assert set(third_time_lucky.tries.values()) == {3}


def test_a_message_still_refused_after_the_try_limit_fails_with_the_last_error():
    always = Gateway(lambda _n: (503, {"status": "error", "detail": "down for maintenance"}, {}))
    with serving(always) as gateway:
        with client([gateway.url], max_tries=3) as sms:
            [outcome] = list(sms.send_all(messages(1)))
    assert not outcome.accepted and outcome.tries == 3
    assert "HTTP 503" in outcome.error and "down for maintenance" in outcome.error
    assert always.tries["msg-0000"] == 3


def test_every_url_unreachable_fails_the_message_with_a_connection_error():
    with client([refused_url(), refused_url()], max_tries=2) as sms:
        [outcome] = list(sms.send_all(messages(1)))
    assert not outcome.accepted and outcome.tries == 2 and "connection failed" in outcome.error


def test_an_answer_that_is_not_accepted_counts_as_a_failed_try():
    odd = Gateway(lambda n: ACCEPTED if n == 2 else (200, {"status": "queued?"}, {}))
    with serving(odd) as gateway:
        with client([gateway.url]) as sms:
            [outcome] = list(sms.send_all(messages(1)))
    assert outcome.accepted and outcome.tries == 2


def test_a_message_the_gateway_rejects_is_not_retried():
    barred = Gateway(lambda _n: (200, {"status": "rejected", "detail": "subscriber barred"}, {}))
    with serving(barred) as gateway:
        with client([gateway.url]) as sms:
            [outcome] = list(sms.send_all(messages(1)))
    assert (outcome.accepted, outcome.rejected, outcome.tries) == (False, True, 1)
    assert "subscriber barred" in outcome.error


def test_a_refused_token_stops_sending_with_a_clear_error():
    with serving(Gateway(lambda _n: (401, {"detail": "invalid Auth-Key"}, {}))) as gateway:
        with client([gateway.url]) as sms, pytest.raises(SmsAuthError, match="SMS_TOKEN"):
            list(sms.send_all(messages(5)))
