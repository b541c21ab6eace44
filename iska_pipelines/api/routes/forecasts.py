"""`/forecasts/api/v1/forecasts/`: the grid's forecasts (SPEC §4, §8).

Create and update follow a forecasts file's rules (upsert by gid, the same value checks, active
subscriptions reassigned when the grid changes); delete makes the point inactive.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.api.pagination import DEFAULT_LIMIT, Limit, Offset, Page, page
from iska_pipelines.api.schemas import ErrorBody, Forecast, ForecastIn
from iska_pipelines.lib.errors import FieldError, InvalidRecord
from iska_pipelines.lib.forecasts.records import (
    deactivate_forecast,
    find_forecast,
    get_forecast,
    list_forecasts,
    merged,
    save_forecast,
)
from iska_pipelines.lib.forecasts.rules import check_forecast
from iska_pipelines.lib.settings import Settings

BASE = "/forecasts/api/v1/forecasts/"
REQUIRED = ["gid", "lat", "lon", "fcat24", "fcat48"]
GidPath = Annotated[int, Path(ge=1, le=999_999_999_999_999_999, description="grid point id")]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}

router = APIRouter(tags=["forecasts"], dependencies=[Depends(require_access)], responses=ERRORS)


def _values(body: ForecastIn) -> dict:
    return body.model_dump(exclude_unset=True)


@router.get(BASE, response_model=Page[Forecast])
def forecasts(
    request: Request,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    is_active: Annotated[bool | None, Query()] = None,
    engine: sa.Engine = Depends(database),
) -> dict:
    with engine.connect() as connection:
        count, rows = list_forecasts(connection, limit, offset, is_active)
    return page(request, count, limit, offset, [Forecast.of(row) for row in rows])


@router.post(
    BASE,
    response_model=Forecast,
    status_code=201,
    responses={200: {"model": Forecast, "description": "an existing gid, updated"}},
)
def create_forecast(
    body: ForecastIn,
    response: Response,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> Forecast:
    """Upsert by gid like a forecasts file: 201 for a new gid, 200 for an existing one."""
    values = check_forecast(_values(body), required=REQUIRED)
    with engine.begin() as connection:
        existed = values.gid is not None and find_forecast(connection, values.gid) is not None
        row = save_forecast(connection, values, config.max_grid_distance_km)
    response.status_code = 200 if existed else 201
    return Forecast.of(row)


@router.get(BASE + "{gid}/", response_model=Forecast)
def forecast(gid: GidPath, engine: sa.Engine = Depends(database)) -> Forecast:
    with engine.connect() as connection:
        return Forecast.of(get_forecast(connection, gid))


def _change(gid: int, body: ForecastIn, engine: sa.Engine, config: Settings, required: list[str]) -> Forecast:
    given = check_forecast(
        {**_values(body), "gid": body.gid if body.gid is not None else gid}, required=required
    )
    if given.gid != gid:
        raise InvalidRecord([FieldError("gid", "read_only", f"the gid in the path is {gid}")])
    with engine.begin() as connection:
        row = save_forecast(
            connection, merged(get_forecast(connection, gid), given), config.max_grid_distance_km
        )
    return Forecast.of(row)


@router.put(BASE + "{gid}/", response_model=Forecast)
def replace_forecast(
    gid: GidPath,
    body: ForecastIn,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> Forecast:
    return _change(gid, body, engine, config, REQUIRED[1:])


@router.patch(BASE + "{gid}/", response_model=Forecast)
def update_forecast(
    gid: GidPath,
    body: ForecastIn,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> Forecast:
    return _change(gid, body, engine, config, [])


@router.delete(BASE + "{gid}/", status_code=204, response_class=Response)
def delete_forecast(
    gid: GidPath, engine: sa.Engine = Depends(database), config: Settings = Depends(settings)
) -> Response:
    """The point becomes inactive (kept for history); subscribers move to the next nearest."""
    with engine.begin() as connection:
        deactivate_forecast(connection, gid, config.max_grid_distance_km)
    return Response(status_code=204)
