"""The outbound guard against real HTTP servers on the loopback interface only.

No test sends traffic anywhere but 127.0.0.0/8 and ::1: refused addresses are refused
before any connection is attempted.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tools.errors import (
    OutboundRedirectError,
    OutboundRequestError,
    OutboundResponseTooLargeError,
    OutboundTimeoutError,
    ToolError,
    UnsafeURLError,
)
from tools.netguard import (
    OutboundPolicy,
    acheck_url,
    check_url,
    make_guarded_client,
    make_guarded_client_httpx2,
    post_json,
)
from tools.testing_tls import self_signed

CAP = 10_000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.hits.append((self.path, dict(self.headers), body))
        route = getattr(self, "route_" + self.path.strip("/").split("?")[0], self.route_json)
        route(body)

    do_GET = do_POST

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_json(self, body):
        answer = {"received": json.loads(body or b"null"), "host": self.headers["Host"]}
        self._send(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])

    def route_text(self, body):
        self._send(200, b"plain answer", [("Content-Type", "text/plain")])

    def route_error(self, body):
        self._send(500, b'{"detail": "broken"}', [("Content-Type", "application/json")])

    def route_big(self, body):
        self._send(200, b"x" * (CAP + 1))

    def route_big_chunked(self, body):
        # No Content-Length: the cap must be enforced while streaming.
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"y" * 4096
        try:
            for _ in range(1000):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the client hung up once the cap was reached

    def route_gzip_bomb(self, body):
        self._send(200, gzip.compress(b"\0" * 5_000_000), [("Content-Encoding", "gzip")])

    def route_slow(self, body):
        time.sleep(2)
        self._send(200, b"{}")

    def route_trickle(self, body):
        # Each byte arrives well within a read timeout; only a total deadline stops it.
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def route_redirect(self, body):
        status = getattr(self.server, "redirect_status", 302)
        self._send(status, b"", [("Location", self.server.redirect_to)])


def _serve(host: str, ssl_context: ssl.SSLContext | None = None):
    server = ThreadingHTTPServer((host, 0), _Handler)
    server.daemon_threads = True
    server.hits = []
    server.redirect_to = ""
    if ssl_context:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def server():
    srv = _serve("127.0.0.1")
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def other_server():
    """A second loopback server on 127.0.0.2 that the policy does NOT allow."""
    srv = _serve("127.0.0.2")
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{srv.server_address[1]}{path}"


LOCAL = OutboundPolicy(
    allow_private_hosts=("127.0.0.1",),
    allowed_schemes=("http", "https"),
    timeout_s=1,
    max_response_bytes=CAP,
)


async def test_loopback_webhook_is_refused_by_default(server):
    with pytest.raises(UnsafeURLError, match="non-public address"):
        await post_json(
            _url(server, "/json"), {"a": 1}, policy=OutboundPolicy(allowed_schemes=("http",))
        )
    assert server.hits == []


async def test_loopback_webhook_is_allowed_when_allowlisted(server):
    answer = await post_json(_url(server, "/json"), {"a": 1}, policy=LOCAL, headers={"X-K": "v"})
    assert answer["received"] == {"a": 1}
    _, headers, _ = server.hits[0]
    assert headers["X-K"] == "v"
    assert headers["Content-Type"] == "application/json"


async def test_http_must_be_an_allowed_scheme(server):
    policy = OutboundPolicy(allow_private_hosts=("127.0.0.1",))
    with pytest.raises(UnsafeURLError, match="scheme 'http' is not allowed"):
        await post_json(_url(server, "/json"), {}, policy=policy)
    assert server.hits == []


async def test_allowlisted_name_keeps_its_host_header_while_pinned_to_the_address(server):
    policy = OutboundPolicy(
        allow_private_hosts=("localhost",), allowed_schemes=("http",), timeout_s=2
    )
    port = server.server_address[1]
    answer = await post_json(f"http://localhost:{port}/json", {"x": 1}, policy=policy)
    assert answer["host"] == f"localhost:{port}"


async def test_dns_rebinding_cannot_move_the_connection(server, monkeypatch):
    """The name resolves to the allowed 127.0.0.1 when checked and to 127.0.0.2 on any
    later lookup; the request must still go to the address that was checked."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.example":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    port = server.server_address[1]
    decoy = ThreadingHTTPServer(("127.0.0.2", port), _Handler)
    decoy.hits = []
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    try:
        answer = await post_json(f"http://rebind.example:{port}/json", {"r": 1}, policy=LOCAL)
    finally:
        decoy.shutdown()
        decoy.server_close()
    assert answer["host"] == f"rebind.example:{port}"
    assert len(server.hits) == 1
    assert decoy.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://224.0.0.1/",
        "http://localhost/",
    ],
)
async def test_private_link_local_and_metadata_addresses_are_refused(url):
    policy = OutboundPolicy(allowed_schemes=("http",))
    with pytest.raises(UnsafeURLError):
        check_url(url, policy)
    with pytest.raises(UnsafeURLError):
        await acheck_url(url, policy)
    with pytest.raises(UnsafeURLError):
        await post_json(url, {}, policy=policy)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("https://user:secret@example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("not a url", "scheme"),
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(url, message):
    with pytest.raises(UnsafeURLError, match=message):
        check_url(url, OutboundPolicy())


def test_allowlist_accepts_cidrs_and_ips():
    policy = OutboundPolicy(allow_private_hosts=("10.0.0.0/8", "::1"), allowed_schemes=("http",))
    assert check_url("http://10.1.2.3:8080/", policy) == ["10.1.2.3"]
    assert check_url("http://[::1]/", policy) == ["::1"]
    with pytest.raises(UnsafeURLError):
        check_url("http://192.168.0.1/", policy)


async def test_response_larger_than_the_cap_is_refused(server):
    with pytest.raises(OutboundResponseTooLargeError):
        await post_json(_url(server, "/big"), {}, policy=LOCAL)
    with pytest.raises(OutboundResponseTooLargeError):
        await post_json(_url(server, "/big_chunked"), {}, policy=LOCAL)
    with pytest.raises(OutboundResponseTooLargeError):
        await post_json(_url(server, "/gzip_bomb"), {}, policy=LOCAL)


async def test_slow_server_hits_the_timeout(server):
    for path in ("/slow", "/trickle"):
        started = time.monotonic()
        with pytest.raises(OutboundTimeoutError):
            await post_json(_url(server, path), {}, policy=LOCAL)
        assert time.monotonic() - started < LOCAL.timeout_s + 0.5


async def test_redirect_to_a_private_address_is_not_followed(server, other_server):
    server.redirect_to = _url(other_server, "/json", host="127.0.0.2")
    with pytest.raises(OutboundRequestError, match="redirect"):
        await post_json(_url(server, "/redirect"), {}, policy=LOCAL)
    # Not even a client told to follow redirects does: the transport refuses the answer.
    async with make_guarded_client(LOCAL, follow_redirects=True) as client:
        with pytest.raises(OutboundRedirectError, match="redirect"):
            await client.get(_url(server, "/redirect"))
    assert other_server.hits == []


@pytest.mark.parametrize("status", [300, 301, 302, 303, 307, 308])
async def test_no_guarded_client_follows_a_redirect_even_to_an_allowed_address(server, status):
    """Same server, allowed address: still refused (an MCP SDK follows such ones itself)."""
    server.redirect_to = "/json"
    server.redirect_status = status
    for make in (make_guarded_client, make_guarded_client_httpx2):
        async with make(LOCAL, follow_redirects=True) as client:
            with pytest.raises(OutboundRedirectError) as info:
                await client.post(_url(server, "/redirect"), json={})
        assert info.value.details == {"status": status}
        assert info.value.type == "outbound_request_failed"
    with pytest.raises(OutboundRedirectError):
        await post_json(_url(server, "/redirect"), {}, policy=LOCAL)
    assert [path for path, _, _ in server.hits] == ["/redirect"] * 3


async def test_text_answers_and_error_statuses(server):
    assert await post_json(_url(server, "/text"), {}, policy=LOCAL) == "plain answer"
    with pytest.raises(OutboundRequestError, match="500") as info:
        await post_json(_url(server, "/error"), {}, policy=LOCAL)
    assert info.value.details["status"] == 500
    assert isinstance(info.value, ToolError) and info.value.type == "outbound_request_failed"


async def test_guarded_client_refuses_bypass_options():
    with pytest.raises(ValueError, match="bypass"):
        make_guarded_client(LOCAL, transport=httpx.AsyncHTTPTransport())
    with pytest.raises(ValueError, match="bypass"):
        make_guarded_client(LOCAL, proxy="http://127.0.0.1:1")


async def test_httpx2_client_is_guarded_too(server, other_server):
    async with make_guarded_client_httpx2(LOCAL) as client:
        response = await client.post(_url(server, "/json"), json={"v": 2})
        assert response.json()["received"] == {"v": 2}
        with pytest.raises(UnsafeURLError):
            await client.get(_url(other_server, "/json", host="127.0.0.2"))
    assert other_server.hits == []


async def test_tls_certificate_is_checked_against_the_name_not_the_pinned_address(tmp_path):
    cert_path, key_path = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_path, key_path)
    srv = _serve("127.0.0.1", server_ctx)
    port = srv.server_address[1]
    trust = ssl.create_default_context(cafile=str(cert_path))
    try:
        by_name = OutboundPolicy(allow_private_hosts=("localhost",), timeout_s=2)
        async with make_guarded_client(by_name, verify=trust) as client:
            response = await client.post(f"https://localhost:{port}/json", json={"t": 1})
            assert response.json() == {"received": {"t": 1}, "host": f"localhost:{port}"}
        # The certificate is for "localhost": asking for the bare IP must fail verification.
        by_ip = OutboundPolicy(allow_private_hosts=("127.0.0.1",), timeout_s=2)
        async with make_guarded_client(by_ip, verify=trust) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post(f"https://127.0.0.1:{port}/json", json={})
    finally:
        srv.shutdown()
        srv.server_close()


