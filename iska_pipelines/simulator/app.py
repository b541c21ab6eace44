"""The simulator's FastAPI app: the gateways, a subscriber (`/simulator/inbound`), `/stats`,
`/arrivals`, `/health`, `/admin/config`.

The gateways: billing (`POST /billing`; MTN MoMo Collections at `/collection/v1_0/requesttopay`,
with `POST /simulator/momo/callbacks` to send the callbacks a test held back), and SMS under `/sms/{name}` for any name, each name
speaking every protocol at once: `iska` (`POST /sms/{name}`), Kannel
(`GET /sms/{name}/cgi-bin/sendsms`), Africa's Talking (`POST /sms/{name}/version1/messaging`),
Twilio (`POST /sms/{name}/2010-04-01/Accounts/{sid}/Messages.json`) and Infobip
(`POST /sms/{name}/sms/3/messages`), with one set of knobs and one ledger.

`/admin/config` changes knobs while the server runs (tests set them per test); it is a
development tool and the simulator should only ever listen on a private address.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from iska_pipelines.simulator import billing, inbound, momo, protocols, sms
from iska_pipelines.simulator.faults import Dice
from iska_pipelines.simulator.knobs import Knobs
from iska_pipelines.simulator.ledger import Ledger
from iska_pipelines.simulator.reports import ReportSender


@dataclass
class Simulation:
    knobs: Knobs
    ledger: Ledger
    dice: Dice
    reports: ReportSender

    def reconfigure(self, changes: dict) -> Knobs:
        knobs = Knobs.model_validate(self.knobs.model_dump() | changes)
        if "script" in changes:
            self.ledger.set_scripts(knobs.script)
        if "momo_script" in changes:
            self.ledger.set_scripts(knobs.momo_script, momo.MOMO)
        if "faults" in changes:
            self.ledger.set_faults(knobs.faults)
        if "seed" in changes:
            self.dice = Dice(knobs.seed)
        self.knobs = knobs
        return knobs


def create_app(knobs: Knobs) -> FastAPI:
    ledger = Ledger()
    ledger.set_scripts(knobs.script)
    ledger.set_scripts(knobs.momo_script, momo.MOMO)
    ledger.set_faults(knobs.faults)
    sim = Simulation(knobs, ledger, Dice(knobs.seed), ReportSender(ledger))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        sim.reports.stop()

    app = FastAPI(title="ISKA gateway simulator", lifespan=lifespan)
    app.state.sim = sim
    app.include_router(billing.router)
    app.include_router(momo.router)
    app.include_router(sms.router)
    app.include_router(protocols.router)
    app.include_router(inbound.router)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict:
        return sim.ledger.stats()

    @app.get("/arrivals")
    async def arrivals(since: float = 0.0) -> dict:
        """Each request's arrival time (epoch seconds) per gateway, so a client's cap can be
        checked from the gateway's side."""
        return sim.ledger.arrivals(since)

    @app.get("/admin/config")
    async def show_config() -> dict:
        return sim.knobs.model_dump()

    @app.post("/admin/config")
    async def change_config(changes: dict) -> JSONResponse:
        try:
            knobs = sim.reconfigure(changes)
        except ValidationError as invalid:
            return JSONResponse(
                {"detail": invalid.errors(include_url=False, include_context=False)}, status_code=422
            )
        return JSONResponse(knobs.model_dump())

    return app
