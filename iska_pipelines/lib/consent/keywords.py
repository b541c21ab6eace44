"""Which keyword an inbound SMS is (SPEC §13): its first word, case- and accent-insensitive.

The words are data: every language's `stop_words`, `start_words`, `yes_words` and `help_words`
in the templates file (SPEC §14), plus ISKA_STOP_WORDS. A word of any language counts for every
subscriber (a French speaker whose language is English can still write ARRÊT). A word listed
under two keywords counts as the first of STOP, START, YES, HELP: stopping is never missed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from iska_pipelines.lib.sms.templates import Catalog
from iska_pipelines.lib.vocabulary import Keyword

FIRST_WORD = re.compile(r"[^\W_]+")
PRECEDENCE = (Keyword.STOP, Keyword.START, Keyword.YES, Keyword.HELP)


def fold(word: str) -> str:
    """Upper case without accents: `Arrêt` -> `ARRET`. Letters that are not accented forms of
    another (ɛ, ɔ, ŋ) stay as they are, upper-cased."""
    decomposed = unicodedata.normalize("NFKD", word.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def first_word(text: str) -> str:
    """The first run of letters or digits, folded; empty for a text without one."""
    found = FIRST_WORD.search(unicodedata.normalize("NFKC", text))
    return fold(found.group(0)) if found else ""


@dataclass(frozen=True)
class Keywords:
    """Folded word -> keyword."""

    words: dict[str, Keyword]

    def match(self, text: str) -> Keyword:
        return self.words.get(first_word(text), Keyword.OTHER)


def keywords_of(catalog: Catalog, extra_stop_words: Iterable[str] = ()) -> Keywords:
    lists: dict[Keyword, list[str]] = {keyword: [] for keyword in PRECEDENCE}
    for language in catalog.languages.values():
        lists[Keyword.STOP] += language.stop_words
        lists[Keyword.START] += language.start_words
        lists[Keyword.YES] += language.yes_words
        lists[Keyword.HELP] += language.help_words
    lists[Keyword.STOP] += list(extra_stop_words)
    words: dict[str, Keyword] = {}
    for keyword in PRECEDENCE:
        for word in lists[keyword]:
            words.setdefault(fold(word), keyword)
    return Keywords(words)
