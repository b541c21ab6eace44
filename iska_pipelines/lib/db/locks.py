"""Transaction-level locks that serialise ISKA's writers across processes."""

import sqlalchemy as sa

SUBSCRIPTIONS_LOCK_ID = 0x15CA_0002
# 0x15CA_0001 migrations (db/engine.py), 0x15CA_0003 billing runs (billing/run.py)
CONSENT_LOCK_ID = 0x15CA_0C0E


def lock_subscriptions(connection: sa.Connection) -> None:
    """Serialise subscription writers even if the run queue is misconfigured, and grid changes
    with them (forecasts/storage.py takes it too): nearest-point assignment never interleaves
    with a grid change. Held to the end of the transaction; taking it again is harmless."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": SUBSCRIPTIONS_LOCK_ID})
    # SQLite: every ISKA transaction begins IMMEDIATE, which already holds the write lock


def lock_consent(connection: sa.Connection) -> None:
    """Serialise appends to the consent log (lib/consent/chain.py): two writers never chain on
    the same previous row. Held to the end of the transaction; SQLite's IMMEDIATE transactions
    hold the write lock already."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": CONSENT_LOCK_ID})


EARLY_REPORTS_LOCK_ID = 0x15CA_0E4A


def lock_early_reports(connection: sa.Connection) -> None:
    """Serialise a report that names a gateway id with the write of send outcomes carrying
    gateway ids (lib/sms/delivery.py): without it, on PostgreSQL, a report could be parked just
    as the outcome naming its id commits, each transaction missing the other's row, and the
    report would never be applied. Both sides take it before they read or write."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": EARLY_REPORTS_LOCK_ID})
