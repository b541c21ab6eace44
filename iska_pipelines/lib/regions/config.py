"""The regions of a deployment (SPEC §15), as plain data.

A regions file (`ISKA_REGIONS_FILE`, TOML) has one table per region code; the first table is the
default region. Without the file there is one region, `SINGLE_REGION`, built from ISKA_TIMEZONE,
ISKA_SMS_HOUR, ISKA_DEFAULT_LANGUAGE, SMS_URLS and SMS_MAX_TPS, and everything works as before.

A subscriber's region is the additions file's (or the API's) `region`, else the region with the
longest msisdn prefix the number starts with, else the default region. Stored rows whose region
is empty or no longer configured belong to the default region (`in_region`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from iska_pipelines.lib.errors import ConfigurationError

SINGLE_REGION = "default"  # the one region's code when there is no regions file
CODE = re.compile(r"[A-Za-z0-9._-]{1,16}")  # a Dagster partition key, and sms_messages.region
PREFIX = re.compile(r"[0-9]{1,8}")
REGION_KEYS = {"timezone", "sms_hour", "language", "prefixes", "sms_gateways"}
GATEWAY_KEYS = {"url", "max_tps", "protocol", "username", "sender", "secret_env"}
PROTOCOLS = ("iska", "kannel", "africastalking", "twilio", "infobip")  # SPEC §17
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class Gateway:
    """One SMS gateway: where it is, how fast it may be called, and how it is spoken to.

    `protocol` picks the wire format (lib/sms/protocols/); `username` is the account (Kannel's
    sendsms-user, Africa's Talking's username, Twilio's Account SID), `sender` the short code or
    sender id, and `secret_env` the name of the environment variable holding its password, API
    key or auth token (empty: SMS_TOKEN), so no secret is written in the regions file."""

    url: str
    max_tps: float = 0.0  # calls per second, over any one second; 0: no cap
    protocol: str = "iska"
    username: str = ""
    sender: str = ""
    secret_env: str = ""


@dataclass(frozen=True)
class Region:
    code: str
    timezone: str
    sms_hour: int
    language: str | None  # the region's default language; None: ISKA_DEFAULT_LANGUAGE
    prefixes: tuple[str, ...]
    gateways: tuple[Gateway, ...]

    @property
    def tzinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def total_tps(self) -> float:
        """Messages per second the region's gateways take together; 0 when any is uncapped."""
        if any(g.max_tps <= 0 for g in self.gateways):
            return 0.0
        return sum(g.max_tps for g in self.gateways)


@dataclass(frozen=True)
class Regions:
    all: tuple[Region, ...]
    source: str = "the environment"  # where they were read, for messages
    _by_code: Mapping[str, Region] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.all:
            raise ConfigurationError(f"{self.source}: no region configured")
        object.__setattr__(self, "_by_code", {r.code: r for r in self.all})

    @property
    def default(self) -> Region:
        return self.all[0]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.all)

    @property
    def several(self) -> bool:
        return len(self.all) > 1

    def get(self, code: str | None) -> Region:
        """The region of a stored code; empty or no longer configured: the default region."""
        return self._by_code.get(code or "", self.default)

    def canonical(self, code: str) -> str | None:
        """A code as configured, matched case-insensitively; None when no region has it."""
        wanted = code.strip().upper()
        return next((r.code for r in self.all if r.code.upper() == wanted), None)

    def for_msisdn(self, msisdn: str) -> Region:
        """The region with the longest prefix `msisdn` starts with, else the default region."""
        best = max(
            ((len(p), r) for r in self.all for p in r.prefixes if msisdn.startswith(p)),
            key=lambda found: found[0],
            default=None,
        )
        return best[1] if best else self.default

    def prefixes_longest_first(self) -> list[tuple[str, str]]:
        """(prefix, code) pairs, longest prefix first: the order a first-match rule needs."""
        pairs = [(p, r.code) for r in self.all for p in r.prefixes]
        return sorted(pairs, key=lambda pair: (-len(pair[0]), pair[0]))

    def in_region(self, column: str, code: str) -> str:
        """An SQL condition: the row's region `column` is `code`'s. The default region also
        holds rows with no region or one no longer configured. Codes match CODE, so they are
        safe to write into the statement."""
        if not self.several:
            return "1 = 1"
        if code != self.default.code:
            return f"{column} = '{self.get(code).code}'"
        others = ", ".join(f"'{c}'" for c in self.codes[1:])
        return f"({column} IS NULL OR {column} NOT IN ({others}))"


def single_region(
    timezone: str,
    sms_hour: int,
    language: str | None,
    urls: Iterable[str],
    max_tps: float,
    like: Gateway | None = None,
) -> Regions:
    """The one region of a deployment without a regions file; `like`: every URL's protocol,
    username and sender (SMS_PROTOCOL, SMS_USERNAME, SMS_SENDER)."""
    shape = like or Gateway("")
    gateways = tuple(replace(shape, url=url, max_tps=max_tps) for url in urls)
    return Regions((Region(SINGLE_REGION, timezone, sms_hour, language, (), gateways),))


