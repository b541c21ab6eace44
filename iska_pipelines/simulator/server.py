"""`iska simulator`: serve the gateway simulator with uvicorn."""

from __future__ import annotations

import uvicorn
from pydantic import ValidationError

from iska_pipelines.lib.settings import ConfigurationError
from iska_pipelines.simulator.app import create_app
from iska_pipelines.simulator.knobs import knobs_from_env


def serve(host: str = "127.0.0.1", port: int = 8010) -> int:
    try:
        knobs = knobs_from_env()
    except ValidationError as invalid:
        field = str(invalid.errors()[0]["loc"][0])
        raise ConfigurationError(f"ISKA_SIM_{field.upper()}: {invalid.errors()[0]['msg']}") from None
    if not knobs.tokens:
        raise ConfigurationError(
            "BILLING_TOKEN is not set: the simulator accepts the token its clients send (see .env-example)"
        )
    uvicorn.run(create_app(knobs), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
    return 0
