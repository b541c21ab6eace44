"""Consent and inbound SMS (SPEC §13)."""
