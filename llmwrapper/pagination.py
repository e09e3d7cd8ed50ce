"""`?limit=&offset=` pagination of every list, with strict parameters."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from llmwrapper.api import query_param

# Far beyond any list, and within the 64-bit integers both databases take as OFFSET.
MAX_OFFSET = 1_000_000_000


def _integer_param(request: Request, name: str, *, minimum: int, maximum: int) -> int | None:
    field = serializers.IntegerField(min_value=minimum, max_value=maximum)
    return query_param(request, name, field)


class Pagination(LimitOffsetPagination):
    """Every list answers `{count, next, previous, results}`.

    `limit` defaults to 50 and is capped at 200; a `limit` or `offset` that is not a
    whole number in range is a 400, never silently replaced.
    """

    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Request) -> int:
        limit = _integer_param(request, self.limit_query_param, minimum=1, maximum=2**63 - 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        offset = _integer_param(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)
        return offset or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        limit, offset = super().get_schema_operation_parameters(view)
        limit["description"] = (
            f"Page size (default {self.default_limit}, at most {self.max_limit})."
        )
        limit["schema"] = {"type": "integer", "minimum": 1}
        offset["description"] = "How many items to skip."
        offset["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
        return [limit, offset]
