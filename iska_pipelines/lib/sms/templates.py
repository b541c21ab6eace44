"""The templates file (SPEC §14): each language's texts, and the start-up check of every one.

One TOML file, a table per language code (`lib/sms/templates.toml`, or ISKA_TEMPLATES_FILE). At
start-up every text is rendered with the widest values it can take — every date of a leap year
in the language's `date_format`, numbers of 14 characters (NUMERIC(12,4) with a sign), a
`{price}` of 16 — after the GSM-7 fallback when it is on, and a text that could need more than
ISKA_MAX_SEGMENTS segments is a `ConfigurationError` naming the language, the text and the
count. So a message planned later can never be longer than the operator agreed to pay for.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from iska_pipelines.lib.errors import ConfigurationError
from iska_pipelines.lib.sms.encoding import Measure, gsm7_fallback, measure
from iska_pipelines.lib.sms.languages import ISO_639_1, normalise
from iska_pipelines.lib.sms.text import format_number

SHIPPED = Path(__file__).with_name("templates.toml")
FALLBACK_LANGUAGE = "en"
TEXTS = ("forecast", "opt_out", "rejoin_ask", "rejoin_done", "help")
WORDS = ("stop_words", "start_words", "yes_words")
KEYS = (*TEXTS, *WORDS, "date_format")
FIELDS = {
    "forecast": ("date", "fcat24", "fcat48"),
    "opt_out": (),
    "rejoin_ask": ("price",),
    "rejoin_done": (),
    "help": ("price",),
}
DATE_FIELDS = ("day", "month", "year", "month_name")
WIDEST_NUMBER = "-99999999.9999"
WIDEST = {"fcat24": WIDEST_NUMBER, "fcat48": WIDEST_NUMBER, "price": "X" * 16}
LEAP_YEAR = 2028


@dataclass(frozen=True)
class Language:
    """One table of the templates file."""

    code: str
    texts: dict[str, str]
    stop_words: tuple[str, ...]
    start_words: tuple[str, ...]
    yes_words: tuple[str, ...]
    date_format: str
    months: tuple[str, ...] = ()
    review: tuple[str, ...] = ()  # keys still waiting for a native speaker
    help_words: tuple[str, ...] = ()  # optional in the file: HELP/INFO in English

    @property
    def forecast(self) -> str:
        return self.texts["forecast"]

    def write_date(self, day: date) -> str:
        name = self.months[day.month - 1] if self.months else ""
        return self.date_format.format(day=day.day, month=day.month, year=day.year, month_name=name)

    def render_forecast(self, day: date, fcat24: Decimal, fcat48: Decimal) -> str:
        return self.forecast.format(
            date=self.write_date(day), fcat24=format_number(fcat24), fcat48=format_number(fcat48)
        )


@dataclass(frozen=True)
class Catalog:
    """Every language's texts and the rules a message is sent by."""

    languages: dict[str, Language]
    other_codes: frozenset[str] = frozenset()
    default_language: str = FALLBACK_LANGUAGE
    gsm7_fallback: bool = False
    max_segments: int = 1
    source: str = "ISKA_TEMPLATES_FILE"
    overridden: dict[str, str] = field(default_factory=dict)  # language -> variable that set its forecast

    @property
    def codes(self) -> frozenset[str]:
        """Every code the `language` column accepts (`invalid_language` otherwise)."""
        return ISO_639_1 | self.other_codes | frozenset(self.languages)

    def knows(self, code: str) -> bool:
        return normalise(code) in self.codes

    def language(self, code: str | None, region_default: str | None = None) -> Language:
        """The texts for a subscriber: their language, else their region's default language
        (`region_default`, the regions file's `language`, SPEC §15), else ISKA_DEFAULT_LANGUAGE,
        else English: the first of these that has a template."""
        for candidate in (code, region_default, self.default_language, FALLBACK_LANGUAGE):
            if candidate and normalise(candidate) in self.languages:
                return self.languages[normalise(candidate)]
        raise ConfigurationError(f"{self.source} has no [{FALLBACK_LANGUAGE}] table")

    def outgoing(self, text: str) -> tuple[str, Measure]:
        """The text as sent (after the GSM-7 fallback when it is on) and how it goes out."""
        sent = gsm7_fallback(text) if self.gsm7_fallback else text
        return sent, measure(sent)


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigurationError(f"{where}.{key} must be a list of words")
    return tuple(v.strip() for v in value)


def _language(code: str, table: Any, source: str) -> Language:
    where = f"{source} [{code}]"
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where} must be a table")
    missing = [key for key in KEYS if key not in table]
    if missing:
        raise ConfigurationError(f"{where} lacks {', '.join(missing)}")
    texts = {key: table[key] for key in TEXTS}
    for key, text in [*texts.items(), ("date_format", table["date_format"])]:
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(f"{where}.{key} must be a non-empty text")
    months = _strings(table, "months", where)
    if months and len(months) != 12:
        raise ConfigurationError(f"{where}.months must name the 12 months")
    return Language(
        code,
        texts,
        stop_words=_strings(table, "stop_words", where),
        start_words=_strings(table, "start_words", where),
        yes_words=_strings(table, "yes_words", where),
        date_format=table["date_format"],
        months=months,
        review=_strings(table, "review", where),
        help_words=_strings(table, "help_words", where),
    )


def _source(path: Path | None) -> str:
    return f"ISKA_TEMPLATES_FILE ({path})" if path else f"the shipped templates ({SHIPPED.name})"


def _read(path: Path | None) -> str:
    try:
        return (path or SHIPPED).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"{_source(path)} cannot be read: {error.strerror}") from None


