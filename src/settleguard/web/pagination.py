"""Every list is paginated by ``limit`` and ``offset`` and answered as
``{"items": [...], "total": n, "limit": l, "offset": o}`` (``total``: all rows matching the filters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(  # async: no I/O, no worker thread
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页行数 rows per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="跳过的行数 rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit, offset)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def page(items: list[Any], total: int, params: PageParams) -> dict[str, Any]:
    """The response body of a list (validated against ``Page[Item]`` by the route's response model)."""
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset}


def empty(params: PageParams) -> dict[str, Any]:
    return page([], 0, params)
