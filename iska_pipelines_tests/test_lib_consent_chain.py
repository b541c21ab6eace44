"""The consent log (SPEC §13): rows chained by SHA-256; `verify` and `iska consent verify` name
the first row that was edited or follows a deleted one. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from iska_pipelines.cli import main
from iska_pipelines.lib.consent.chain import GENESIS, Consent, append, history, verify
from iska_pipelines.lib.db.schema import consent_events
from iska_pipelines.lib.vocabulary import ConsentEvent, ConsentSource

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def some_changes(count: int) -> list[Consent]:
    events = [ConsentEvent.ADDED, ConsentEvent.OPTED_OUT, ConsentEvent.REJOINED, ConsentEvent.CANCELLED]
    return [
        Consent(
            f"23320000{n:04d}",
            events[n % len(events)],
            ConsentSource.SMS if n % 2 else ConsentSource.FILE,
            f"additions_{n}.csv sha256 {n:064x}",
            T0 + timedelta(minutes=n),
        )
        for n in range(count)
    ]


def ids(engine) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.select(consent_events.c.id).order_by(consent_events.c.id)).scalars()
        )


def test_appended_rows_chain_to_each_other_and_the_whole_log_verifies(engine):
    with engine.begin() as connection:
        append(connection, some_changes(3))
    with engine.begin() as connection:
        append(connection, some_changes(2))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(consent_events).order_by(consent_events.c.id)).all()
        found = verify(connection)
    assert found.ok and found.rows == 5
    assert rows[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(rows))


def test_editing_one_row_by_hand_makes_verify_name_that_row(engine):
    with engine.begin() as connection:
        append(connection, some_changes(5))
    edited = ids(engine)[2]
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE consent_events SET event = 'added' WHERE id = :id"), {"id": edited}
        )
    with engine.connect() as connection:
        found = verify(connection)
    assert (found.ok, found.broken_id, found.rows) == (False, edited, 2)


def test_moving_a_rows_time_by_one_microsecond_is_found(engine):
    with engine.begin() as connection:
        append(connection, some_changes(3))
    edited = ids(engine)[1]
    with engine.begin() as connection:
        connection.execute(
            consent_events.update()
            .where(consent_events.c.id == edited)
            .values(at=T0 + timedelta(minutes=1, microseconds=1))
        )
    with engine.connect() as connection:
        assert verify(connection).broken_id == edited


def test_deleting_a_row_makes_verify_name_the_row_after_it(engine):
    with engine.begin() as connection:
        append(connection, some_changes(4))
    _, second, third, _ = ids(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM consent_events WHERE id = :id"), {"id": second})
    with engine.connect() as connection:
        assert verify(connection).broken_id == third


def test_iska_consent_verify_passes_then_fails_naming_the_edited_row(
    engine, database_url, data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("ISKA_DATABASE_URL", database_url)
    monkeypatch.setenv("ISKA_DATA_DIR", str(data_dir))
    with engine.begin() as connection:
        append(connection, some_changes(3))
    assert main(["consent", "verify"]) == 0
    assert "3 rows" in capsys.readouterr().out
    edited = ids(engine)[1]
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE consent_events SET detail = 'nothing happened' WHERE id = :id"), {"id": edited}
        )
    assert main(["consent", "verify"]) == 1
    assert f"row id {edited}" in capsys.readouterr().out


def test_one_subscribers_history_is_their_rows_oldest_first(engine):
    changes = some_changes(3)
    again = Consent(
        changes[0].msisdn, ConsentEvent.OPTED_OUT, ConsentSource.SMS, "inbound 9", T0 + timedelta(hours=1)
    )
    with engine.begin() as connection:
        append(connection, [*changes, again])
        found = history(connection, changes[0].msisdn)
    assert [(r["event"], r["source"]) for r in found] == [("added", "file"), ("opted_out", "sms")]
    assert found[0]["at"] == T0


def test_an_empty_log_verifies(engine):
    with engine.connect() as connection:
        assert verify(connection).ok


def test_writers_appending_at_once_never_chain_on_the_same_row(engine):
    def write(batch: int) -> None:
        for _ in range(5):
            with engine.begin() as connection:
                append(connection, some_changes(3))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as connection:
        found = verify(connection)
        prev_hashes = connection.execute(sa.select(consent_events.c.prev_hash)).scalars().all()
    assert found.ok and found.rows == 4 * 5 * 3
    assert len(set(prev_hashes)) == len(prev_hashes)  # no two rows follow the same row
