"""Errors shared across lib/: one module that imports nothing of ISKA, so anything may raise them.

A setting that is wrong (`ConfigurationError`), and why a record was refused, per field, in the
reason words the CSV files use (SPEC §3).
"""

from __future__ import annotations

from dataclasses import dataclass


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str  # a Reason value where the CSV rules have one (invalid_msisdn, stale_event, ...)
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason, "message": self.message}


class InvalidRecord(ValueError):
    """The values break a data rule; nothing was written."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class RecordConflict(ValueError):
    """The values are valid but the stored state refuses them (e.g. a stale event)."""

    def __init__(self, error: FieldError):
        super().__init__(error.message)
        self.errors = [error]


class RecordNotFound(LookupError):
    """No record with that id."""
