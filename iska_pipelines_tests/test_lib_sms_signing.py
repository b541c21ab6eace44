"""The callback URL carries the msgid's HMAC; only the right one is accepted."""

from urllib.parse import parse_qs, urlsplit

from iska_pipelines.lib.sms.signing import CALLBACK_PATH, callback_url, sign, signature_matches


def test_the_callback_url_is_the_public_url_plus_the_callback_path_and_the_sig():
    url = callback_url("http://api.example:8000/", "m-1", "s3cret")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"http://api.example:8000{CALLBACK_PATH}"
    assert parse_qs(parts.query) == {"sig": [sign("m-1", "s3cret")]}


def test_only_the_sig_of_this_msgid_and_secret_matches():
    sig = sign("m-1", "s3cret")
    assert len(sig) == 64 and signature_matches("m-1", sig, "s3cret")
    assert signature_matches("m-1", sig.upper(), "s3cret")
    assert not signature_matches("m-2", sig, "s3cret")
    assert not signature_matches("m-1", sign("m-1", "other"), "s3cret")
    assert not signature_matches("m-1", "", "s3cret")
    assert not signature_matches("m-1", "é" * 64, "s3cret")