def load_catalog(path: Path | None = None, text: str | None = None, **rules: Any) -> Catalog:
    """Read a templates file (default: the shipped one; `text`: its content, already read);
    `rules` are Catalog's other fields."""
    source = _source(path)
    try:
        data = tomllib.loads(_read(path) if text is None else text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{source} is not valid TOML: {error}") from None
    others = data.pop("other_languages", [])
    if not isinstance(others, list) or not all(isinstance(c, str) for c in others):
        raise ConfigurationError(f"{source} other_languages must be a list of codes")
    languages = {normalise(code): _language(normalise(code), table, source) for code, table in data.items()}
    if FALLBACK_LANGUAGE not in languages:
        raise ConfigurationError(f"{source} needs an [{FALLBACK_LANGUAGE}] table, the last fallback")
    return Catalog(languages, frozenset(normalise(c) for c in others), source=source, **rules)


def with_forecast(catalog: Catalog, template: str, variable: str = "ISKA_SMS_TEMPLATE") -> Catalog:
    """ISKA_SMS_TEMPLATE: the default language's forecast replaced (SPEC §7)."""
    target = catalog.language(catalog.default_language)
    changed = replace(target, texts={**target.texts, "forecast": template})
    return replace(
        catalog,
        languages={**catalog.languages, target.code: changed},
        overridden={**catalog.overridden, target.code: variable},
    )


def build_catalog(
    templates_file: Path | None,
    *,
    default_language: str,
    gsm7_fallback: bool,
    max_segments: int,
    sms_template: str | None,
) -> Catalog:
    """The deployment's catalog, checked: what Settings validates at start-up and sms_job uses.
    The file is read at every call; the check runs once per content and settings."""
    return _checked(
        templates_file,
        _read(templates_file),
        normalise(default_language),
        gsm7_fallback,
        max_segments,
        sms_template,
    )


@lru_cache(maxsize=32)
def _checked(
    templates_file: Path | None,
    text: str,
    default_language: str,
    gsm7_fallback: bool,
    max_segments: int,
    sms_template: str | None,
) -> Catalog:
    catalog = load_catalog(
        templates_file,
        text,
        default_language=default_language,
        gsm7_fallback=gsm7_fallback,
        max_segments=max_segments,
    )
    if sms_template is not None:
        catalog = with_forecast(catalog, sms_template)
    return check(catalog)


def _field_names(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def check_fields(text: str, allowed: tuple[str, ...], where: str) -> None:
    """Unknown or malformed fields are refused, naming the text and the fields it may use."""
    try:
        names = _field_names(text)
    except ValueError as error:
        raise ConfigurationError(f"{where} is not a valid template: {error}") from None
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        allowed_text = ", ".join("{" + n + "}" for n in allowed) or "none"
        raise ConfigurationError(
            f"{where} uses unknown field(s) "
            f"{', '.join('{' + n + '}' for n in unknown)}; allowed: {allowed_text}"
        )


def _widest_dates(language: Language, where: str) -> set[str]:
    check_fields(language.date_format, DATE_FIELDS, f"{where}.date_format")
    days = (date(LEAP_YEAR, 1, 1) + timedelta(days=n) for n in range(366))
    try:
        return {language.write_date(day) for day in days}
    except (ValueError, IndexError, KeyError) as error:
        raise ConfigurationError(f"{where}.date_format is not a valid template: {error}") from None


def widest(catalog: Catalog, language: Language, key: str) -> tuple[str, Measure]:
    """The text of `key` at its widest (most segments, then most units), as it would be sent."""
    text = language.texts[key]
    where = _where(catalog, language, key)
    check_fields(text, FIELDS[key], where)
    dates = _widest_dates(language, f"{catalog.source} [{language.code}]") if key == "forecast" else {""}
    try:
        candidates = [catalog.outgoing(text.format(date=d, **WIDEST)) for d in dates]
    except (ValueError, IndexError, KeyError) as error:
        raise ConfigurationError(f"{where} is not a valid template: {error}") from None
    return max(candidates, key=lambda c: (c[1].segments, c[1].units))


def _where(catalog: Catalog, language: Language, key: str) -> str:
    if key == "forecast" and language.code in catalog.overridden:
        return f"{catalog.overridden[language.code]} (the [{language.code}] forecast)"
    return f"{catalog.source} [{language.code}] {key}"


def check(catalog: Catalog) -> Catalog:
    """Every text of every language within ISKA_MAX_SEGMENTS at its widest, or a
    ConfigurationError naming the language, the text and its count."""
    if not catalog.knows(catalog.default_language):
        raise ConfigurationError(
            f"ISKA_DEFAULT_LANGUAGE {catalog.default_language!r} is not an "
            "ISO 639 code or a language of the templates file"
        )
    for language in catalog.languages.values():
        for key in TEXTS:
            _, size = widest(catalog, language, key)
            if size.segments > catalog.max_segments:
                unit = "septets" if size.encoding == "gsm7" else "UTF-16 characters"
                hint = (
                    ""
                    if catalog.gsm7_fallback or size.encoding == "gsm7"
                    else ", or set ISKA_GSM7_FALLBACK=true to spell it in GSM-7"
                )
                raise ConfigurationError(
                    f"{_where(catalog, language, key)} takes {size.segments} "
                    f"{size.encoding.upper().replace('GSM7', 'GSM-7').replace('UCS2', 'UCS-2')} "
                    f"segments with the widest values ({size.units} {unit}); ISKA_MAX_SEGMENTS is "
                    f"{catalog.max_segments}: shorten it{hint}"
                )
    return catalog
