"""An async DRF view, for endpoints that wait on LLM providers.

Under ASGI, Django runs every sync view on one shared thread, so a sync view waiting
seconds for a model would stall every other sync request of the process. Views that
call providers are therefore async: this class keeps DRF's request parsing,
authentication, permissions, exception handling and schema generation, and runs the
handler on the event loop. Authentication may touch the database (a key this process
does not remember, the key's last use to record) and rate limits may count in Redis:
then it runs in a thread, and hands its connection back before the handler runs
(llmwrapper/db.py). Otherwise (`auth.checks_in_memory`) it runs on the loop, with no
thread hop.
"""

from __future__ import annotations

import inspect
from typing import Any

from django.core.exceptions import SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from llmwrapper import auth, db
from llmwrapper.renderers import EventStreamRenderer


class AsyncAPIView(APIView):
    # True for views whose handler reads the database at once: authentication's
    # connection is then kept for it (see `db.run`), instead of a second checkout.
    keeps_connection = False

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            if not self._initial_in_memory(request, *args, **kwargs):
                await db.run(self.initial, request, *args, keep=self.keeps_connection, **kwargs)
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                response = self.http_method_not_allowed(request, *args, **kwargs)
            else:
                response = handler(request, *args, **kwargs)
                if inspect.isawaitable(response):  # DRF's own handlers (OPTIONS) are sync
                    response = await response
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        if isinstance(request._request, ASGIRequest):
            _render_in_memory(self.response)
        return self.response

    def _initial_in_memory(self, request: Request, *args: Any, **kwargs: Any) -> bool:
        """Run `initial` on the loop when it needs no I/O; False to run it in a thread
        (also when a remembered key expired meanwhile: the ORM then refuses at once)."""
        if self.keeps_connection or not auth.checks_in_memory(request):
            return False
        try:
            self.initial(request, *args, **kwargs)
        except SynchronousOnlyOperation:
            return False
        return True


def _render_in_memory(response: HttpResponseBase) -> None:
    """Render a JSON (or SSE error) response here, on the loop: Django's ASGI handler
    would otherwise hop to the request's thread to render it (its async `render` is
    what it awaits instead). Other renderers (the browsable API) may read the
    database, and keep rendering there."""
    if not isinstance(response, Response) or response.is_rendered:
        return
    if not isinstance(getattr(response, "accepted_renderer", None), _IN_MEMORY_RENDERERS):
        return
    response.render()

    async def rendered() -> Response:
        return response

    response.render = rendered  # type: ignore[method-assign]


_IN_MEMORY_RENDERERS = (JSONRenderer, EventStreamRenderer)
