"""Outbound URL guard for webhook functions and MCP servers (SSRF protection).

A tenant chooses the URL, the service makes the request: without a guard a tenant could
reach the cloud metadata endpoint, the database or anything on the private network.

- ``check_url``/``acheck_url`` refuse bad schemes, credentials in the URL and any host
  that resolves to a non-public address, unless the operator allowlisted it.
- ``GuardedTransport`` re-does that check for every request and connects to the very
  address it vetted, keeping the original name for the Host header and TLS
  SNI/certificate checks: a DNS answer that changes between check and connect (DNS
  rebinding) cannot redirect the connection. It never hands back a redirect answer
  (``OutboundRedirectError`` instead), so neither a client's ``follow_redirects`` nor a
  library that follows redirects itself (the MCP SDK does, within an origin) can
  follow one.
- ``post_json`` adds a total timeout and a streamed response size cap (also on the
  decompressed size).
- ``redact_url`` is a URL as the API shows it: userinfo dropped, query values masked.

Messages never name the address a host resolved to: a tenant must not learn the
layout of the private network from a refusal.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import socket
import ssl
import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tools.errors import (
    OutboundRedirectError,
    OutboundRequestError,
    OutboundResponseTooLargeError,
    OutboundTimeoutError,
    UnsafeURLError,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Every status that asks the client to go elsewhere (300 and 303 included).
REDIRECT_STATUSES = frozenset({300, 301, 302, 303, 307, 308})


@dataclass(frozen=True)
class OutboundPolicy:
    # Hostnames, IPs or CIDRs the operator trusts although they are private,
    # e.g. ("127.0.0.1", "10.0.0.0/8", "mcp.internal").
    allow_private_hosts: tuple[str, ...] = ()
    allowed_schemes: tuple[str, ...] = ("https",)
    timeout_s: float = 10
    max_response_bytes: int = 1_000_000
    # A PEM file of the certificate authorities https servers are checked against
    # (an internal CA); None: the default trust store.
    ca_file: str | None = None

    def allows_host(self, host: str) -> bool:
        return _normalize_host(host) in {
            _normalize_host(entry) for entry in self.allow_private_hosts if not _is_ip_or_net(entry)
        }

    def allows_address(self, address: IPAddress) -> bool:
        for entry in self.allow_private_hosts:
            if _is_ip_or_net(entry) and address in ipaddress.ip_network(entry, strict=False):
                return True
        return False


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _is_ip_or_net(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return False
    return True


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified, shared
    and documentation ranges, also when an IPv4 address hides inside an IPv6 one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _parse(url: str | httpx.URL, policy: OutboundPolicy) -> tuple[str, int]:
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UnsafeURLError(f"invalid URL: {exc}", details={"reason": "invalid_url"}) from exc
    if parsed.scheme not in policy.allowed_schemes:
        allowed = ", ".join(policy.allowed_schemes)
        raise UnsafeURLError(
            f"URL scheme {parsed.scheme!r} is not allowed (allowed: {allowed})",
            details={"reason": "scheme_not_allowed"},
        )
    if parsed.userinfo:
        raise UnsafeURLError(
            "credentials in the URL are not allowed; send them as headers",
            details={"reason": "credentials_in_url"},
        )
    if not parsed.host:
        raise UnsafeURLError("the URL has no host", details={"reason": "no_host"})
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _vet(host: str, infos: list[Any], policy: OutboundPolicy) -> list[str]:
    """The resolved addresses, if ALL of them may be called; otherwise UnsafeURLError."""
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not (
            is_public_address(address) or policy.allows_host(host) or policy.allows_address(address)
        ):
            # Not the address itself: that would let a tenant map the private network.
            raise UnsafeURLError(
                f"{host} resolves to a non-public address; the operator must allowlist it",
                details={"host": host, "reason": "non_public_address"},
            )
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise _unresolved(host)
    return addresses


def _unresolved(host: str) -> UnsafeURLError:
    return UnsafeURLError(
        f"{host} does not resolve", details={"host": host, "reason": "does_not_resolve"}
    )


def check_url(url: str, policy: OutboundPolicy) -> list[str]:
    """Raise UnsafeURLError unless ``url`` may be called; return the vetted addresses."""
    host, port = _parse(url, policy)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _unresolved(host) from exc
    return _vet(host, infos, policy)


async def acheck_url(url: str, policy: OutboundPolicy) -> list[str]:
    """``check_url`` with the DNS lookup off the event loop."""
    host, port = _parse(url, policy)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _unresolved(host) from exc
    return _vet(host, infos, policy)


def _transport_class(module: ModuleType) -> type:
    """A guarded transport for ``httpx`` or its API-compatible fork ``httpx2``."""

    class GuardedTransport(module.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, policy: OutboundPolicy, **transport_kwargs: Any) -> None:
            self.policy = policy
            # trust_env=False: an HTTP(S)_PROXY from the environment would make the proxy,
            # not us, resolve the name and bypass the address check.
            self._inner = module.AsyncHTTPTransport(trust_env=False, **transport_kwargs)

        async def handle_async_request(self, request: Any) -> Any:
            url = request.url
            addresses = await acheck_url(str(url), self.policy)
            extensions = dict(request.extensions)
            if url.scheme == "https":
                extensions["sni_hostname"] = url.host  # certificate checked for the name
            last_error: Exception | None = None
            for address in addresses:
                # Same request, but connecting to the vetted address; the Host header
                # already carries the original name.
                pinned = module.Request(
                    request.method,
                    url.copy_with(host=address),
                    headers=request.headers,
                    stream=request.stream,
                    extensions=extensions,
                )
                try:
                    response = await self._inner.handle_async_request(pinned)
                except module.ConnectError as exc:
                    last_error = exc
                    continue
                if response.status_code in REDIRECT_STATUSES:
                    await response.aclose()
                    raise redirect_error(response.status_code)
                return response
            assert last_error is not None
            raise last_error

        async def aclose(self) -> None:
            await self._inner.aclose()

    return GuardedTransport


GuardedTransport = _transport_class(httpx)


def redirect_error(status: int) -> OutboundRedirectError:
    # The Location is not quoted: it may name an internal host.
    return OutboundRedirectError(
        f"the server answered with a redirect (HTTP {status}); redirects are not followed",
        details={"status": status},
    )


_TRANSPORT_KWARGS = ("verify", "cert", "http1", "http2", "limits", "retries", "socket_options")


def _client(module: ModuleType, transport_cls: type, policy: OutboundPolicy, **kw: Any) -> Any:
    for key in ("transport", "mounts", "proxy", "app", "uds"):
        if key in kw:
            raise ValueError(f"{key}= would bypass the outbound guard")
    transport_kw = {key: kw.pop(key) for key in _TRANSPORT_KWARGS if key in kw}
    if policy.ca_file and "verify" not in transport_kw:
        transport_kw["verify"] = _trust(policy.ca_file)
    kw.setdefault("timeout", policy.timeout_s)
    kw.setdefault("follow_redirects", False)  # the transport refuses redirects anyway
    transport = transport_cls(policy, **transport_kw)
    return module.AsyncClient(transport=transport, trust_env=False, **kw)


@functools.lru_cache(maxsize=4)
def _trust(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def make_guarded_client(policy: OutboundPolicy, **kw: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that can only reach addresses ``policy`` allows."""
    return _client(httpx, GuardedTransport, policy, **kw)


