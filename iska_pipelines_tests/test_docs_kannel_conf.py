"""The kannel.conf in docs/operations.md is the one the tests run against a real Kannel: every
group and key it shows (but the operator's SMPP link and site-specific paths) is in the
configuration `iska_pipelines_tests/kannel.py` generates, with the same value where the value is
behaviour, and its sms-service get-url is the one `iska gateways` prints."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from iska_pipelines.lib.sms.callbacks import inbound_url
from iska_pipelines_tests.kannel import KannelPorts, render_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
SITE_SPECIFIC = {
    "log-file",
    "admin-password",
    "admin-port",
    "smsbox-port",
    "sendsms-port",
    "password",
    "get-url",
}
# the keys whose value is behaviour, not a site's choice
SAME_VALUE = {"dlr-storage", "mo-recode", "concatenation", "keyword", "catch-all", "max-messages"}


def groups(text: str) -> list[tuple[str, dict[str, str]]]:
    found: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if key == "group":
            found.append((value, {}))
        elif found:
            found[-1][1][key] = value.strip('"')
    return found


def documented() -> list[tuple[str, dict[str, str]]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("**Kannel.**") :]
    block = re.search(r"```\n(group = core.*?)```", section, re.S)
    assert block, "docs/operations.md has no kannel.conf block under **Kannel.**"
    return groups(block.group(1))


def test_the_documented_kannel_conf_is_the_tested_one(tmp_path):
    tested = dict(groups(render_config(tmp_path, KannelPorts.free(), "iska", "pw", "http://x/?a=1")))
    for name, keys in documented():
        if name == "smsc":  # the operator's SMPP link stands where the tests have a fake SMSC
            continue
        assert name in tested, f"group {name} is documented but not tested"
        for key, value in keys.items():
            if key in SITE_SPECIFIC:
                continue
            assert key in tested[name], f"{name}: {key} is documented but the tested config lacks it"
            if key in SAME_VALUE and not (name == "sendsms-user" and key == "max-messages"):
                assert tested[name][key] == value, (
                    f"{name}: {key} is {value} in the docs, {tested[name][key]} tested"
                )


def test_the_documented_get_url_is_what_iska_gateways_prints():
    service = dict(documented())["sms-service"]
    printed = inbound_url("https://iska.example", "kannel", "…")
    assert urlsplit(service["get-url"]).path == urlsplit(printed).path
    assert parse_qs(urlsplit(service["get-url"]).query) == parse_qs(urlsplit(printed).query)