def _rebinding(monkeypatch, name: str, first: str, later: str) -> list[str]:
    """``name`` resolves to ``first`` on the first lookup and to ``later`` after."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == name:
            lookups.append(host)
            host = first if len(lookups) == 1 else later
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    return lookups


# Refusals say what is wrong without naming the address a host resolved to.


async def test_a_refused_name_does_not_echo_the_address_it_resolves_to(monkeypatch):
    _rebinding(monkeypatch, "internal.example", "10.20.30.40", "10.20.30.40")
    policy = OutboundPolicy(allowed_schemes=("http", "https"))
    url = "https://internal.example/hook"
    refusals = []
    for call in (check_url, acheck_url, lambda u, p: post_json(u, {}, policy=p)):
        with pytest.raises(UnsafeURLError) as info:
            result = call(url, policy)
            if call is not check_url:
                await result
        refusals.append(info.value)
    for refusal in refusals:
        assert "non-public address" in refusal.message
        assert "10.20.30.40" not in f"{refusal.message} {refusal.details}"
        assert refusal.details == {"host": "internal.example", "reason": "non_public_address"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.example.com/x?token=abc&v=2",
            "https://hooks.example.com/x?token=***&v=***",
        ),
        ("https://user:pw@hooks.example.com:8443/x#frag", "https://hooks.example.com:8443/x"),
        ("https://hooks.example.com/x?sessiontoken", "https://hooks.example.com/x?***"),
        ("http://[::1]:9000/mcp?k=", "http://[::1]:9000/mcp?k=***"),
        ("wss://tools.example.com/mcp", "wss://tools.example.com/mcp"),
    ],
)
def test_urls_are_shown_without_userinfo_and_query_values(url, shown):
    from tools.netguard import redact_url

    assert redact_url(url) == shown


# WebSocket MCP connections: vetted once, then pinned to the vetted address.


def _manager(policy: OutboundPolicy):
    from tools.mcp import McpClientManager

    async def guard(url: str) -> list[str]:
        return await acheck_url(url, policy)

    return McpClientManager(url_guard=guard)


async def test_dns_rebinding_cannot_move_a_websocket_connection(monkeypatch):
    """The name resolves to an allowed address when checked (127.0.0.2 stands in for a
    public one, so no traffic leaves the machine) and to 127.0.0.1 on any later lookup:
    the local server on 127.0.0.1 must never see a connection."""
    from tools.mcp import McpServerConfig
    from tools.mcp.testing import McpTestServer, TcpFront

    with (
        McpTestServer("websocket", name="vetted") as real,
        TcpFront(real.port, host="127.0.0.2") as vetted,
        TcpFront(None, host="127.0.0.1", port=vetted.port) as local,
    ):
        port = vetted.port
        _rebinding(monkeypatch, "rebind.example", "127.0.0.2", "127.0.0.1")
        policy = OutboundPolicy(allow_private_hosts=("127.0.0.2",), allowed_schemes=("ws",))
        manager = _manager(policy)
        config = McpServerConfig(
            name="r", transport="websocket", url=f"ws://rebind.example:{port}/mcp", timeout_s=5
        )
        try:
            tools = await manager.probe(config)
        finally:
            await manager.aclose()
    assert "echo" in {tool.name for tool in tools}
    assert local.heads == []
    assert len(vetted.heads) == 1
    assert f"\r\nHost: rebind.example:{port}\r\n".encode() in vetted.heads[0]


async def test_a_pinned_wss_connection_checks_the_certificate_against_the_name(
    tmp_path, monkeypatch
):
    """Connected to the vetted 127.0.0.1, verified as "localhost" (the certificate's
    only name): asking for the bare IP must fail verification."""
    from tools.mcp import McpConnectionError, McpServerConfig
    from tools.mcp.testing import McpTestServer

    cert_path, key_path = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))  # trusted by the default context
    policy = OutboundPolicy(
        allow_private_hosts=("localhost", "127.0.0.1"), allowed_schemes=("wss",)
    )
    manager = _manager(policy)
    with McpTestServer("websocket", tls=(str(cert_path), str(key_path))) as server:
        by_name = McpServerConfig(
            name="tls", transport="websocket", url=f"wss://localhost:{server.port}/mcp"
        )
        by_ip = McpServerConfig(
            name="tls", transport="websocket", url=f"wss://127.0.0.1:{server.port}/mcp"
        )
        try:
            assert "echo" in {tool.name for tool in await manager.probe(by_name)}
            with pytest.raises(McpConnectionError):
                await manager.probe(by_ip)
        finally:
            await manager.aclose()


async def test_the_mcp_guard_refusal_names_neither_host_nor_address(monkeypatch):
    """At connection time not even the host: the message is kept as the server's last
    error, which keys that may not see the URL can read."""
    from tools.mcp import McpConnectionError, McpServerConfig

    _rebinding(monkeypatch, "internal.example", "10.20.30.40", "10.20.30.40")
    policy = OutboundPolicy(allowed_schemes=("http", "https"))
    url = "https://internal.example/mcp"
    manager = _manager(policy)
    config = McpServerConfig(name="internal", transport="streamable_http", url=url, timeout_s=5)
    try:
        with pytest.raises(McpConnectionError) as caught:
            await manager.probe(config)
    finally:
        await manager.aclose()
    text = f"{caught.value.message} {caught.value.details}"
    assert "non-public address" in text
    assert "10.20.30.40" not in text and "internal.example" not in text
