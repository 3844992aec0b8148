"""How platforms learn about the tool: Canvas's developer-key JSON and LTI Dynamic Registration (the protocol).

Dynamic Registration here reads and checks the platform's OpenID configuration and sends the tool's registration;
what the tool then stores (and what it refuses to change) is decided in services/platforms.py.
"""
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from lti_tool.lti import canvas, http
from lti_tool.lti.claims import TOOL_SCOPES, MessageType, Scope
from lti_tool.lti.errors import LaunchError

log = logging.getLogger(__name__)

TOOL_TITLE = "Bargaining Certificate"
TOOL_DESCRIPTION = ("The union's Bargaining Certificate program: Bargaining Foundations, Democratized Bargaining "
                    "and Specialized Topics modules, graded workshops and the 24-hour certificate ledger.")
LTI_PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
LTI_TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
#: The LTI spec's generic placement for content selection; Canvas names its own placements instead.
CONTENT_AREA = "ContentArea"
#: Moodle's registration token says "reg-update" when the admin chose Update on an existing tool.
MOODLE_UPDATE_SCOPE = "reg-update"
MAX_CONFIGURATION_BYTES = 256 * 1024
MAX_URL_LENGTH = 2000
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")


def tool_urls(base_url: str) -> dict[str, str]:
    """Return the tool's public endpoints."""
    return {
        "login": f"{base_url}/lti/login",
        "launch": f"{base_url}/lti/launch",
        "jwks": f"{base_url}/.well-known/jwks.json",
        "register": f"{base_url}/lti/register",
        "canvas_config": f"{base_url}/lti/config/canvas.json",
    }


def canvas_configuration(base_url: str) -> dict:
    """Return the Canvas developer-key JSON (Admin > Developer Keys > + LTI Key > Paste JSON or Enter URL)."""
    urls = tool_urls(base_url)
    domain = urlsplit(base_url).netloc
    deep_link = {"message_type": MessageType.DEEP_LINKING.value, "target_link_uri": urls["launch"]}
    return {
        "title": TOOL_TITLE,
        "description": TOOL_DESCRIPTION,
        "oidc_initiation_url": urls["login"],
        "target_link_uri": urls["launch"],
        "public_jwk_url": urls["jwks"],
        "scopes": TOOL_SCOPES,
        "custom_fields": dict(canvas.CUSTOM_FIELDS),
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": domain,
            "tool_id": canvas.TOOL_ID_VALUE,
            "privacy_level": "public",  # sends name and email
            "settings": {
                "text": TOOL_TITLE,
                "placements": [
                    {"placement": "course_navigation", "text": TOOL_TITLE,
                     "message_type": MessageType.RESOURCE_LINK.value, "target_link_uri": urls["launch"],
                     "default": "enabled", "visibility": "members"},
                    {"placement": "link_selection", "text": f"{TOOL_TITLE} module", **deep_link},
                    {"placement": "assignment_selection", "text": f"{TOOL_TITLE} module or workshop", **deep_link},
                ],
            },
        }],
    }


# -- the platform's OpenID configuration -----------------------------------------------------------------------

@dataclass(frozen=True)
class PlatformConfiguration:
    """A platform's OpenID configuration, read and checked."""

    url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    product: str | None
    version: str | None
    account_name: str | None
    scopes_supported: tuple[str, ...] | None

    @property
    def is_canvas(self) -> bool:
        return self.product == canvas.PRODUCT

    @property
    def is_moodle(self) -> bool:
        return self.product == "moodle"

    @property
    def shared_issuer(self) -> bool:
        """Whether many institutions share the issuer (Canvas cloud): then only issuer + client id is one LMS."""
        return canvas.is_shared_issuer(self.issuer)

    @property
    def product_label(self) -> str:
        return {"moodle": "Moodle", "canvas": "Canvas"}.get(self.product or "", self.product or "The platform")

    @property
    def display_name(self) -> str:
        """A name for admins: Canvas's account name, or the product and host."""
        host = urlsplit(self.issuer).netloc or self.issuer
        if self.account_name:
            return f"{self.account_name} ({self.product_label})"[:200]
        return f"{self.product_label} at {host}"[:200]


def _text(value, limit: int = 200) -> str | None:
    # Names from a platform are shown to admins: printable, one line, short.
    if not isinstance(value, str):
        return None
    return http.excerpt(value, limit) or None


def _find(config: dict, name: str):
    if name in config:
        return config[name]
    for key, value in config.items():  # older Moodles advertised keys with stray spaces: read tolerantly
        if isinstance(key, str) and key.strip() == name:
            return value
    return None


