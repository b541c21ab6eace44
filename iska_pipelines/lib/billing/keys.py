"""The Idempotency-Key of a charge: derived from what the charge is for, not from when it is sent.

(subscription, subscription period, billing period start, decline count) names one intent. The
subscription period is its `sub_date`: a rejoin (SPEC §5) starts a new one, so a subscriber
cancelled for billing and re-added the same day is asked afresh instead of getting the stored
declines replayed. Every transport retry and every re-execution after a crash sends the same key
until the intent is settled; a success moves the period on and a decline raises the count, so
the next intent gets a new key. The count of answers the subscription has settled so far (successes
and declines) goes in too: a rejoin can carry the same ts as the first addition, and then only
that count tells its first charge from the earlier period's. Nothing the subscriber's data says
goes into it, so it is always a plain ASCII header.
"""

from datetime import date, datetime

from iska_pipelines.lib.storage.timestamps import as_utc


def idempotency_key(subscription_id: int, sub_date: datetime, period_start: date,
                    failed_billing_count: int, settled_answers: int = 0) -> str:
    joined = as_utc(sub_date)
    return (f"iska-{subscription_id}-{joined:%Y%m%dT%H%M%S%f}"
            f"-{period_start:%Y%m%d}-{failed_billing_count}-{settled_answers}")
