"""A stand-in for the billing and SMS gateways (SPEC §9), for development and tests."""
