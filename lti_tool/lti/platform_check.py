"""Check a registration against its platform: its key set, its OpenID configuration, and a service token.

Every request goes through lti/http.py (deadline, byte cap, outbound rules). Each finding says in words what is
right or wrong and what to do; nothing the platform wrote is shown (it is logged).
"""
import logging
from dataclasses import dataclass, field

from lti_tool.lti import http
from lti_tool.lti.claims import Scope
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.platform_keys import fetch_key_set
from lti_tool.lti.service_client import ServiceError, access_token
from lti_tool.models import Platform

log = logging.getLogger(__name__)

MAX_CONFIGURATION_BYTES = 256 * 1024


@dataclass(frozen=True)
class Finding:
    #: "ok", "problem" or "note" (something an admin should know that may be fine).
    level: str
    topic: str
    words: str


@dataclass
class CheckResult:
    platform_id: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        """The findings that need fixing."""
        return [f for f in self.findings if f.level == "problem"]

    def add(self, level: str, topic: str, words: str) -> None:
        """Add a finding."""
        self.findings.append(Finding(level, topic, words))


def _usable_keys(key_set: dict) -> tuple[list[str], list[str]]:
    usable, odd = [], []
    for jwk in key_set.get("keys") or []:
        if not isinstance(jwk, dict):
            odd.append("an entry that is not a key")
            continue
        kid = jwk.get("kid")
        if jwk.get("kty") != "RSA" or jwk.get("alg") not in (None, "RS256") or jwk.get("use") not in (None, "sig"):
            odd.append(f"key {kid or '(no kid)'} is not an RS256 signing key")
        elif not isinstance(kid, str) or not kid:
            odd.append("an RSA key without a kid (launch tokens name their key by kid)")
        else:
            usable.append(kid)
    return usable, odd


def _check_key_set(platform: Platform, result: CheckResult) -> None:
    if not platform.key_set_url:
        usable, odd = _usable_keys(platform.key_set or {})
        level = "ok" if usable else "problem"
        result.add(level, "Key set", f"The key set was stored by hand: {len(usable)} usable key(s)"
                   + (f"; {'; '.join(odd)}" if odd else "") + ". When the platform rotates its keys, store its "
                   "new key set (or give its key set URL) or its launches will be refused.")
        return
    try:
        key_set = fetch_key_set(platform.key_set_url)
    except LaunchError as exc:
        result.add("problem", "Key set", exc.message)
        return
    usable, odd = _usable_keys(key_set)
    if not usable:
        result.add("problem", "Key set", f"The key set at {platform.key_set_url} has no RS256 signing key with a "
                   "kid, so no launch from this platform can be verified. Check the key set URL in the LMS's "
                   "developer key or tool settings.")
    else:
        result.add("ok", "Key set", f"The key set at {platform.key_set_url} answered with {len(usable)} usable "
                   f"key(s) ({', '.join(usable[:5])})." + (f" Also {'; '.join(odd)} (ignored)." if odd else ""))
    cached = {k.get("kid") for k in (platform.cached_key_set or {}).get("keys") or [] if isinstance(k, dict)}
    if cached and not cached & set(usable):
        result.add("note", "Key set", "None of the keys the tool last used for this platform are published any "
                   "more: the platform rotated its keys. The tool fetches the new ones at the next launch.")


def _check_configuration(platform: Platform, result: CheckResult) -> None:
    url = platform.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = http.request("GET", url, headers={"Accept": "application/json"},
                                max_bytes=MAX_CONFIGURATION_BYTES)
    except http.OutboundError as exc:
        log.info("openid configuration %s: %s", url, exc.detail)
        result.add("note", "OpenID configuration", f"The tool could not read {url}: {exc.message} Many LMSs "
                   "(Moodle, Canvas) publish their configuration only during Dynamic Registration, so this alone "
                   "is not a fault; the stored addresses were not compared.")
        return
    if response.status in (401, 403, 404):
        result.add("note", "OpenID configuration", f"{url} answered HTTP {response.status}: the platform gives its "
                   "configuration only with a registration token (as Moodle and Canvas do). This is not a fault; "
                   "the stored addresses were not compared.")
        return
    try:
        configuration = response.json() if response.status == 200 else None
    except (ValueError, UnicodeDecodeError):
        configuration = None
    if not isinstance(configuration, dict):
        result.add("problem", "OpenID configuration", f"{url} answered HTTP {response.status} without a JSON "
                   "configuration. Check the platform's issuer address.")
        return
    stored = {"authorization_endpoint": ("login (authorization) address", platform.auth_login_url),
              "token_endpoint": ("token address", platform.auth_token_url),
              "jwks_uri": ("key set address", platform.key_set_url)}
    differences = [f"the {label} stored is {mine or 'none'} but the platform names {configuration.get(name)}"
                   for name, (label, mine) in stored.items()
                   if configuration.get(name) and configuration.get(name) != mine]
    if configuration.get("issuer") not in (None, platform.issuer, platform.issuer.rstrip("/")):
        differences.append(f"the platform's configuration names the issuer {configuration.get('issuer')}, not "
                           f"{platform.issuer}")
    if differences:
        result.add("problem", "OpenID configuration", "; ".join(differences).capitalize() + ". If the platform "
                   "moved, register it again (a new Dynamic Registration link) or correct the registration.")
    else:
        result.add("ok", "OpenID configuration", "The platform's configuration names the same addresses as the "
                   "stored registration.")


def _check_token(platform: Platform, result: CheckResult) -> None:
    try:
        access_token(platform, [Scope.AGS_SCORE.value], fresh=True)
    except ServiceError as exc:
        if exc.status in (400, 401, 403):
            words = (f"The LMS refused the tool's signed token request (HTTP {exc.status}): it does not accept the "
                     f"tool's key for client id {platform.client_id}, or the grade service is off. In the LMS, check "
                     "that the tool's key set URL is this tool's JWKS address (below) and that Assignment and Grade "
                     "Services are on.")
        elif exc.status is None:
            words = f"The LMS's token address could not be reached: {str(exc).split(': ', 1)[-1]}"
        else:
            words = f"The LMS's token address answered HTTP {exc.status}. Try again later; if it stays, check the " \
                    "token address stored for this registration."
        result.add("problem", "Grade service token", words)
        return
    result.add("ok", "Grade service token", "The LMS accepted the tool's signed request and gave a grade-service "
               "token: it trusts the tool's key, and scores can be sent.")


def check_platform(platform: Platform) -> CheckResult:
    """Fetch the platform's key set and OpenID configuration and ask it for a token; say what is wrong."""
    result = CheckResult(platform_id=platform.id)
    if platform.disabled_at is not None:
        result.add("note", "Registration", "This registration is disabled: its launches are refused until it is "
                   "enabled again.")
    _check_key_set(platform, result)
    _check_configuration(platform, result)
    _check_token(platform, result)
    return result
