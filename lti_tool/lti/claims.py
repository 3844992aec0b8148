"""LTI 1.3 vocabulary: claim URIs, message types and roles, and how roles map to the tool's roles."""
from enum import StrEnum


class Claim(StrEnum):
    MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
    VERSION = "https://purl.imsglobal.org/spec/lti/claim/version"
    DEPLOYMENT_ID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
    TARGET_LINK_URI = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
    RESOURCE_LINK = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
    ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"
    CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"
    TOOL_PLATFORM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
    LAUNCH_PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
    CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
    DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
    DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
    DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
    DL_MESSAGE = "https://purl.imsglobal.org/spec/lti-dl/claim/msg"
    AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
    NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


#: The context claim's type of a course section or offering (LIS vocabulary).
COURSE_OFFERING = "http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"


class MessageType(StrEnum):
    RESOURCE_LINK = "LtiResourceLinkRequest"
    DEEP_LINKING = "LtiDeepLinkingRequest"
    DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"


class Scope(StrEnum):
    AGS_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
    AGS_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
    AGS_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
    AGS_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    NRPS_MEMBERSHIP = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


TOOL_SCOPES = [s.value for s in Scope]

LTI_VERSION = "1.3.0"

_MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
_INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
_SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"


class Role(StrEnum):
    """LTI role URIs the tool acts on (full URIs, as LTI 1.3 requires)."""

    LEARNER = _MEMBERSHIP + "Learner"
    INSTRUCTOR = _MEMBERSHIP + "Instructor"
    CONTENT_DEVELOPER = _MEMBERSHIP + "ContentDeveloper"
    MENTOR = _MEMBERSHIP + "Mentor"
    CONTEXT_ADMIN = _MEMBERSHIP + "Administrator"
    TEACHING_ASSISTANT = _MEMBERSHIP + "Instructor#TeachingAssistant"
    INSTITUTION_ADMIN = _INSTITUTION + "Administrator"
    INSTITUTION_STUDENT = _INSTITUTION + "Student"
    INSTITUTION_INSTRUCTOR = _INSTITUTION + "Instructor"
    SYSTEM_ADMIN = _SYSTEM + "Administrator"
    SYSTEM_SYSADMIN = _SYSTEM + "SysAdmin"


class ToolRole(StrEnum):
    """What a person may do in the tool, from least to most."""

    MEMBER = "member"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


_ADMIN_ROLES = {Role.INSTITUTION_ADMIN, Role.SYSTEM_ADMIN, Role.SYSTEM_SYSADMIN}
_INSTRUCTOR_ROLES = {
    Role.INSTRUCTOR,
    Role.TEACHING_ASSISTANT,
    Role.CONTENT_DEVELOPER,
    Role.CONTEXT_ADMIN,
}
_MEMBER_ROLES = {Role.LEARNER, Role.MENTOR, Role.INSTITUTION_STUDENT, Role.INSTITUTION_INSTRUCTOR}


def _normalise(role: str) -> str:
    # Sub-roles (membership/Instructor#TeachingAssistant) and the short forms some LMSs still send
    # ("Instructor") are read as their context role.
    if role.startswith("http"):
        return role
    return _MEMBERSHIP + role


def tool_role(lti_roles: list[str]) -> ToolRole | None:
    """Map the LTI roles of a launch to the tool's role; None when no role grants access."""
    roles = {_normalise(r) for r in lti_roles if isinstance(r, str)}
    if roles & _ADMIN_ROLES:
        return ToolRole.ADMIN
    if roles & _INSTRUCTOR_ROLES or any(r.startswith(Role.INSTRUCTOR + "#") for r in roles):
        return ToolRole.INSTRUCTOR
    if roles & _MEMBER_ROLES or any(r.startswith(Role.LEARNER + "#") for r in roles):
        return ToolRole.MEMBER
    return None
