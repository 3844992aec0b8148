"""Names and Role Provisioning Services (NRPS): read a course's whole roster from the platform.

The memberships come in pages linked by `Link: <...>; rel="next"`; the next URL is followed exactly as sent
(pylti1p3 lower-cases it, which breaks platforms whose URLs carry capitals).
"""
import logging
from dataclasses import dataclass

from lti_tool.lti import service_client
from lti_tool.lti.claims import Claim, Role, Scope, ToolRole, tool_role
from lti_tool.models import Platform
from lti_tool.text import clean_line, has_control_characters

log = logging.getLogger(__name__)

MEMBERSHIP_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
#: A course of 10,000 members in pages of 50 is 200 pages; more means the platform is looping.
MAX_PAGES = 500

_MEMBERSHIP_PREFIX = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


class RosterUnavailable(Exception):
    """The platform's roster could not be read; the message says why in plain words."""


@dataclass(frozen=True)
class Membership:
    """One member of the course as the platform lists them."""

    user_id: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None
    roles: tuple[str, ...]
    status: str

    @property
    def active(self) -> bool:
        """Whether the platform lists the member as active (the default when it says nothing)."""
        return self.status == "Active"

    @property
    def tool_role(self) -> ToolRole | None:
        """Return what the member's roles let them do in the tool (None when no role grants access)."""
        return tool_role(list(self.roles))

    @property
    def learner(self) -> bool:
        """Whether the member takes the course as a learner (and not also teaches it)."""
        learner = any(r == Role.LEARNER or r.startswith(Role.LEARNER + "#") for r in self.roles)
        return learner and self.tool_role == ToolRole.MEMBER


def memberships_url(claims: dict) -> str | None:
    """Return the launch's NRPS memberships URL, or None when the platform offers no roster service."""
    service = claims.get(Claim.NRPS)
    url = service.get("context_memberships_url") if isinstance(service, dict) else None
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _text(value, limit: int) -> str | None:
    # A roster name with a NUL once broke the whole course's workshop page: one line of text, no controls.
    return clean_line(value).strip()[:limit] or None if isinstance(value, str) else None


def _role(value: str) -> str:
    # Some platforms still send short role names ("Learner"); LTI 1.3 wants full URIs.
    return value if value.startswith("http") else _MEMBERSHIP_PREFIX + value


def _membership(raw) -> Membership | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("user_id"), str) or not raw["user_id"]:
        return None
    if has_control_characters(raw["user_id"]) or len(raw["user_id"]) > 255:
        log.warning("roster member skipped: user_id %r is not a usable identifier", raw["user_id"][:40])
        return None
    roles = [clean_line(r) for r in raw["roles"] if isinstance(r, str)] if isinstance(raw.get("roles"), list) else []
    status = clean_line(raw["status"]) if isinstance(raw.get("status"), str) else "Active"
    return Membership(user_id=raw["user_id"][:255], name=_text(raw.get("name"), 300),
                      given_name=_text(raw.get("given_name"), 200), family_name=_text(raw.get("family_name"), 200),
                      email=_text(raw.get("email"), 320),
                      roles=tuple(_role(r) for r in roles if isinstance(r, str) and r), status=status)


def fetch_memberships(platform: Platform, url: str) -> list[Membership]:
    """Read every page of the course's memberships; raise RosterUnavailable when the platform fails."""
    members: list[Membership] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        if next_url in seen or len(seen) >= MAX_PAGES:
            break  # a platform that links a page to itself (or endlessly) has given us all it will
        seen.add(next_url)
        try:
            response = service_client.call(platform, [Scope.NRPS_MEMBERSHIP.value], "GET", next_url,
                                           accept=MEMBERSHIP_MEDIA_TYPE)
        except service_client.ServiceError as exc:
            where = f"HTTP {exc.status}" if exc.status else "no answer"
            raise RosterUnavailable(f"The LMS did not give its course roster ({where}).") from exc
        body = response.body if isinstance(response.body, dict) else {}
        page = body.get("members")
        if not isinstance(page, list):
            raise RosterUnavailable("The LMS answered the roster request without a list of members.")
        members.extend(m for m in (_membership(raw) for raw in page) if m is not None)
        next_url = response.next_url
    return members