def load_regions(path: Path, *, sms_hour: int, languages: Iterable[str] | None = None) -> Regions:
    """The regions file at `path`; ConfigurationError names the file, the region and the field.
    `sms_hour`: a region's SMS hour when its table has none (ISKA_SMS_HOUR). `languages`: the
    codes a region's `language` may take (None: any)."""
    where = f"ISKA_REGIONS_FILE {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"{where} cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{where} is not valid TOML: {error}") from None
    known = frozenset(languages) if languages is not None else None
    regions = tuple(
        _region(code, table, f"{where}: [{code}]", sms_hour, known) for code, table in data.items()
    )
    if not regions:
        raise ConfigurationError(f"{where} has no region: add a table such as [GH]")
    _no_shared_prefix(regions, where)
    _no_duplicate_code(regions, where)
    return Regions(regions, source=where)


def _region(code: str, table: Any, where: str, sms_hour: int, languages: frozenset[str] | None) -> Region:
    if not CODE.fullmatch(code):
        raise ConfigurationError(f"{where}: a region code is 1-16 of A-Z a-z 0-9 . _ -")
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table ([{code}] followed by its keys)")
    unknown = sorted(set(table) - REGION_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(REGION_KEYS))})"
        )
    return Region(
        code=code,
        timezone=_timezone(table.get("timezone"), where),
        sms_hour=_hour(table.get("sms_hour", sms_hour), where),
        language=_language(table.get("language"), where, languages),
        prefixes=_prefixes(table.get("prefixes", []), where),
        gateways=_gateways(table.get("sms_gateways"), where),
    )


def _timezone(value: Any, where: str) -> str:
    if value is None:
        raise ConfigurationError(f'{where}: timezone is missing (e.g. timezone = "Africa/Accra")')
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{where}: timezone {value!r} is not a known time zone") from None
    return str(value)


def _hour(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 23:
        raise ConfigurationError(f"{where}: sms_hour must be a whole hour 0-23, got {value!r}")
    return value


def _language(value: Any, where: str, languages: frozenset[str] | None) -> str | None:
    if value is None:
        return None
    code = str(value).strip().lower()
    if not code or (languages is not None and code not in languages):
        raise ConfigurationError(f"{where}: language {value!r} is not a known ISO 639 code")
    return code


def _prefixes(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and PREFIX.fullmatch(p) for p in value):
        raise ConfigurationError(
            f'{where}: prefixes must be a list of 1-8 digit strings (e.g. prefixes = ["233"]), got {value!r}'
        )
    return tuple(value)


def _gateways(value: Any, where: str) -> tuple[Gateway, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigurationError(
            f'{where}: sms_gateways must list at least one gateway (sms_gateways = [{{ url = "http://...", max_tps = 50 }}])'
        )
    return tuple(_gateway(item, f"{where} sms_gateways[{n}]") for n, item in enumerate(value))


def _gateway(item: Any, where: str) -> Gateway:
    if not isinstance(item, dict):
        raise ConfigurationError(f"{where} must be a table {{ url = ..., max_tps = ... }}")
    unknown = sorted(set(item) - GATEWAY_KEYS)
    if unknown:
        known = ", ".join(sorted(GATEWAY_KEYS))
        raise ConfigurationError(f"{where}: unknown key {unknown[0]!r} (known: {known})")
    url = item.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{where}: url must be an http:// or https:// URL, got {url!r}")
    max_tps = item.get("max_tps", 0)
    if isinstance(max_tps, bool) or not isinstance(max_tps, int | float) or max_tps < 0:
        raise ConfigurationError(f"{where}: max_tps must be a number >= 0 (0: no cap), got {max_tps!r}")
    return Gateway(
        url,
        float(max_tps),
        protocol=_protocol(item.get("protocol", "iska"), where),
        username=_plain(item.get("username", ""), "username", where),
        sender=_plain(item.get("sender", ""), "sender", where),
        secret_env=_secret_env(item.get("secret_env", ""), where),
    )


def _protocol(value: Any, where: str) -> str:
    if value not in PROTOCOLS:
        raise ConfigurationError(f"{where}: protocol must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return str(value)


def _plain(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise ConfigurationError(f"{where}: {key} must be a string of at most 64 characters, got {value!r}")
    return value.strip()


def _secret_env(value: Any, where: str) -> str:
    """The *name* of the variable holding the secret; the secret itself never sits in the file."""
    if value == "":
        return ""
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        raise ConfigurationError(
            f"{where}: secret_env names the environment variable holding the gateway's password or "
            f'key (e.g. secret_env = "KANNEL_GH_PASSWORD"), got {value!r}'
        )
    return value


def _no_shared_prefix(regions: tuple[Region, ...], where: str) -> None:
    owner: dict[str, str] = {}
    for region in regions:
        for prefix in region.prefixes:
            if prefix in owner and owner[prefix] != region.code:
                raise ConfigurationError(
                    f"{where}: prefix {prefix!r} is in both [{owner[prefix]}] and [{region.code}]"
                )
            owner[prefix] = region.code


def _no_duplicate_code(regions: tuple[Region, ...], where: str) -> None:
    seen: set[str] = set()
    for region in regions:
        if region.code.upper() in seen:
            raise ConfigurationError(
                f"{where}: region code [{region.code}] appears twice (codes ignore case)"
            )
        seen.add(region.code.upper())
