"""The daily SMS (SPEC §7): text, outbox, sending, delivery reports, expiry."""
