"""docs/formats.md tells the truth: every refusal reason is listed, and each example row the
page gives is refused by the readers with exactly the reason the page names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.vocabulary import FileKind, Reason

FORMATS = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
# | `reason` | kind | `header` / `row` | why |
EXAMPLE = re.compile(r"^\| `(\w+)` \| [^|]+ \| `([^`]+)` / `([^`]+)` \|", re.MULTILINE)
# refused against the database, shown by the ingest tests (test_defs_subscriptions.py)
AGAINST_THE_DATABASE = {Reason.UNKNOWN_MSISDN, Reason.STALE_EVENT, Reason.NO_GRID_POINT_NEARBY}


def examples() -> list[tuple[str, str, str]]:
    return EXAMPLE.findall(FORMATS.read_text())


def kind_of(header: str) -> FileKind:
    columns = header.split(",")
    if "gid" in columns:
        return FileKind.FORECASTS
    if "service_id" in columns:
        return FileKind.ADDITIONS
    return FileKind.UPDATES if "lat" in columns else FileKind.CANCELLATIONS


def test_every_refusal_reason_is_documented():
    text = FORMATS.read_text()
    assert [r.value for r in Reason if f"| `{r.value}` |" not in text] == []


@pytest.mark.parametrize(("reason", "header", "row"), examples(), ids=lambda v: v[:24])
def test_the_documented_example_row_is_refused_with_its_reason(tmp_path, reason, header, row):
    path = tmp_path / "example.csv"
    path.write_text(f"{header}\n{row}\n")
    kind = kind_of(header)
    if kind is FileKind.FORECASTS:
        parsed = read_forecasts(path)
    else:
        parsed = read_subscription_file(path, kind, "Africa/Accra")
    if Reason(reason) in AGAINST_THE_DATABASE:
        assert parsed.rows_refused == 0  # a well-formed row: only the database can refuse it
    else:
        assert parsed.refused["reason"].to_list() == [reason]


def test_every_reason_found_while_reading_has_an_example():
    documented = {reason for reason, _, _ in examples()}
    read_time = {r.value for r in Reason} - {r.value for r in AGAINST_THE_DATABASE}
    assert read_time - documented == {Reason.DUPLICATE_IN_FILE.value}  # shown in words
