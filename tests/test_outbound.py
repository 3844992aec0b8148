"""Requests to platforms (lti/http.py): total deadline, byte cap, public addresses only in production, redirects
checked, the checked address used for the connection. Hostile servers run on loopback and stop by themselves."""
import ipaddress
import socket
import threading
import time
import tracemalloc

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from lti_tool.lti import http
from lti_tool.lti.http import OutboundError, Policy

DEVELOPMENT = Policy(https_only=False, public_only=False, timeout=5)
PRODUCTION = Policy(https_only=True, public_only=True, timeout=5)
#: A lab that allows its own (here: loopback) network under production rules otherwise.
LAB = Policy(https_only=False, public_only=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),), timeout=5)


class HostileServer:
    """An HTTP server on loopback whose answers the test chooses by path."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.path, request.headers.get("Host"), request.headers.get("Authorization")))
        handler = self.routes.get(request.path)
        response = handler(request) if handler else Response("nothing here", status=404)
        return response(environ, start_response)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server():
    hostile = HostileServer()
    yield hostile
    hostile.stop()


def _drip(count: int, pause: float):
    for _ in range(count):  # bounded: the server stops by itself
        yield b"x"
        time.sleep(pause)


def test_a_dripping_body_is_cut_at_the_total_deadline(server):
    server.routes["/drip"] = lambda r: Response(_drip(40, 0.25), mimetype="application/json")
    started = time.monotonic()
    with pytest.raises(OutboundError) as refused:
        http.request("GET", server.url + "/drip", policy=Policy(https_only=False, public_only=False, timeout=1.5))
    elapsed = time.monotonic() - started
    assert refused.value.kind == "timeout"
    assert 1.4 <= elapsed < 2.5, elapsed  # every byte came within the per-read time: only a total deadline stops it


def test_a_dripping_status_line_is_cut_at_the_total_deadline():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def drip_headers():
        conn, _ = listener.accept()
        try:
            conn.recv(4096)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" * 5:  # bounded
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass
        finally:
            conn.close()
            listener.close()

    threading.Thread(target=drip_headers, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(OutboundError) as refused:
        http.request("GET", f"http://127.0.0.1:{port}/", policy=Policy(https_only=False, public_only=False,
                                                                       timeout=1.0))
    assert refused.value.kind == "timeout"
    assert time.monotonic() - started < 2.0


def _flood(megabytes: int):
    chunk = b"{" * (64 * 1024)
    for _ in range(megabytes * 16):
        yield chunk


@pytest.mark.parametrize("declared", [False, True], ids=["streamed", "content-length"])
def test_a_200_mb_answer_is_cut_at_the_cap_and_memory_stays_flat(server, declared):
    def flood(request):
        response = Response(_flood(200), mimetype="application/json")
        if declared:
            response.headers["Content-Length"] = str(200 * 1024 * 1024)
        return response

    server.routes["/flood"] = flood
    tracemalloc.start()
    try:
        with pytest.raises(OutboundError) as refused:
            http.request("GET", server.url + "/flood", policy=DEVELOPMENT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.kind == "too_large"
    assert "4096 KiB" in refused.value.message
    # tracemalloc also counts the emulator's thread writing the flood, whose buffers vary with scheduling: the
    # bound is a few times the 4 MiB cap, far below the 200 MB a reader that buffers the whole answer would hold.
    assert peak < 32 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while refusing a 200 MB answer"


def test_an_answer_under_the_cap_is_read_whole(server):
    server.routes["/ok"] = lambda r: Response('{"keys": []}', mimetype="application/json")
    response = http.request("GET", server.url + "/ok", policy=DEVELOPMENT)
    assert response.status == 200 and response.json() == {"keys": []}


@pytest.mark.parametrize("url", [
    "https://10.1.2.3/mod/lti/certs.php",       # private
    "https://127.0.0.1:9/jwks",                 # loopback
    "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
    "https://[::1]/jwks",                       # IPv6 loopback
    "https://[::ffff:10.0.0.1]/jwks",           # IPv4-mapped private
    "https://100.64.0.7/jwks",                  # carrier-grade NAT
    "https://localhost/jwks",                   # a name that resolves to loopback
])
def test_production_refuses_non_public_addresses_before_connecting(url, monkeypatch):
    connects = []
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: connects.append(address))
    with pytest.raises(OutboundError) as refused:
        http.request("GET", url, policy=PRODUCTION)
    assert refused.value.kind == "refused"
    assert "LTI_OUTBOUND_ALLOWED_NETWORKS" in refused.value.message
    assert connects == []


def test_production_refuses_plain_http(server):
    with pytest.raises(OutboundError) as refused:
        http.request("GET", server.url + "/ok", policy=Policy(https_only=True, public_only=False))
    assert refused.value.kind == "refused" and "https only" in refused.value.message
    assert server.requests == []


def test_the_lab_allow_list_lets_its_network_through(server):
    server.routes["/ok"] = lambda r: Response("{}", mimetype="application/json")
    assert http.request("GET", server.url + "/ok", policy=LAB).status == 200
    with pytest.raises(OutboundError):
        http.request("GET", server.url + "/ok", policy=Policy(https_only=False, public_only=True))


@pytest.mark.parametrize("target", ["http://10.9.8.7/jwks", "http://[fd00::1]/jwks", "http://127.0.0.2:1/jwks"])
def test_a_redirect_to_a_private_address_is_refused(server, target, monkeypatch):
    server.routes["/moved"] = lambda r: Response("", status=302, headers={"Location": target})
    real_connect = socket.socket.connect
    connects = []

    def record(sock, address):
        connects.append(address[0])
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    with pytest.raises(OutboundError) as refused:
        http.request("GET", server.url + "/moved", policy=LAB)
    assert refused.value.kind == "refused"
    assert connects == ["127.0.0.1"]  # only the first, allowed hop


def test_redirects_are_followed_for_get_only_and_drop_the_token_across_origins(server):
    other = HostileServer()
    try:
        other.routes["/jwks"] = lambda r: Response('{"keys": []}', mimetype="application/json")
        server.routes["/moved"] = lambda r: Response("", status=302, headers={"Location": other.url + "/jwks"})
        response = http.request("GET", server.url + "/moved", headers={"Authorization": "Bearer secret"},
                                policy=DEVELOPMENT)
        assert response.status == 200 and response.json() == {"keys": []}
        assert other.requests[0][2] is None  # the bearer token stayed with the server it was made for
        posted = http.request("POST", server.url + "/moved", json_body={}, policy=DEVELOPMENT)
        assert posted.status == 302
    finally:
        other.stop()


def test_the_connection_goes_to_the_address_that_was_checked(server, monkeypatch):
    """A name is resolved once; a second answer (DNS rebinding) cannot change where the tool connects."""
    server.routes["/ok"] = lambda r: Response("{}", mimetype="application/json")
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding(host, port, *args, **kwargs):
        if host == "platform.example":
            lookups.append(host)
            # First answer: the allowed address. Any later answer would point somewhere the check never saw.
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = server.url.replace("127.0.0.1", "platform.example") + "/ok"
    assert http.request("GET", url, policy=LAB).status == 200
    assert lookups == ["platform.example"]
    assert server.requests[-1][1] == url.split("/")[2]  # the Host header still names the platform


def test_excerpts_for_logs_are_short_and_printable():
    text = http.excerpt(b"<script>alert(1)</script>\x00\x1b[31m\r\nline two " + b"y" * 500, limit=60)
    assert "\x00" not in text and "\x1b" not in text and "\n" not in text
    assert len(text) == 61 and text.endswith("…")
