"""Charging due subscriptions (SPEC §6): who is due, the key of each charge, what an answer
changes, and a run that charges everyone due concurrently."""