def _url(config: dict, name: str, limit: int = 1000) -> str:
    value = _find(config, name)
    value = value.strip() if isinstance(value, str) else ""
    parts = _parse_url(value) if len(value) <= limit and value.isprintable() and " " not in value else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        raise LaunchError("registration_invalid", f"The platform's OpenID configuration has no valid '{name}' "
                          "(an http or https address). The platform is not ready for Dynamic Registration; "
                          "register the tool by hand instead (see the tool's README).")
    return value


def _parse_url(value: str):
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def check_origins(url: str, issuer: str, endpoints: dict[str, str]) -> None:
    """Refuse a configuration whose issuer or endpoints are not on the origin it was fetched from.

    Otherwise anyone who can get the tool to read a configuration could claim another platform's issuer or point
    its key set at their own server. Canvas cloud is the one platform whose shared issuer and endpoints
    legitimately live on several Instructure hosts: lti/canvas.py holds that narrow rule.
    """
    if canvas.is_shared_issuer(issuer):
        if not canvas.serves_configuration(url, issuer):
            raise LaunchError("registration_origin", f"The configuration claims the Canvas cloud issuer {issuer}, "
                              "but it was not served by Instructure's Canvas over https. Start the registration "
                              "from your Canvas (Admin › Developer Keys › + Developer Key › + LTI Registration).")
        for name, endpoint in endpoints.items():
            if not canvas.may_name(endpoint, issuer):
                raise LaunchError("registration_origin", f"The Canvas configuration names its {name} at "
                                  f"{endpoint}, which is not a Canvas cloud address. The tool registers Canvas "
                                  "cloud only with Instructure's own addresses; register the tool with the "
                                  "developer-key JSON instead (see the tool's README).")
        return
    origin = _origin(url)
    for name, value in {"issuer": issuer, **endpoints}.items():
        if _origin(value) != origin:
            raise LaunchError("registration_origin", f"The platform's configuration (from {origin[1]}) names its "
                              f"{name} at {value}, on another site. A platform's issuer and endpoints must be on "
                              "the site that serves its configuration, so the tool refused the registration. If "
                              "your platform really is split across sites, register the tool by hand.")


def read_configuration(url: str, registration_token: str | None) -> PlatformConfiguration:
    """Fetch the platform's OpenID configuration and check it; raise LaunchError when it cannot be used."""
    url = (url or "").strip()
    parts = _parse_url(url) if len(url) <= MAX_URL_LENGTH and url.isprintable() and " " not in url else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        raise LaunchError("registration_start", "Dynamic Registration starts in your LMS: paste this page's address "
                          "(the registration link the tool's operator gave you) into the LMS's Dynamic "
                          "Registration, which opens it with its openid_configuration.")
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        response = http.request("GET", url, headers=headers, max_bytes=MAX_CONFIGURATION_BYTES)
    except http.OutboundError as exc:
        log.warning("registration: configuration %s: %s", url, exc.detail)
        raise LaunchError("registration_unreachable", f"The tool could not read the platform's configuration: "
                          f"{exc.message}", status=502) from exc
    if response.status != 200:
        log.warning("registration: configuration %s answered HTTP %s: %s", url, response.status,
                    response.excerpt())
        raise LaunchError("registration_refused", f"The platform's configuration answered HTTP {response.status}. "
                          "Registration links from the LMS are short-lived: start the registration again from "
                          "the LMS.", status=502)
    try:
        config = response.json()
    except ValueError as exc:
        raise LaunchError("registration_invalid", "The platform's configuration is not JSON.", status=502) from exc
    if not isinstance(config, dict):
        raise LaunchError("registration_invalid", "The platform's configuration is not a JSON object.", status=502)
    issuer = _url(config, "issuer", limit=500)
    endpoints = {name: _url(config, name) for name in _ENDPOINTS}
    check_origins(url, issuer, endpoints)
    platform = _find(config, LTI_PLATFORM_CONFIGURATION)
    platform = platform if isinstance(platform, dict) else {}
    product = _text(platform.get("product_family_code"), 50)
    scopes = _find(config, "scopes_supported")
    return PlatformConfiguration(
        url=url, issuer=issuer, **endpoints, product=product.lower() if product else None,
        version=_text(platform.get("version"), 50), account_name=_text(platform.get(canvas.ACCOUNT_NAME)),
        scopes_supported=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else None)


