"""The platforms' public keys: fetched once, shared by every worker, fetched again for an unknown `kid`."""
import json
import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import current_app
from jwt.algorithms import RSAAlgorithm

from lti_tool.extensions import db
from lti_tool.lti import http
from lti_tool.lti.errors import LaunchError
from lti_tool.models import Platform
from lti_tool.models.base import utcnow

if TYPE_CHECKING:
    from lti_tool.lti.tool_config import PlatformRecord

log = logging.getLogger(__name__)

#: Parsed keys by (kid, modulus): parsing a JWK costs more than verifying a signature.
_parsed_keys: dict[tuple[str, str], object] = {}
_parsed_lock = threading.Lock()

MAX_KEY_SET_BYTES = 512 * 1024


def _find_jwk(key_set: dict | None, kid: str) -> dict | None:
    if not isinstance(key_set, dict):
        return None
    for jwk in key_set.get("keys") or []:
        if isinstance(jwk, dict) and jwk.get("kid") == kid:
            return jwk
    return None


def fetch_key_set(url: str) -> dict:
    """GET a JWKS document, refusing anything that is not one."""
    try:
        response = http.request("GET", url, headers={"Accept": "application/json"}, max_bytes=MAX_KEY_SET_BYTES)
    except http.OutboundError as exc:
        log.warning("key set %s: %s", url, exc.detail)
        raise LaunchError("key_set_unreachable",
                          f"The platform's key set at {url} could not be fetched: {exc.message} "
                          "Check the key set URL of this platform and that the tool can reach it.") from exc
    if response.status != 200:
        log.warning("key set %s answered HTTP %s: %s", url, response.status, response.excerpt())
        raise LaunchError("key_set_unreachable",
                          f"The platform's key set at {url} answered HTTP {response.status}. "
                          "Check the key set URL of this platform.")
    try:
        key_set = response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise LaunchError("key_set_invalid", f"The platform's key set at {url} is not JSON.") from exc
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
        raise LaunchError("key_set_invalid", f"The platform's key set at {url} has no 'keys' list.")
    return key_set


def _fresh_key_set_row(platform_id: int):
    with db.engine.connect() as conn:
        return conn.execute(sa.select(Platform.cached_key_set, Platform.key_set_fetched_at)
                            .where(Platform.id == platform_id)).one()


# `key_set_fetched_at` says where the platform's key set stands, for every worker of every process:
#   in the future - a fetch is in flight, and will have given up by then (the HTTP deadline);
#   in the past   - the last fetch ended then; the next may start LTI_KEY_SET_REFETCH_SECONDS later.
# So one fetch at a time per platform, at most one per interval, and a launch waits only while a fetch is
# really in flight: a flood of forged `kid`s is refused at once instead of holding workers.

def _claim_fetch(platform_id: int, min_gap: timedelta, in_flight_until) -> bool:
    """Let one worker of all fetch the key set now (an atomic claim on key_set_fetched_at)."""
    now = utcnow()
    with db.engine.begin() as conn:
        claimed = conn.execute(
            sa.update(Platform)
            .where(Platform.id == platform_id,
                   sa.or_(Platform.key_set_fetched_at.is_(None), Platform.key_set_fetched_at <= now - min_gap))
            .values(key_set_fetched_at=in_flight_until))
    return claimed.rowcount == 1


def _finish_fetch(platform_id: int, key_set: dict | None) -> None:
    # Its own short transaction: the cache must survive even when this launch is refused later.
    values: dict[str, object] = {"key_set_fetched_at": utcnow()}
    if key_set is not None:
        values["cached_key_set"] = key_set
    with db.engine.begin() as conn:
        conn.execute(sa.update(Platform).where(Platform.id == platform_id).values(**values))
        if key_set is not None:
            from lti_tool.lti.tool_config import BUMP

            conn.execute(BUMP)  # every process's cached registration now has an old key set


def _wait_while_in_flight(platform_id: int, kid: str) -> dict | None:
    """Wait for another worker's fetch, only while it is in flight; return the key set once it knows `kid`."""
    while True:
        key_set, fetched_at = _fresh_key_set_row(platform_id)
        if _find_jwk(key_set, kid) is not None:
            return key_set
        if fetched_at is None or fetched_at <= utcnow():
            return key_set  # no fetch in flight (any more): the kid is unknown
        time.sleep(0.05)


def _refresh_key_set(platform: "PlatformRecord", kid: str) -> dict | None:
    """Get a key set that may know `kid`: from another worker's fetch, or by fetching it (one worker at a time)."""
    if not platform.key_set_url:
        return None  # only a stored key set: nothing to fetch
    config = current_app.config
    min_gap = timedelta(seconds=config["LTI_KEY_SET_REFETCH_SECONDS"])
    key_set, fetched_at = _fresh_key_set_row(platform.id)
    if _find_jwk(key_set, kid) is not None:
        return key_set  # another thread or worker fetched it meanwhile
    if fetched_at is not None and fetched_at > utcnow():
        return _wait_while_in_flight(platform.id, kid)
    # The HTTP deadline bounds the fetch; a worker that dies mid-fetch frees the claim when it passes.
    in_flight_until = utcnow() + timedelta(seconds=config["HTTP_TIMEOUT"] + 1)
    if not _claim_fetch(platform.id, min_gap, in_flight_until):
        # Fetched within LTI_KEY_SET_REFETCH_SECONDS (the kid is unknown), or another worker claimed it just now.
        return _wait_while_in_flight(platform.id, kid)
    key_set = None
    try:
        key_set = fetch_key_set(platform.key_set_url)
        log.info("fetched key set of platform %s (%s): %d keys", platform.id, platform.issuer, len(key_set["keys"]))
    finally:
        _finish_fetch(platform.id, key_set)
    return key_set


def public_key_for(platform: "PlatformRecord", kid: str):
    """Return the platform's public key with this `kid`, fetching the key set when it is not known yet."""
    jwk = _find_jwk(platform.key_set, kid)
    if jwk is None and platform.key_set_url:
        jwk = _find_jwk(platform.cached_key_set, kid)
        if jwk is None:
            key_set = _refresh_key_set(platform, kid)
            jwk = _find_jwk(key_set, kid)
    if jwk is None:
        where = platform.key_set_url or "the key set stored for it"
        raise LaunchError("unknown_kid",
                          f"The launch was signed with key '{kid}', which is not in the key set of "
                          f"{platform.name} ({where}). If the platform rotated its keys, try again in a minute; "
                          "otherwise check the platform's key set URL.", status=401, platform=platform.issuer)
    if jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
        raise LaunchError("bad_key", f"Key '{kid}' of {platform.name} is not an RS256 key; LTI 1.3 requires RS256.",
                          status=401, platform=platform.issuer)
    cache_key = (kid, str(jwk.get("n")))
    key = _parsed_keys.get(cache_key)
    if key is None:
        try:
            key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        except Exception as exc:  # any malformed JWK is the platform's error, not ours
            raise LaunchError("bad_key", f"Key '{kid}' of {platform.name} could not be read as an RSA key.",
                              status=401, platform=platform.issuer) from exc
        with _parsed_lock:
            if len(_parsed_keys) > 1000:
                _parsed_keys.clear()
            _parsed_keys[cache_key] = key
    return key
