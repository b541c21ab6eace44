"""The ISKA HTTP API (SPEC §8): FastAPI app, one router per resource."""
