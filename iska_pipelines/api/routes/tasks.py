"""`GET .../task_status/`: what became of an upload (or a launched run), in the old task words.

The original clients send `{"task_id": ...}` as a JSON body on GET; a `task_id` query parameter
works too. Status comes from Dagster's run storage and ISKA's record of the file (lib/tasks/status.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.api.run_storage import run_reader
from iska_pipelines.api.schemas import ErrorBody, TaskStatusOut
from iska_pipelines.lib.errors import FieldError, InvalidRecord
from iska_pipelines.lib.inbox.folders import InboxFolders
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.tasks.status import describe_task

PATHS = ("/forecasts/api/v1/forecasts/task_status/", "/subscriptions/api/v1/subscriptions/task_status/")
MAX_TASK_ID = 1000
BODY_DOC = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"task_id": {"type": "string", "maxLength": MAX_TASK_ID}},
                }
            }
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 422, 503)}

router = APIRouter(dependencies=[Depends(require_access)], responses=ERRORS)


def _missing(message: str) -> InvalidRecord:
    return InvalidRecord([FieldError("task_id", "required", message)])


async def _task_id(request: Request, query: str | None) -> str:
    raw = await request.body()
    if raw.strip():
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRecord(
                [FieldError("body", "json_invalid", 'the body must be JSON like {"task_id": "..."}')]
            ) from None
        given = body.get("task_id") if isinstance(body, dict) else None
        if given is not None:
            if not isinstance(given, str) or len(given) > MAX_TASK_ID:
                raise InvalidRecord(
                    [FieldError("task_id", "invalid", "must be the task_id string an upload answered")]
                )
            return given
    if query is None:
        raise _missing("send task_id as a JSON body or a query parameter")
    return query


async def status(
    request: Request,
    task_id: Annotated[str | None, Query(max_length=MAX_TASK_ID)] = None,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> TaskStatusOut:
    """PENDING (waiting or queued), STARTED, SUCCESS, FAILURE (a refused file too) or EXPIRED
    (unknown, or unfinished after TASK_TIMEOUT seconds)."""
    wanted = await _task_id(request, task_id)
    found = await run_in_threadpool(
        describe_task,
        wanted,
        engine,
        InboxFolders(config.data_dir),
        run_reader(config),
        datetime.now(UTC),
        timedelta(seconds=config.task_timeout_seconds),
    )
    return TaskStatusOut(task_status=str(found.status), task_id=wanted, detail=found.detail)


for path in PATHS:
    router.add_api_route(
        path,
        status,
        methods=["GET"],
        response_model=TaskStatusOut,
        openapi_extra=BODY_DOC,
        name=f"task_status_{path.split('/')[1]}",
        tags=[path.split("/")[1]],
    )
