"""Calls to a platform's LTI Advantage services (AGS, NRPS) with an OAuth2 access token.

pylti1p3's ServiceConnector keeps tokens per object and ignores `expires_in`, sets no timeouts, and lower-cases
the Link header before reading the next-page URL; this client keeps tokens in the database (shared by every
worker) until shortly before they expire, always times out, and reads Link headers as sent.
"""
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import requests
import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import AccessToken, Platform
from lti_tool.models.base import utcnow

#: Refresh a token this long before the platform says it expires.
TOKEN_MARGIN = timedelta(seconds=60)
_LINK_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


class ServiceError(Exception):
    """A service call that failed: `status` is the HTTP status (None for a network error or timeout)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 body: str = ""):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def transient(self) -> bool:
        """Whether trying again later may work (network, timeout, 5xx, 429, an expired token)."""
        return self.status is None or self.status >= 500 or self.status in (401, 408, 429)


@dataclass(frozen=True)
class ServiceResponse:
    status: int
    body: object
    next_url: str | None


def _scopes_key(scopes) -> str:
    return " ".join(sorted(set(scopes)))


def _request_token(platform: Platform, scopes: str) -> tuple[str, int]:
    signing = keys.signing_key()
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": platform.client_id, "sub": platform.client_id, "aud": platform.auth_audience or platform.auth_token_url,
         "iat": now - 5, "exp": now + 60, "jti": f"lti-service-token-{uuid.uuid4()}"},
        signing.private_key_pem, algorithm="RS256", headers={"kid": signing.kid})
    try:
        response = requests.post(platform.auth_token_url, timeout=current_app.config["HTTP_TIMEOUT"], data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "scope": scopes})
    except requests.RequestException as exc:
        raise ServiceError(f"The platform's token endpoint could not be reached ({exc.__class__.__name__}).") from exc
    if response.status_code != 200:
        raise ServiceError(f"The platform refused an access token (HTTP {response.status_code}): "
                           f"{response.text[:300]}", status=response.status_code, body=response.text[:2000])
    try:
        answer = response.json()
        return answer["access_token"], int(answer.get("expires_in") or 3600)
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError("The platform's token answer has no access_token.", status=response.status_code) from exc


def access_token(platform: Platform, scopes, *, fresh: bool = False) -> str:
    """Return a cached access token for these scopes, or get (and cache) a new one."""
    key = _scopes_key(scopes)
    now = utcnow()
    if not fresh:
        with db.engine.connect() as conn:
            row = conn.execute(sa.select(AccessToken.token, AccessToken.expires_at).where(
                AccessToken.platform_id == platform.id, AccessToken.scopes == key)).first()
        if row is not None and row.expires_at.replace(tzinfo=row.expires_at.tzinfo or now.tzinfo) - TOKEN_MARGIN > now:
            return row.token
    token, lifetime = _request_token(platform, key)
    expires = now + timedelta(seconds=lifetime)
    # Its own transaction: the token is useful even when the caller's work is rolled back.
    with db.engine.begin() as conn:
        updated = conn.execute(sa.update(AccessToken).where(
            AccessToken.platform_id == platform.id, AccessToken.scopes == key).values(token=token, expires_at=expires))
        if updated.rowcount == 0:
            try:
                conn.execute(sa.insert(AccessToken).values(platform_id=platform.id, scopes=key, token=token,
                                                           expires_at=expires))
            except sa.exc.IntegrityError:
                pass  # another worker cached one at the same moment: either token works
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
         accept: str = "application/json", timeout: float | None = None) -> ServiceResponse:
    """Make an authorized service call; on a 401 get a fresh token and try once more."""
    for attempt in (1, 2):
        token = access_token(platform, scopes, fresh=attempt == 2)
        headers = {"Authorization": f"Bearer {token}", "Accept": accept}
        if json_body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            response = requests.request(method, url, json=json_body, headers=headers,
                                        timeout=timeout or current_app.config["HTTP_TIMEOUT"])
        except requests.Timeout as exc:
            raise ServiceError(f"{method} {url} timed out.") from exc
        except requests.RequestException as exc:
            raise ServiceError(f"{method} {url} failed ({exc.__class__.__name__}).") from exc
        if response.status_code == 401 and attempt == 1:
            continue  # the token expired or was revoked early: one fresh token, one more try
        if response.status_code >= 400:
            raise ServiceError(f"{method} {url} answered HTTP {response.status_code}: {response.text[:300]}",
                               status=response.status_code, body=response.text[:2000],
                               retry_after=_retry_after(response.headers.get("Retry-After")))
        body = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        match = _LINK_NEXT.search(response.headers.get("Link", ""))
        return ServiceResponse(status=response.status_code, body=body, next_url=match.group(1) if match else None)
    raise AssertionError("unreachable")
