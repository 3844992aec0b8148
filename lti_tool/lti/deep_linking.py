"""Deep Linking 2.0: what a deep-linking request asks for, and the signed response the tool sends back.

The response is built here rather than with pylti1p3's DeepLink, which always sends a `data` claim (null when
the request had none), has no `text` on items and writes the return URL into its HTML unescaped.
"""
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import jwt

from lti_tool.lti import keys
from lti_tool.lti.claims import LTI_VERSION, Claim, MessageType
from lti_tool.models import Platform

#: The content item type for a link that launches the tool (the only type this tool places).
RESOURCE_LINK = "ltiResourceLink"
#: How long the platform may take to receive the response.
RESPONSE_LIFETIME_SECONDS = 600
#: Moodle stores an activity name in 255 characters; Canvas accepts more.
MAX_TITLE_LENGTH = 255


@dataclass(frozen=True)
class DeepLinkRequest:
    """The deep-linking settings of one launch, read tolerantly (booleans may come as "true"/"false")."""

    deployment_id: str
    return_url: str
    accept_types: tuple[str, ...]
    accept_multiple: bool
    accept_lineitem: bool
    #: Whether the request carried `data`, which must then come back exactly as it was sent.
    has_data: bool
    data: object = None

    @property
    def accepts_resource_links(self) -> bool:
        """Whether the platform takes the LTI resource links this tool places."""
        return RESOURCE_LINK in self.accept_types


def _flag(value, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return default


def deep_link_request(claims: dict) -> DeepLinkRequest | None:
    """Return the deep-linking request of a launch's claims; None when the launch is not one."""
    settings = claims.get(Claim.DEEP_LINKING_SETTINGS)
    if claims.get(Claim.MESSAGE_TYPE) != MessageType.DEEP_LINKING or not isinstance(settings, dict):
        return None
    return_url = settings.get("deep_link_return_url")
    if not isinstance(return_url, str) or urlparse(return_url).scheme not in ("http", "https"):
        return None  # never post a signed token to a javascript: or relative address
    accept_types = settings.get("accept_types")
    accept_types = tuple(t for t in accept_types if isinstance(t, str)) if isinstance(accept_types, list) else ()
    deployment_id = claims.get(Claim.DEPLOYMENT_ID)
    if not isinstance(deployment_id, str):
        return None  # the launch checks give every launch one; a response without it would be refused
    return DeepLinkRequest(
        deployment_id=deployment_id,
        return_url=return_url,
        accept_types=accept_types,
        # A platform that does not say it takes several items gets one.
        accept_multiple=_flag(settings.get("accept_multiple"), False),
        accept_lineitem=_flag(settings.get("accept_lineitem"), True),
        has_data="data" in settings,
        data=settings.get("data"),
    )


@dataclass(frozen=True)
class LineItem:
    """The gradebook column the platform makes for a placed link (AGS line item fields)."""

    score_maximum: float
    label: str
    resource_id: str
    tag: str


@dataclass(frozen=True)
class ResourceLinkItem:
    """One `ltiResourceLink` content item."""

    url: str
    title: str
    text: str
    custom: dict[str, str] = field(default_factory=dict)
    line_item: LineItem | None = None

    def to_claim(self) -> dict:
        """Return the item as the content_items claim carries it."""
        item: dict[str, Any] = {"type": RESOURCE_LINK, "url": self.url, "title": _short(self.title), "text": self.text}
        if self.custom:
            # Custom parameter values are strings in LTI; Moodle writes them as key=value lines.
            item["custom"] = {str(k): str(v) for k, v in self.custom.items()}
        if self.line_item is not None:
            item["lineItem"] = {
                "scoreMaximum": _number(self.line_item.score_maximum),
                "label": _short(self.line_item.label),
                "resourceId": self.line_item.resource_id,
                "tag": self.line_item.tag,
            }
        return item


def _short(text: str) -> str:
    return text if len(text) <= MAX_TITLE_LENGTH else text[:MAX_TITLE_LENGTH - 1].rstrip() + "…"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def response_claims(platform: Platform, request: DeepLinkRequest, items: list[ResourceLinkItem],
                    message: str | None = None) -> dict:
    """Return the claims of the LtiDeepLinkingResponse to the platform that sent `request`."""
    now = int(time.time())
    claims = {
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now + RESPONSE_LIFETIME_SECONDS,
        # Canvas reads the nonce as the token's jti: unique per response.
        "nonce": uuid.uuid4().hex,
        Claim.DEPLOYMENT_ID.value: request.deployment_id,
        Claim.MESSAGE_TYPE.value: MessageType.DEEP_LINKING_RESPONSE.value,
        Claim.VERSION.value: LTI_VERSION,
        Claim.DL_CONTENT_ITEMS.value: [item.to_claim() for item in items],
    }
    if request.has_data:
        claims[Claim.DL_DATA.value] = request.data
    if message:
        claims[Claim.DL_MESSAGE.value] = message
    return claims


def sign_response(platform: Platform, request: DeepLinkRequest, items: list[ResourceLinkItem],
                  message: str | None = None) -> str:
    """Return the response JWT, signed with the tool's active key and named by its `kid`."""
    key = keys.signing_key()
    return jwt.encode(response_claims(platform, request, items, message), key.private_key_pem, algorithm="RS256",
                      headers={"kid": key.kid, "typ": "JWT"})
