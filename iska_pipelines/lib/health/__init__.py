"""The service's health by day (SPEC §16): counts from ISKA's tables, no Dagster here."""
