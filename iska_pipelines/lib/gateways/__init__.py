"""HTTP clients for the billing and SMS gateways."""
