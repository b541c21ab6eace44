"""The original upload endpoints: the file goes into the inbox, the sensor takes it from there.

`curl -F file=@forecasts.csv .../forecasts/upload_csv/` answers `{"task_id": ...}`; the id is
the file's partition key, so `task_status/` and the Dagster UI speak of the same thing.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, File, UploadFile

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import settings
from iska_pipelines.api.schemas import ErrorBody, TaskId
from iska_pipelines.lib.inbox.folders import InboxFolders
from iska_pipelines.lib.inbox.uploads import write_upload
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.vocabulary import FileKind

log = logging.getLogger("iska.api.uploads")
CHUNK = 1 << 20
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 413, 422)}
UPLOADS = {
    "/forecasts/api/v1/forecasts/upload_csv/": FileKind.FORECASTS,
    "/subscriptions/api/v1/subscriptions/upload_additions_csv/": FileKind.ADDITIONS,
    "/subscriptions/api/v1/subscriptions/upload_cancellations_csv/": FileKind.CANCELLATIONS,
    "/subscriptions/api/v1/subscriptions/upload_updates_csv/": FileKind.UPDATES,
}

router = APIRouter(dependencies=[Depends(require_access)], responses=ERRORS)


def store(kind: FileKind, file: UploadFile, config: Settings) -> TaskId:
    folders = InboxFolders(config.data_dir)
    stored = write_upload(
        folders,
        kind,
        file.filename,
        iter(lambda: file.file.read(CHUNK), b""),
        config.max_upload_mb * 1024 * 1024,
    )
    log.info("upload %s (%d bytes) -> %s, task %s", file.filename, stored.size, stored.path, stored.task_id)
    return TaskId(task_id=stored.task_id)


def _endpoint(kind: FileKind):
    def upload(
        file: UploadFile = File(..., description=f"the {kind} CSV file"), config: Settings = Depends(settings)
    ) -> TaskId:
        return store(kind, file, config)

    upload.__name__ = f"upload_{kind}_csv"
    upload.__doc__ = (
        f"Put a {kind} file into the inbox (atomically) for the sensor; poll task_status/ with the task_id."
    )
    return upload


for path, kind in UPLOADS.items():
    router.add_api_route(
        path,
        _endpoint(kind),
        methods=["POST"],
        response_model=TaskId,
        tags=["forecasts" if kind is FileKind.FORECASTS else "subscriptions"],
    )
