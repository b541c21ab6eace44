"""Charging due subscriptions (SPEC §6, §18): who is due, the key (and MoMo reference) of each
charge, what an answer changes, a run that charges everyone due concurrently, and, for an
asynchronous gateway, settling pending charges by callback or poll, once."""
