"""The Idempotency-Key of a charge: derived from what the charge is for, not from when it is sent.

(subscription, subscription period, billing period start, decline count) names one intent (SPEC
§6). The subscription period is told by `joins` (1 at the first addition, +1 at every
reactivation) and by `sub_date`: a rejoin is asked afresh even when it carries the same ts as the
earlier period, instead of getting that period's answer replayed. Every transport retry and every
re-execution after a crash sends the same key until the intent is settled; a success moves the
billing period on and a decline raises the count, so the next intent gets a new key. Nothing the
subscriber's data says goes into it, so it is always a plain ASCII header.
"""

from datetime import date, datetime

from iska_pipelines.lib.db.timestamps import as_utc


def idempotency_key(
    subscription_id: int, joins: int, sub_date: datetime, period_start: date, failed_billing_count: int
) -> str:
    joined = as_utc(sub_date)
    return (
        f"iska-{subscription_id}-{joins}-{joined:%Y%m%dT%H%M%S%f}"
        f"-{period_start:%Y%m%d}-{failed_billing_count}"
    )