def updates_existing(registration_token: str | None) -> bool:
    """Whether the platform's registration token asks to update an existing registration.

    Moodle's Update signs {"scope": "reg-update", "sub": <tool type id>}; Canvas names `existing_registration`.
    Only what the page says depends on it: what is stored depends on the platform's answer.
    """
    if not registration_token:
        return False
    try:
        claims = jwt.decode(registration_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return isinstance(claims, dict) and (claims.get("scope") == MOODLE_UPDATE_SCOPE
                                         or bool(claims.get("existing_registration")))


# -- the tool's registration -----------------------------------------------------------------------------------

def tool_registration_request(base_url: str, platform: PlatformConfiguration) -> dict:
    """Return the body the tool POSTs to the platform's registration endpoint."""
    urls = tool_urls(base_url)
    offered = set(platform.scopes_supported or TOOL_SCOPES)
    resource_link: dict[str, Any] = {"type": MessageType.RESOURCE_LINK.value, "target_link_uri": urls["launch"],
                                     "label": TOOL_TITLE, "placements": ["course_navigation"]}
    deep_link = {"type": MessageType.DEEP_LINKING.value, "target_link_uri": urls["launch"],
                 "label": f"{TOOL_TITLE} module or workshop",
                 "placements": ["link_selection", "assignment_selection", CONTENT_AREA]}
    tool_configuration: dict[str, Any] = {
        "domain": urlsplit(base_url).netloc,
        "description": TOOL_DESCRIPTION,
        "target_link_uri": urls["launch"],
        "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
        "messages": [resource_link, deep_link],
    }
    if platform.is_canvas:
        # As canvas.json: members see the course navigation link, the same tool id and custom fields, names and
        # emails. No ContentArea: older Canvas schemas refuse the whole registration (422) for it, and current
        # Canvas maps it to link_selection, which is listed already.
        deep_link["placements"] = ["link_selection", "assignment_selection"]
        resource_link[canvas.VISIBILITY] = "members"
        resource_link[canvas.COURSE_NAV_DEFAULT_ENABLED] = True
        tool_configuration[canvas.TOOL_ID] = canvas.TOOL_ID_VALUE
        tool_configuration[canvas.PRIVACY_LEVEL] = "public"
        tool_configuration["custom_parameters"] = dict(canvas.CUSTOM_FIELDS)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls["login"],
        "redirect_uris": [urls["launch"]],
        "client_name": TOOL_TITLE,
        "jwks_uri": urls["jwks"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(s for s in TOOL_SCOPES if s in offered),
        LTI_TOOL_CONFIGURATION: tool_configuration,
    }


@dataclass(frozen=True)
class PlatformAnswer:
    """What the platform said when it took the registration."""

    client_id: str
    deployment_id: str | None


def _identifier(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    value = str(value).strip()
    return value if value and len(value) <= 255 and value.isprintable() else None


def send_registration(base_url: str, platform: PlatformConfiguration,
                      registration_token: str | None) -> PlatformAnswer:
    """POST the tool's registration to the platform; return its client id and deployment id."""
    headers = {"Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        response = http.request("POST", platform.registration_endpoint, headers=headers,
                                json_body=tool_registration_request(base_url, platform),
                                max_bytes=MAX_CONFIGURATION_BYTES)
    except http.OutboundError as exc:
        log.warning("registration: POST %s: %s", platform.registration_endpoint, exc.detail)
        raise LaunchError("registration_unreachable", f"The tool could not send its registration to the platform: "
                          f"{exc.message}", status=502, platform=platform.issuer) from exc
    if response.status not in (200, 201):
        log.warning("registration: %s refused the registration, HTTP %s: %s", platform.registration_endpoint,
                    response.status, response.excerpt())
        raise LaunchError("registration_refused", f"{platform.product_label} refused the registration (HTTP "
                          f"{response.status}). Registration links from the LMS work once and expire: start the "
                          "registration again from the LMS. If it keeps failing, the tool's log has the platform's "
                          "answer.", status=502, platform=platform.issuer)
    try:
        answer = response.json()
    except ValueError as exc:
        raise LaunchError("registration_invalid", "The platform's answer to the registration is not JSON.",
                          status=502, platform=platform.issuer) from exc
    answer = answer if isinstance(answer, dict) else {}
    client_id = _identifier(answer.get("client_id"))
    if client_id is None:
        raise LaunchError("registration_invalid", "The platform's answer to the registration has no client_id.",
                          status=502, platform=platform.issuer)
    tool_configuration = answer.get(LTI_TOOL_CONFIGURATION)
    # Canvas (with its registrations feature) answers with deployment_id at the top level; Moodle inside the tool
    # configuration.
    deployment_id = _identifier(answer.get("deployment_id")) or (
        _identifier(tool_configuration.get("deployment_id")) if isinstance(tool_configuration, dict) else None)
    return PlatformAnswer(client_id=client_id, deployment_id=deployment_id)


_SCOPE_WORDS: dict[str, str] = {
    Scope.AGS_LINEITEM: "create and update its gradebook columns",
    Scope.AGS_LINEITEM_READONLY: "read its gradebook columns",
    Scope.AGS_RESULT_READONLY: "read the results in its columns",
    Scope.AGS_SCORE: "send scores to its columns",
    Scope.NRPS_MEMBERSHIP: "read course rosters (names and roles)",
}


def describe_scopes(scope: str) -> list[str]:
    """Say in words what a registration's scopes let the tool do."""
    return [_SCOPE_WORDS.get(s, s) for s in scope.split()]
