"""Every request the tool makes to a platform: configuration, registration, key sets, tokens, AGS and NRPS.

A platform is someone else's server, and Dynamic Registration lets an outsider name one. So each request:
- has a total deadline (a watchdog closes the socket when it passes: a server that drips a byte every few seconds
  cannot hold a worker longer than the deadline, which a per-read timeout alone allows);
- reads at most a byte cap, counted while streaming (a 200 MB answer is cut off, never held in memory);
- in production goes only to https and to public addresses, checked after name resolution, and connects to the
  very address it checked (so a second DNS answer cannot swap in a private one), also on every redirect; an
  allow-list of networks lets a lab reach its own LMS;
- never carries the remote body into a page: callers log `Response.excerpt()` and tell people the status.

urllib3 is used directly (requests is built on it) because the address check must sit between name resolution
and connect, and the deadline needs the socket.
"""
import contextlib
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urljoin

import certifi
import urllib3
from flask import current_app
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import parse_url

log = logging.getLogger(__name__)

USER_AGENT = "BargainingCertificate-LTI/1.0"
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
#: Connecting should be quick; the rest of the deadline is for the answer.
CONNECT_SECONDS = 5.0

# Ranges Python's is_global misjudges in some 3.11 releases, or that reach internal networks through translation.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "240.0.0.0/4",
    "64:ff9b::/96", "64:ff9b:1::/48", "2001::/32", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16",
))


class OutboundError(Exception):
    """A request to a platform that did not get an answer the tool can use.

    `kind` is "refused" (the tool's rules forbid the address or scheme), "unreachable", "timeout" or "too_large";
    `message` is safe to show an admin (no addresses, nothing the remote server said); `detail` is for the log.
    """

    def __init__(self, kind: str, message: str, *, detail: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail or message


@dataclass(frozen=True)
class Policy:
    https_only: bool
    public_only: bool
    allowed_networks: tuple = ()
    timeout: float = 10.0
    max_bytes: int = 4 * 1024 * 1024
    ca_file: str | None = None

    @classmethod
    def from_config(cls, config: Mapping) -> "Policy":
        """Build the policy from the app's settings."""
        return cls(https_only=bool(config["OUTBOUND_HTTPS_ONLY"]), public_only=bool(config["OUTBOUND_PUBLIC_ONLY"]),
                   allowed_networks=parse_networks(config.get("OUTBOUND_ALLOWED_NETWORKS") or ()),
                   timeout=float(config["HTTP_TIMEOUT"]), max_bytes=int(config["HTTP_MAX_BYTES"]),
                   ca_file=config.get("OUTBOUND_CA_FILE") or None)


def parse_networks(value) -> tuple:
    """Read networks ("10.0.0.0/8, 192.168.5.7") from a setting: a string or a list."""
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    return tuple(n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                 else ipaddress.ip_network(n.strip(), strict=False) for n in items if str(n).strip())


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self):
        """Return the body parsed as JSON; raise ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))

    def excerpt(self, limit: int = 200) -> str:
        """Return the start of the body as one line of printable text, for logs."""
        return excerpt(self.body, limit)


def excerpt(body: bytes | str, limit: int = 200) -> str:
    """Return a short, printable, one-line rendering of a remote body (never show it in a page)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+", " ", text[:limit * 4])
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit] + ("…" if len(text) > limit else "")


# -- the deadline: a watchdog shuts the sockets of a request that outlives it ---------------------------------------

