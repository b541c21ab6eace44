"""The subscription event rules of SPEC §5, as pure frame arithmetic.

`apply_events` takes the current state of the msisdns a file touches and the file's events,
applies each msisdn's events in `ts` order (one vectorised round per position), and returns the
new state plus the outcome of every event. No database here: subscriptions/storage.py loads the
state and writes the result back with set-based SQL.

An event older than the subscription's `last_event_at` is `stale_event`. An event at exactly
`last_event_at` that would change nothing counts as `unchanged`, with nothing written, so the row
and its `updated_at` stay as they are. One that would change something applies when its file is
new (SPEC §5: only older events are stale), but not when an applied file is run again: the
instant is then already taken by what came after, and the re-run must change nothing
(`stale_event`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

import polars as pl
from polars.datatypes import DataTypeClass

from iska_pipelines.lib.inbox.reading import REASON, ROW
from iska_pipelines.lib.vocabulary import CancelReason, FileKind, Reason, SubscriptionStatus

ACTIVE = SubscriptionStatus.ACTIVE.value
CANCELLED = SubscriptionStatus.CANCELLED.value
OUTCOME = "outcome"
NEXT = "_next"  # suffix of the state an applied event proposes, before it is kept or refused
STATE_COLUMNS: dict[str, pl.DataType | DataTypeClass] = {
    "id": pl.Int64,
    "msisdn": pl.String,
    "plan": pl.String,
    "status": pl.String,
    "cancel_reason": pl.String,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "lid": pl.Int64,
    "sub_date": pl.Datetime("us", "UTC"),
    "unsub_date": pl.Datetime("us", "UTC"),
    "next_billing_date": pl.Date,
    "failed_billing_count": pl.Int64,
    "joins": pl.Int64,
    "last_event_at": pl.Datetime("us", "UTC"),
    "language": pl.String,
    "region": pl.String,
}


class Outcome:
    """How an applied event changed its subscription (run metadata counts these)."""

    NEW = "new"
    REACTIVATED = "reactivated"
    RENEWED = "already_active"
    CANCELLED = "cancelled"
    ALREADY_CANCELLED = "already_cancelled"
    LOCATION_UPDATED = "updated"
    UNCHANGED = "unchanged"  # the event that set last_event_at, applied again


@dataclass
class EventsApplied:
    state: pl.DataFrame  # STATE_COLUMNS + `touched`, one row per msisdn
    outcomes: pl.DataFrame  # `_row`, outcome (applied) or reason (refused)

    def counts(self) -> dict[str, int]:
        applied = self.outcomes.filter(pl.col(OUTCOME).is_not_null())
        counted = applied.group_by(OUTCOME).len()
        return dict(zip(counted[OUTCOME].to_list(), counted["len"].to_list(), strict=True))


def empty_state() -> pl.DataFrame:
    return pl.DataFrame(schema=STATE_COLUMNS)


def apply_events(
    state: pl.DataFrame, events: pl.DataFrame, kind: FileKind, today: date, rerun: bool = False
) -> EventsApplied:
    """`events`: `_row`, msisdn, ts (+ lat, lon, lid, no_grid for additions and updates,
    + plan, language, region and region_guess for additions). Returns the new state and one
    outcome row per event."""
    state = state.with_columns(touched=pl.lit(False))
    if kind is FileKind.ADDITIONS:
        for chosen in ("language", "region", "region_guess"):
            if chosen not in events.columns:
                events = events.with_columns(pl.lit(None, pl.String).alias(chosen))  # none chosen
    ordered = events.sort("msisdn", "ts", ROW).with_columns(
        _round=pl.col("ts").rank("ordinal").over("msisdn")
    )
    outcomes = []
    rounds = cast(int | None, ordered["_round"].max())  # an ordinal rank: a whole number
    for round_number in range(1, (rounds or 0) + 1):
        batch = ordered.filter(pl.col("_round") == round_number).drop("_round")
        batch = batch.rename(
            {c: f"{c}_new" for c in ("lat", "lon", "lid", "plan", "language", "region") if c in batch.columns}
        )
        joined = batch.join(state, on="msisdn", how="left")
        decided = _settle_repeats(
            joined.with_columns(_decide(kind)).with_columns(_next_state(kind, today)), rerun
        )
        outcomes.append(decided.select(ROW, OUTCOME, REASON))
        changed = decided.filter(
            pl.col(OUTCOME).is_not_null() & (pl.col(OUTCOME) != Outcome.UNCHANGED)
        ).select(
            [pl.col(f"{name}{NEXT}").alias(name) for name in STATE_COLUMNS] + [pl.lit(True).alias("touched")]
        )
        state = pl.concat(
            [
                state.filter(~pl.col("msisdn").is_in(changed["msisdn"].implode())),
                changed.select(state.columns),
            ],
            how="vertical_relaxed",
        )
    result = (
        pl.concat(outcomes)
        if outcomes
        else pl.DataFrame(schema={ROW: pl.UInt32, OUTCOME: pl.String, REASON: pl.String})
    )
    return EventsApplied(state=state, outcomes=result)


def _decide(kind: FileKind) -> list[pl.Expr]:
    known = pl.col("status").is_not_null()
    stale = known & (pl.col("ts") < pl.col("last_event_at"))
    if kind is FileKind.ADDITIONS:
        reason = (
            pl.when(stale)
            .then(pl.lit(Reason.STALE_EVENT.value))
            .when(pl.col("no_grid"))
            .then(pl.lit(Reason.NO_GRID_POINT_NEARBY.value))
        )
        outcome = (
            pl.when(~known)
            .then(pl.lit(Outcome.NEW))
            .when(pl.col("status") == ACTIVE)
            .then(pl.lit(Outcome.RENEWED))
            .otherwise(pl.lit(Outcome.REACTIVATED))
        )
    elif kind is FileKind.CANCELLATIONS:
        reason = (
            pl.when(~known)
            .then(pl.lit(Reason.UNKNOWN_MSISDN.value))
            .when(stale)
            .then(pl.lit(Reason.STALE_EVENT.value))
        )
        outcome = (
            pl.when(pl.col("status") == ACTIVE)
            .then(pl.lit(Outcome.CANCELLED))
            .otherwise(pl.lit(Outcome.ALREADY_CANCELLED))
        )
    else:
        reason = (
            pl.when(~known)
            .then(pl.lit(Reason.UNKNOWN_MSISDN.value))
            .when(stale)
            .then(pl.lit(Reason.STALE_EVENT.value))
            .when(pl.col("no_grid"))
            .then(pl.lit(Reason.NO_GRID_POINT_NEARBY.value))
        )
        outcome = pl.lit(Outcome.LOCATION_UPDATED)
    refused = reason.otherwise(pl.lit(None, pl.String))
    return [
        refused.alias(REASON),
        pl.when(refused.is_null()).then(outcome).otherwise(pl.lit(None, pl.String)).alias(OUTCOME),
    ]


def _next_state(kind: FileKind, today: date) -> list[pl.Expr]:
    """The state each applied event proposes, as `<column>_next` beside the current state."""
    outcome = pl.col(OUTCOME)
    keep = {name: pl.col(name) for name in STATE_COLUMNS}
    if kind is FileKind.ADDITIONS:
        fresh = outcome.is_in([Outcome.NEW, Outcome.REACTIVATED])
        keep |= {
            "lat": pl.col("lat_new"),
            "lon": pl.col("lon_new"),
            "lid": pl.col("lid_new"),
            "plan": pl.col("plan_new"),
            # a language given with the addition sets it; none keeps the one chosen before
            "language": pl.coalesce(pl.col("language_new"), pl.col("language")),
            # the same for the region (SPEC §15); never chosen: the msisdn's prefix's region
            "region": pl.coalesce(pl.col("region_new"), pl.col("region"), pl.col("region_guess")),
            "status": pl.lit(ACTIVE),
            "cancel_reason": pl.when(fresh).then(None).otherwise(pl.col("cancel_reason")),
            "unsub_date": pl.when(fresh).then(None).otherwise(pl.col("unsub_date")),
            "sub_date": pl.when(fresh).then(pl.col("ts")).otherwise(pl.col("sub_date")),
            "next_billing_date": pl.when(fresh).then(pl.lit(today)).otherwise(pl.col("next_billing_date")),
            "failed_billing_count": pl.when(fresh).then(0).otherwise(pl.col("failed_billing_count")),
            "joins": pl.when(fresh).then(pl.col("joins").fill_null(0) + 1).otherwise(pl.col("joins")),
        }
    elif kind is FileKind.CANCELLATIONS:
        cancelling = outcome == Outcome.CANCELLED
        keep |= {
            "status": pl.lit(CANCELLED),
            "cancel_reason": pl.when(cancelling)
            .then(pl.lit(CancelReason.USER.value))
            .otherwise(pl.col("cancel_reason")),
            "unsub_date": pl.when(cancelling).then(pl.col("ts")).otherwise(pl.col("unsub_date")),
        }
    else:
        keep |= {"lat": pl.col("lat_new"), "lon": pl.col("lon_new"), "lid": pl.col("lid_new")}
    keep["last_event_at"] = pl.max_horizontal(pl.col("ts"), pl.col("last_event_at"))
    return [expr.cast(STATE_COLUMNS[name]).alias(f"{name}{NEXT}") for name, expr in keep.items()]


def _settle_repeats(decided: pl.DataFrame, rerun: bool) -> pl.DataFrame:
    """Events at exactly `last_event_at`: `unchanged` when they change nothing; otherwise
    applied from a new file, stale in a re-run."""
    again = pl.col(OUTCOME).is_not_null() & (pl.col("ts") == pl.col("last_event_at"))
    same = pl.all_horizontal([pl.col(f"{name}{NEXT}").eq_missing(pl.col(name)) for name in STATE_COLUMNS])
    taken = again & ~same & pl.lit(rerun)
    return decided.with_columns(
        pl.when(taken).then(pl.lit(Reason.STALE_EVENT.value)).otherwise(pl.col(REASON)).alias(REASON),
        pl.when(again & same)
        .then(pl.lit(Outcome.UNCHANGED))
        .when(taken)
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col(OUTCOME))
        .alias(OUTCOME),
    )
