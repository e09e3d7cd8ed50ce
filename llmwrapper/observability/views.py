"""`GET /metrics`: the Prometheus text format, for allowed addresses and token holders.

Two independent checks, both applied when configured: the caller's address must be in
`METRICS_ALLOWED_IPS` (IPs or CIDRs; empty or `*` allows any), and when
`METRICS_TOKEN` is set, the request must carry `Authorization: Bearer <token>`. The
address is the connection's peer (`REMOTE_ADDR`): behind a reverse proxy that is the
proxy, so rely on the token there.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from llmwrapper.auth import parse_bearer
from llmwrapper.errors import error_response

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(allowed: tuple[str, ...]) -> tuple[IpNetwork, ...] | None:
    """The allowlist parsed once per distinct setting; None means any address."""
    entries = [entry.strip() for entry in allowed if entry.strip()]
    if not entries or "*" in entries:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _address_allowed(remote: str) -> bool:
    networks = _networks(tuple(settings.METRICS_ALLOWED_IPS))
    if networks is None:
        return True
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # "::ffff:127.0.0.1" from dual-stack sockets
    return any(address in network for network in networks)


def _denied(request: HttpRequest) -> JsonResponse | None:
    if not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        return error_response(
            "permission_denied", "Metrics are not available from this address.", 403
        )
    token = settings.METRICS_TOKEN
    if token:
        given = parse_bearer(request.META.get("HTTP_AUTHORIZATION")) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            response = error_response(
                "unauthenticated", "Send 'Authorization: Bearer <metrics token>'.", 401
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    # Every worker writes its values to files in that directory; sum them per scrape.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    denied = _denied(request)
    if denied is not None:
        return denied
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
