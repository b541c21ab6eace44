"""The Idempotency-Key of a charge: derived from what the charge is for, not from when it is sent.

(subscription, msisdn, period start, decline count) names one intent. Every transport retry and
every re-execution after a crash sends the same key until the intent is settled; a success moves
the period on and a decline raises the count, so the next intent gets a new key.
"""

from datetime import date


def idempotency_key(subscription_id: int, msisdn: str, period_start: date, failed_billing_count: int) -> str:
    return f"iska-{subscription_id}-{msisdn}-{period_start:%Y%m%d}-{failed_billing_count}"