def make_guarded_client_httpx2(policy: OutboundPolicy, **kw: Any) -> Any:
    """Same for ``httpx2`` (used by the mcp SDK 2.x): pass it as ``http_client=`` to
    ``streamable_http_client`` or wrap it in an ``httpx_client_factory`` for SSE."""
    import httpx2

    global _GuardedTransport2
    if _GuardedTransport2 is None:
        _GuardedTransport2 = _transport_class(httpx2)
    return _client(httpx2, _GuardedTransport2, policy, **kw)


_GuardedTransport2: type | None = None


class _BodyReader:
    """Collects a response body, refusing it once it (or its decompressed form) passes
    the cap. Decompression is done here with a bound, so a small gzip bomb cannot
    expand into memory before the cap is checked."""

    def __init__(self, encoding: str, cap: int) -> None:
        self.cap = cap
        self.body = bytearray()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflater = zlib.decompressobj(47 if "gzip" in encoding else zlib.MAX_WBITS)
        else:
            raise OutboundRequestError(f"unsupported response Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> None:
        if self._inflater is None:
            self._add(chunk)
            return
        data = chunk
        while data:
            self._add(self._inflater.decompress(data, self.cap + 1 - len(self.body)))
            data = self._inflater.unconsumed_tail

    def _add(self, data: bytes) -> None:
        self.body += data
        if len(self.body) > self.cap:
            raise OutboundResponseTooLargeError(
                f"the response is larger than {self.cap} bytes", details={"limit": self.cap}
            )


async def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    policy: OutboundPolicy,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST ``payload`` as JSON to a vetted URL; return the parsed JSON answer (or text)."""
    request_headers = {"Accept": "application/json", "Accept-Encoding": "gzip, identity"}
    request_headers.update(headers or {})
    resp, body = await _exchange("POST", url, policy, request_headers, json=payload)
    try:
        text = body.decode(resp.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # unknown charset name
        text = body.decode("utf-8", errors="replace")
    if resp.status_code >= 400:
        raise OutboundRequestError(
            f"the server answered {resp.status_code}",
            details={"status": resp.status_code, "body": text[:500]},
        )
    if not body:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


async def get_bytes(url: str, *, policy: OutboundPolicy) -> tuple[str, bytes]:
    """GET a vetted URL: its media type (lower case, no parameters) and its body."""
    headers = {"Accept": "*/*", "Accept-Encoding": "gzip, identity"}
    resp, body = await _exchange("GET", url, policy, headers)
    if resp.status_code >= 400:
        raise OutboundRequestError(
            f"the server answered {resp.status_code}", details={"status": resp.status_code}
        )
    media_type = resp.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type, body


async def _exchange(
    method: str, url: str, policy: OutboundPolicy, headers: dict[str, str], **kw: Any
) -> tuple[httpx.Response, bytes]:
    """One request through the guard; the response and its body, bounded in time and size."""
    try:
        async with (
            asyncio.timeout(policy.timeout_s),
            make_guarded_client(policy) as client,
            client.stream(method, url, headers=headers, **kw) as resp,
        ):
            length = resp.headers.get("content-length", "")
            if length.isdigit() and int(length) > policy.max_response_bytes:
                raise OutboundResponseTooLargeError(
                    f"the response is larger than {policy.max_response_bytes} bytes",
                    details={"limit": policy.max_response_bytes},
                )
            reader = _BodyReader(
                resp.headers.get("content-encoding", "").strip().lower(),
                policy.max_response_bytes,
            )
            async for chunk in resp.aiter_raw():
                reader.feed(chunk)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise OutboundTimeoutError(f"no complete answer within {policy.timeout_s} s") from exc
    except httpx.HTTPError as exc:
        # The exception's own text may name the pinned address; say what happened instead.
        raise OutboundRequestError(_failure_reason(exc)) from exc
    return resp, bytes(reader.body)


def _failure_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "the request failed: could not connect to the server"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "the request failed: the connection broke"
    return f"the request failed ({type(exc).__name__})"


def redact_url(url: str) -> str:
    """``url`` as responses show it: userinfo dropped, every query value replaced by
    ``***`` (names kept; a bare item, which may be a token itself, becomes ``***``),
    fragment dropped. The stored URL is unchanged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    query = "&".join(
        f"{name}=***" if sep else "***"
        for name, sep, _ in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
