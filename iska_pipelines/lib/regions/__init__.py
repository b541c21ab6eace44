"""Regions and send windows (SPEC §15): the countries one deployment serves, each with its time
zone, SMS hour, default language, msisdn prefixes and SMS gateways."""
