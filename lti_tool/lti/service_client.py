"""Calls to a platform's LTI Advantage services (AGS, NRPS) with an OAuth2 access token.

pylti1p3's ServiceConnector keeps tokens per object and ignores `expires_in`, sets no timeouts, and lower-cases
the Link header before reading the next-page URL; this client keeps tokens in the database (shared by every
worker) until shortly before they expire, goes through lti/http.py (a total deadline, a byte cap, public
addresses only in production), and reads Link headers as sent.
"""
import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti import http, keys
from lti_tool.models import AccessToken, Platform
from lti_tool.models.base import utcnow

#: Refresh a token this long before the platform says it expires.
TOKEN_MARGIN = timedelta(seconds=60)
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A service call that failed: `status` is the HTTP status (None for a network error or timeout).

    The message never quotes the platform; `body` is a short, printable excerpt of its answer, for logs.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 body: str = "", refused: bool = False, maybe_delivered: bool = False):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.body = body
        #: The tool's outbound rules forbid the address: trying again cannot help.
        self.refused = refused
        #: The request went out but no complete answer came back (a timeout, a dropped connection, a 5xx from
        #: a proxy): the platform may have acted on it.
        self.maybe_delivered = maybe_delivered

    @property
    def transient(self) -> bool:
        """Whether trying again later may work (network, timeout, 5xx, 429, an expired token)."""
        if self.refused:
            return False
        return self.status is None or self.status >= 500 or self.status in (401, 408, 429)


class DeadlinePassed(ServiceError):
    """The caller's total deadline left no time to make (another) request; nothing was sent."""


#: Below this many seconds left, a request is not started: it could not finish.
MIN_REQUEST_SECONDS = 0.5


def _timeout_before(deadline: float | None) -> float | None:
    """Return the timeout one request may have before `deadline` (time.monotonic()), capped by HTTP_TIMEOUT."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left < MIN_REQUEST_SECONDS:
        raise DeadlinePassed("There was no time left to send it before this worker's lease ran out.")
    return min(left, float(current_app.config["HTTP_TIMEOUT"]))


def _send(method: str, url: str, what: str, **kwargs) -> http.Response:
    try:
        return http.request(method, url, **kwargs)
    except http.OutboundError as exc:
        log.warning("%s %s failed: %s", method, url, exc.detail)
        # Refused by the tool's own rules: nothing left. Otherwise the request may have arrived (a timeout or
        # a dropped connection can come after the platform acted on it).
        raise ServiceError(f"{what}: {exc.message}", refused=exc.kind == "refused",
                           maybe_delivered=exc.kind != "refused") from exc


def _refusal(what: str, response: http.Response) -> ServiceError:
    body = response.excerpt(300)
    log.warning("%s answered HTTP %s: %s", response.url, response.status, body)
    return ServiceError(f"{what} answered HTTP {response.status}.", status=response.status, body=body,
                        retry_after=_retry_after(response.headers.get("Retry-After")))


@dataclass(frozen=True)
class ServiceResponse:
    status: int
    body: object
    next_url: str | None


def _scopes_key(scopes) -> str:
    return " ".join(sorted(set(scopes)))


def _request_token(platform: Platform, scopes: str, deadline: float | None = None) -> tuple[str, int]:
    signing = keys.signing_key()
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": platform.client_id, "sub": platform.client_id, "aud": platform.auth_audience or platform.auth_token_url,
         "iat": now - 5, "exp": now + 60, "jti": f"lti-service-token-{uuid.uuid4()}"},
        signing.private_key_pem, algorithm="RS256", headers={"kid": signing.kid})
    what = "The platform's token endpoint"
    try:
        response = _send("POST", platform.auth_token_url, what, headers={"Accept": "application/json"}, form={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "scope": scopes}, timeout=_timeout_before(deadline))
    except ServiceError as exc:
        exc.maybe_delivered = False  # a token request changes nothing in the gradebook
        raise
    if response.status != 200:
        raise _refusal(what, response)
    try:
        answer = response.json()
        token = answer["access_token"]
        if not isinstance(token, str) or not token:
            raise TypeError("access_token is not a string")
        return token, int(answer.get("expires_in") or 3600)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError("The platform's token answer has no access_token.", status=response.status) from exc


def access_token(platform: Platform, scopes, *, fresh: bool = False, deadline: float | None = None) -> str:
    """Return a cached access token for these scopes, or get (and cache) a new one."""
    key = _scopes_key(scopes)
    now = utcnow()
    if not fresh:
        with db.engine.connect() as conn:
            row = conn.execute(sa.select(AccessToken.token, AccessToken.expires_at).where(
                AccessToken.platform_id == platform.id, AccessToken.scopes == key)).first()
        if row is not None and row.expires_at.replace(tzinfo=row.expires_at.tzinfo or now.tzinfo) - TOKEN_MARGIN > now:
            return row.token
    token, lifetime = _request_token(platform, key, deadline)
    expires = now + timedelta(seconds=lifetime)
    # Its own transaction: the token is useful even when the caller's work is rolled back.
    with db.engine.begin() as conn:
        updated = conn.execute(sa.update(AccessToken).where(
            AccessToken.platform_id == platform.id, AccessToken.scopes == key).values(token=token, expires_at=expires))
        if updated.rowcount == 0:
            # another worker may cache one at the same moment: either token works
            with contextlib.suppress(sa.exc.IntegrityError):
                conn.execute(sa.insert(AccessToken).values(platform_id=platform.id, scopes=key, token=token,
                                                           expires_at=expires))
    return token


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max((parsedate_to_datetime(value) - utcnow()).total_seconds(), 0.0)
        except (TypeError, ValueError):
            return None


def call(platform: Platform, scopes, method: str, url: str, *, json_body=None, content_type: str | None = None,
         accept: str = "application/json", timeout: float | None = None,
         deadline: float | None = None) -> ServiceResponse:
    """Make an authorized service call; on a 401 get a fresh token and try once more.

    `timeout` is the seconds each request may take (default HTTP_TIMEOUT). `deadline` (a time.monotonic()
    value) bounds the whole call, token requests and the retry after a 401 included: no request starts or
    runs past it (DeadlinePassed when none could start).
    """
    for attempt in (1, 2):
        token = access_token(platform, scopes, fresh=attempt == 2, deadline=deadline)
        headers = {"Authorization": f"Bearer {token}", "Accept": accept}
        if deadline is not None:
            timeout = _timeout_before(deadline)
        response = _send(method, url, f"{method} {url}", headers=headers, json_body=json_body,
                         content_type=content_type, timeout=timeout)
        if response.status == 401 and attempt == 1:
            continue  # the token expired or was revoked early: one fresh token, one more try
        if response.status >= 400:
            error = _refusal(f"{method} {url}", response)
            # A gateway's 502/504 (or the LMS failing after it stored the score) says nothing about delivery.
            error.maybe_delivered = response.status >= 500
            raise error
        body = None
        if response.body:
            try:
                body = response.json()
            except ValueError:
                body = response.body.decode("utf-8", "replace")
        match = _LINK_NEXT.search(response.headers.get("Link") or "")
        return ServiceResponse(status=response.status, body=body, next_url=match.group(1) if match else None)
    raise AssertionError("unreachable")
