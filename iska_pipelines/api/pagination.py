"""limit/offset pages in the original response shape: {count, next, previous, results}.

`next` and `previous` are absolute URLs that keep the request's filters, as the original
service's clients follow them.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 10**12  # far beyond any table, and inside every database's integer range

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


def page(request: Request, count: int, limit: int, offset: int, results: list) -> dict:
    url = request.url
    following = None
    if offset + limit < count:
        following = str(url.include_query_params(limit=limit, offset=offset + limit))
    preceding = None
    if offset > 0:
        back = offset - limit
        preceding = str(
            url.include_query_params(limit=limit).remove_query_params("offset")
            if back <= 0
            else url.include_query_params(limit=limit, offset=back)
        )
    return {"count": count, "next": following, "previous": preceding, "results": results}
