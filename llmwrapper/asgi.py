"""ASGI entry point: HTTP through Django (the common case of the hottest endpoints
through the hot lane in front of it, `llmwrapper.lane`), WebSocket through Channels'
router.

Importing it (what every server does first) also makes the process's logging redact
credentials, the server's own access lines included.
"""

import gc
import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmwrapper.settings")

from llmwrapper.asgi_handler import get_asgi_application

# Django must be set up before anything imports models. Requests reuse their threads.
django_asgi_app = get_asgi_application()

# Now that the server and Django have set up logging: every handler redacts credentials.
from llmwrapper.observability import redaction  # noqa: E402

redaction.install()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from llmwrapper.middleware import AllowedHostsWebSocketMiddleware  # noqa: E402
from llmwrapper.observability.tracing import (  # noqa: E402
    TracedAsgiApp,
    configure_tracing_from_settings,
)
from llmwrapper.routing import websocket_urlpatterns  # noqa: E402

# Off (nothing installed) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
configure_tracing_from_settings()

if settings.CHAT_LEASE_SWEEP:
    # Every serving process renews its streams' leases and ends those of dead workers.
    from chats.leases import start_sweeper

    start_sweeper()

http_app: Any = django_asgi_app
if settings.HOT_LANE:
    # The common case of the hottest endpoints skips Django's machinery.
    from llmwrapper.lane import HotLane
    from surfaces.routes import LANE_PATTERNS, LANE_ROUTES

    http_app = HotLane(django_asgi_app, LANE_ROUTES, LANE_PATTERNS)

application = ProtocolTypeRouter(
    {
        "http": TracedAsgiApp(http_app),
        "websocket": AllowedHostsWebSocketMiddleware(URLRouter(websocket_urlpatterns)),
    }
)

# Everything loaded so far (Django, DRF, the app's modules) lives as long as the process:
# frozen, the collector's full passes no longer walk it. Each one walked a worker's whole
# heap and paused it for 20-40 ms, which was the p99 of a completion at concurrency 1.
gc.freeze()
