"""How platforms learn about the tool: Canvas's developer-key JSON and LTI Dynamic Registration."""
import logging
from dataclasses import dataclass
from urllib.parse import urlparse

import requests
import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti.claims import TOOL_SCOPES, MessageType
from lti_tool.lti.errors import LaunchError
from lti_tool.models import Deployment, Platform

log = logging.getLogger(__name__)

TOOL_TITLE = "Bargaining Certificate"
TOOL_DESCRIPTION = ("The union's Bargaining Certificate program: Bargaining Foundations, Democratized Bargaining "
                    "and Specialized Topics modules, graded workshops and the 24-hour certificate ledger.")
LTI_PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
LTI_TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CANVAS_PRIVACY_LEVEL = "https://canvas.instructure.com/lti/privacy_level"


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
    domain = urlparse(base_url).netloc
    deep_link = {"message_type": MessageType.DEEP_LINKING.value, "target_link_uri": urls["launch"]}
    return {
        "title": TOOL_TITLE,
        "description": TOOL_DESCRIPTION,
        "oidc_initiation_url": urls["login"],
        "target_link_uri": urls["launch"],
        "public_jwk_url": urls["jwks"],
        "scopes": TOOL_SCOPES,
        "custom_fields": {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"},
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": domain,
            "tool_id": "bargaining-certificate",
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


def tool_registration_request(base_url: str, platform_config: dict) -> dict:
    """Return the body the tool POSTs to the platform's registration endpoint."""
    urls = tool_urls(base_url)
    offered = set(platform_config.get("scopes_supported") or TOOL_SCOPES)
    scopes = [s for s in TOOL_SCOPES if s in offered]
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": urls["login"],
        "redirect_uris": [urls["launch"]],
        "client_name": TOOL_TITLE,
        "jwks_uri": urls["jwks"],
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scopes),
        LTI_TOOL_CONFIGURATION: {
            "domain": urlparse(base_url).netloc,
            "description": TOOL_DESCRIPTION,
            "target_link_uri": urls["launch"],
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
            "messages": [
                {"type": MessageType.RESOURCE_LINK.value, "target_link_uri": urls["launch"], "label": TOOL_TITLE,
                 "placements": ["course_navigation"]},
                {"type": MessageType.DEEP_LINKING.value, "target_link_uri": urls["launch"],
                 "label": f"{TOOL_TITLE} module or workshop",
                 "placements": ["link_selection", "assignment_selection", "ContentArea"]},
            ],
            CANVAS_PRIVACY_LEVEL: "public",
        },
    }


@dataclass(frozen=True)
class RegistrationResult:
    platform: Platform
    deployment_id: str | None
    product: str | None
    #: Moodle keeps a dynamically registered tool pending until an admin activates it.
    needs_activation: bool


def _get_json(url: str, token: str | None, what: str) -> dict:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.get(url, headers=headers, timeout=current_app.config["HTTP_TIMEOUT"])
    except requests.RequestException as exc:
        raise LaunchError("registration_failed", f"The tool could not reach the platform's {what} at {url} "
                          f"({exc.__class__.__name__}).") from exc
    if response.status_code != 200:
        raise LaunchError("registration_failed", f"The platform's {what} at {url} answered HTTP "
                          f"{response.status_code}: {response.text[:300]}")
    try:
        data = response.json()
    except ValueError as exc:
        raise LaunchError("registration_failed", f"The platform's {what} at {url} is not JSON.") from exc
    if not isinstance(data, dict):
        raise LaunchError("registration_failed", f"The platform's {what} at {url} is not a JSON object.")
    return data


def _required_url(config: dict, name: str) -> str:
    value = config.get(name)
    # Older Moodles advertised keys with stray spaces; read tolerantly.
    if value is None:
        for key, val in config.items():
            if isinstance(key, str) and key.strip() == name:
                value = val
    if not isinstance(value, str) or not value.strip().startswith(("https://", "http://")):
        raise LaunchError("registration_failed", f"The platform's configuration has no valid '{name}'.")
    return value.strip()


def register_dynamically(openid_configuration: str, registration_token: str | None) -> RegistrationResult:
    """Read the platform's configuration, register the tool there, and store the new platform."""
    if not openid_configuration or not openid_configuration.startswith(("https://", "http://")):
        raise LaunchError("registration_failed", "Dynamic Registration needs the openid_configuration URL the "
                          "platform passes when it opens /lti/register.")
    config = _get_json(openid_configuration, registration_token, "OpenID configuration")
    issuer = _required_url(config, "issuer")
    auth_login_url = _required_url(config, "authorization_endpoint")
    token_url = _required_url(config, "token_endpoint")
    jwks_uri = _required_url(config, "jwks_uri")
    registration_endpoint = _required_url(config, "registration_endpoint")
    platform_config = config.get(LTI_PLATFORM_CONFIGURATION) or {}
    product = platform_config.get("product_family_code") if isinstance(platform_config, dict) else None

    base_url = current_app.config["PUBLIC_BASE_URL"]
    body = tool_registration_request(base_url, config)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if registration_token:
        headers["Authorization"] = f"Bearer {registration_token}"
    try:
        response = requests.post(registration_endpoint, json=body, headers=headers,
                                 timeout=current_app.config["HTTP_TIMEOUT"])
    except requests.RequestException as exc:
        raise LaunchError("registration_failed", f"The tool could not reach the platform's registration "
                          f"endpoint {registration_endpoint} ({exc.__class__.__name__}).") from exc
    if response.status_code not in (200, 201):
        raise LaunchError("registration_failed", f"The platform refused the registration (HTTP "
                          f"{response.status_code}): {response.text[:300]}. If the registration link was "
                          "already used, start the registration again from the platform.")
    try:
        answer = response.json()
    except ValueError as exc:
        raise LaunchError("registration_failed", "The platform's answer to the registration is not JSON.") from exc
    client_id = answer.get("client_id") if isinstance(answer, dict) else None
    if not isinstance(client_id, str) or not client_id:
        raise LaunchError("registration_failed", "The platform's answer to the registration has no client_id.")
    tool_config = answer.get(LTI_TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id") if isinstance(tool_config, dict) else None
    deployment_id = str(deployment_id) if deployment_id not in (None, "") else None

    platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == issuer,
                                                            Platform.client_id == client_id)).first()
    if platform is None:
        platform = Platform(issuer=issuer, client_id=client_id)
        db.session.add(platform)
    name = (platform_config.get("product_family_code") or urlparse(issuer).netloc) if isinstance(
        platform_config, dict) else urlparse(issuer).netloc
    platform.name = f"{name} ({urlparse(issuer).netloc})" if name != urlparse(issuer).netloc else name
    platform.auth_login_url = auth_login_url
    platform.auth_token_url = token_url
    platform.key_set_url = jwks_uri
    platform.registered_by = "dynamic"
    platform.product = product
    # Without a deployment id in the answer (Canvas makes deployments when admins install the key), trust new
    # deployment ids in launches this platform signs.
    platform.accept_new_deployments = deployment_id is None
    db.session.flush()
    if deployment_id and not any(d.deployment_id == deployment_id for d in platform.deployments):
        db.session.add(Deployment(platform_id=platform.id, deployment_id=deployment_id))
    db.session.flush()
    log.info("dynamic registration: platform %s issuer=%s client_id=%s deployment=%s", platform.id, issuer,
             client_id, deployment_id)
    return RegistrationResult(platform=platform, deployment_id=deployment_id, product=product,
                              needs_activation=(product or "").lower() == "moodle")
