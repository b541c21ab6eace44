"""Errors shared across lib/: one module that imports nothing of ISKA, so anything may raise them."""


class ConfigurationError(ValueError):
    """A setting is missing or malformed; the message names the variable."""
