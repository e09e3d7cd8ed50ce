"""Static files (the admin's, Swagger UI's and ReDoc's) served by the service itself.

WhiteNoise finds the files and answers with their compressed variants, ETags and
caching headers (hashed names from `collectstatic` are cached for a year). Its
middleware is sync-only: under ASGI, Django would then move every request, static or
not, to a thread and back. This one is async-capable: a request outside `STATIC_URL`
costs one prefix test, and a static file is read on a thread and sent whole (the
largest, Swagger UI's bundle, is about 1.5 MB, 0.4 MB compressed).
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware

from llmwrapper.middleware import AsyncCapableMiddleware


class StaticFilesMiddleware(AsyncCapableMiddleware):
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        with warnings.catch_warnings():
            # Before the first `collectstatic` (and in tests, which serve from the
            # apps' folders) STATIC_ROOT does not exist yet: nothing to warn about.
            if not os.path.isdir(settings.STATIC_ROOT or ""):
                warnings.filterwarnings("ignore", message="No directory at")
            self.files = WhiteNoiseMiddleware(get_response=None)
        self.prefix = self.files.static_prefix

    def _find(self, request: HttpRequest) -> Any:
        if not request.path_info.startswith(self.prefix):
            return None
        if self.files.autorefresh:
            return self.files.find_file(request.path_info)
        return self.files.files.get(request.path_info)

    def handle_sync(self, request: HttpRequest) -> HttpResponse:
        found = self._find(request)
        if found is None:
            return self.get_response(request)
        return self.files.serve(found, request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        found = self._find(request)
        if found is None:
            return await self.get_response(request)
        return await asyncio.to_thread(_whole_response, found, request)


def _whole_response(found: Any, request: HttpRequest) -> HttpResponse:
    """WhiteNoise's answer with its body read: Django's ASGI handler would otherwise
    warn about, and then read, a synchronous file iterator on every static request."""
    answer = found.get_response(request.method, request.META)
    body = b""
    if answer.file is not None:
        with answer.file as file:
            body = file.read()
    response = HttpResponse(body, status=int(answer.status))
    del response["Content-Type"]
    for name, value in answer.headers:
        response[name] = value
    return response
