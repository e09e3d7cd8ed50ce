"""An async DRF view, for endpoints that wait on LLM providers.

Under ASGI, Django runs every sync view on one shared thread, so a sync view waiting
seconds for a model would stall every other sync request of the process. Views that
call providers are therefore async: this class keeps DRF's request parsing,
authentication, permissions, exception handling and schema generation, and runs the
handler on the event loop. Authentication touches the database, so it runs in a thread,
and hands its connection back before the handler runs (llmwrapper/db.py).
"""

from __future__ import annotations

import inspect
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from rest_framework.views import APIView

from llmwrapper import db


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
        return self.response