@dataclass
class _Deadline:
    seconds: float
    expires: float = 0.0
    expired: bool = False
    sockets: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.expires = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(self.expires - time.monotonic(), 0.0)

    def watch(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if not self.expired:
                return
        self._shut(sock)

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a recv blocked in another frame of this thread's stack

    def cancel(self) -> None:
        self._timer.cancel()


_current = threading.local()


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _current.deadline.watch(sock)
        return sock


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _current.deadline.watch(sock)  # the raw socket: shutting it also ends a stalled TLS handshake
        return sock


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


# -- addresses --------------------------------------------------------------------------------------------------

def _is_public(ip) -> bool:
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and not any(ip in net for net in _NOT_PUBLIC)


def address_allowed(ip, policy: Policy) -> bool:
    """Whether the policy lets the tool connect to this address."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == net.version and ip in net for net in policy.allowed_networks):
        return True
    return not policy.public_only or _is_public(ip)


def _resolve(host: str, port: int, policy: Policy, url: str) -> str:
    """Resolve `host` and return the address to connect to, refusing names with any forbidden address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError("unreachable", f"The address {host} could not be found (DNS).",
                            detail=f"{url}: name resolution failed: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos
                 if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise OutboundError("unreachable", f"The address {host} could not be found (DNS).", detail=url)
    forbidden = [ip for ip in addresses if not address_allowed(ip, policy)]
    if forbidden:
        raise OutboundError(
            "refused", f"The tool does not connect to {host}: it is a private, local or otherwise non-public "
            "address. Platforms must be reachable on the public internet (a lab's operator can allow its network "
            "with LTI_OUTBOUND_ALLOWED_NETWORKS).",
            detail=f"{url}: {host} resolves to {', '.join(map(str, forbidden))}")
    return str(addresses[0])


# -- requests ---------------------------------------------------------------------------------------------------

def request(method: str, url: str, *, headers: Mapping[str, str] | None = None, json_body=None,
            form: Mapping[str, str] | None = None, content_type: str | None = None, timeout: float | None = None,
            max_bytes: int | None = None, follow_redirects: bool | None = None,
            policy: Policy | None = None) -> Response:
    """Make one request to a platform under the outbound rules; return the whole (capped) answer.

    Raise OutboundError when there is no usable answer; any HTTP status is an answer (the caller judges it).
    GET follows up to three redirects, each checked like the first; other methods never follow one.
    """
    policy = policy or Policy.from_config(current_app.config)
    headers = dict(headers or {})
    for name, value in headers.items():
        if not (str(value).isascii() and str(value).isprintable()):
            raise OutboundError("refused", f"The tool cannot send this {name} header (it holds characters HTTP "
                                "headers cannot carry).", detail=f"{url}: unsendable {name} header")
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", content_type or "application/json")
    elif form is not None:
        body = urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if follow_redirects is None:
        follow_redirects = method.upper() in ("GET", "HEAD")
    deadline = _Deadline(timeout if timeout is not None else policy.timeout)
    _current.deadline = deadline
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = _one(method, url, headers, body, deadline, max_bytes or policy.max_bytes, policy)
            location = response.headers.get("Location")
            if not (follow_redirects and response.status in (301, 302, 303, 307, 308) and location):
                return response
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                headers.pop("Authorization", None)  # a bearer token is for the server it was made for
            url = target
        raise OutboundError("unreachable", f"The platform redirected more than {MAX_REDIRECTS} times.",
                            detail=f"too many redirects, last {url}")
    finally:
        deadline.cancel()
        _current.deadline = None


def _origin(url: str) -> tuple:
    parts = parse_url(url)
    return (parts.scheme or "").lower(), (parts.host or "").lower(), parts.port


def _one(method: str, url: str, headers: dict, body: bytes | None, deadline: _Deadline, max_bytes: int,
         policy: Policy) -> Response:
    try:
        parts = parse_url(url)
    except Urllib3Error as exc:
        raise OutboundError("refused", "The platform gave an address that is not a valid URL.", detail=url) from exc
    scheme = (parts.scheme or "").lower()
    if scheme not in ("http", "https") or not parts.host:
        raise OutboundError("refused", "The platform gave an address that is not an http(s) URL.", detail=url)
    if policy.https_only and scheme != "https":
        raise OutboundError("refused", "The tool talks to platforms over https only; this address is plain http.",
                            detail=url)
    host = parts.host.strip("[]")
    port = parts.port or (443 if scheme == "https" else 80)
    address = _resolve(host, port, policy, url)
    host_header = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    send_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers, "Host": host_header}
    pool_timeout = urllib3.Timeout(connect=min(CONNECT_SECONDS, deadline.remaining()) or 0.001,
                                   read=deadline.remaining() or 0.001)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        try:
            is_ip = bool(ipaddress.ip_address(host))
        except ValueError:
            is_ip = False
        pool = _HTTPSPool(address, port, timeout=pool_timeout, retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
                          ca_certs=policy.ca_file or certifi.where(), assert_hostname=host,
                          server_hostname=None if is_ip else host)
    else:
        pool = _HTTPPool(address, port, timeout=pool_timeout, retries=False, maxsize=1)
    answer = None
    try:
        answer = pool.urlopen(method.upper(), parts.request_uri, body=body, headers=send_headers, redirect=False,
                              retries=False, preload_content=False, assert_same_host=False, release_conn=False)
        length = answer.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _too_large(url, max_bytes)
        data = bytearray()
        for chunk in answer.stream(CHUNK, decode_content=True):
            data += chunk
            if len(data) > max_bytes:
                raise _too_large(url, max_bytes)
        if deadline.expired:
            raise _timed_out(url, deadline)
        return Response(status=answer.status, headers=urllib3.HTTPHeaderDict(answer.headers), body=bytes(data),
                        url=url)
    except OutboundError:
        raise
    except (Urllib3Error, OSError) as exc:
        if deadline.expired or (isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError))
                                and not isinstance(exc, urllib3.exceptions.NewConnectionError)):
            raise _timed_out(url, deadline) from exc
        raise OutboundError("unreachable", f"The tool could not reach {host} ({exc.__class__.__name__}).",
                            detail=f"{url}: {exc}") from exc
    finally:
        if answer is not None:
            answer.close()
        pool.close()


def _too_large(url: str, max_bytes: int) -> OutboundError:
    return OutboundError("too_large", f"The platform's answer is larger than the {max_bytes // 1024} KiB the tool "
                         "accepts.", detail=f"{url}: more than {max_bytes} bytes")


def _timed_out(url: str, deadline: _Deadline) -> OutboundError:
    return OutboundError("timeout", f"The request timed out: the platform did not answer within "
                         f"{deadline.seconds:g} seconds.",
                         detail=f"{url}: no complete answer within {deadline.seconds:g} s")
