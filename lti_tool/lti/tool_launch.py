"""The launch as the tool reads it (as django-lti's `LtiLaunch`): typed, read once per launch row.

Services and views ask this object, never `launch.claims`: the role, the AGS endpoint, the NRPS roster URL, the
deep-linking request, and where the tool was placed (module, mode, workshop) from the placed link's custom
parameters. The custom parameters' names live here and nowhere else.
"""
import weakref
from dataclasses import dataclass, field

from lti_tool.lti import nrps
from lti_tool.lti.ags import Endpoint as AgsEndpoint
from lti_tool.lti.ags import endpoint as ags_endpoint
from lti_tool.lti.claims import ToolRole
from lti_tool.lti.deep_linking import DeepLinkRequest, deep_link_request
from lti_tool.models import Launch

#: The custom parameters a placed link carries (written by the deep-linking picker, read at each launch).
MODULE_PARAMETER, MODE_PARAMETER, WORKSHOP_PARAMETER = "module", "mode", "workshop"
#: The mode of a link placed as a graded workshop.
WORKSHOP_MODE = "workshop"


def _parameter(custom: dict, name: str, *, text_only: bool = False) -> str | None:
    # Custom parameters are strings in LTI; a platform that sends another JSON value gets it compared as text
    # (it then matches no module), or ignored where only text may name something (a workshop's id).
    value = custom.get(name)
    if value is None or value == "" or (text_only and not isinstance(value, str)):
        return None
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Placement:
    """Where the tool was placed in the course: the custom parameters of the link it was launched from."""

    module: str | None = None
    mode: str | None = None
    workshop: str | None = None

    @classmethod
    def from_custom(cls, custom: dict | None) -> "Placement":
        custom = custom if isinstance(custom, dict) else {}
        return cls(module=_parameter(custom, MODULE_PARAMETER), mode=_parameter(custom, MODE_PARAMETER),
                   workshop=_parameter(custom, WORKSHOP_PARAMETER, text_only=True))

    @property
    def placed_workshop(self) -> str | None:
        """The workshop's public id when the link was placed as a graded workshop (the picker's mode)."""
        return self.workshop if self.mode == WORKSHOP_MODE else None

    @property
    def graded_elsewhere(self) -> bool:
        """Whether the link's column belongs to a workshop's grade (any mode that names a workshop)."""
        return WORKSHOP_MODE in (self.mode or "").lower()


@dataclass(frozen=True)
class ToolLaunch:
    """What the tool needs from one launch, read from its claims and its placed link."""

    role: ToolRole
    ags: AgsEndpoint | None
    nrps_url: str | None
    deep_link: DeepLinkRequest | None
    placement: Placement = field(default_factory=Placement)


def read(claims: dict | None, custom: dict | None = None, role: str = ToolRole.MEMBER.value) -> ToolLaunch:
    """Read a launch's claims (and its link's custom parameters)."""
    claims = claims if isinstance(claims, dict) else {}
    return ToolLaunch(role=ToolRole(role), ags=ags_endpoint(claims), nrps_url=nrps.memberships_url(claims),
                      deep_link=deep_link_request(claims), placement=Placement.from_custom(custom))


_read: "weakref.WeakKeyDictionary[Launch, ToolLaunch]" = weakref.WeakKeyDictionary()


def of(launch: Launch) -> ToolLaunch:
    """Return the launch's typed reading; made once per launch row loaded (a request loads its launch once)."""
    found = _read.get(launch)
    if found is None:
        link = launch.resource_link
        found = _read[launch] = read(launch.claims, link.custom if link is not None else None, launch.role)
    return found
