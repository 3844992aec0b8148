"""What is peculiar to Canvas: the shared issuers of Instructure's cloud, the hosts that serve them, and Canvas's
extensions to the tool configuration.

Checked against Canvas's source (instructure/canvas-lms): `SecurityController#openid_configuration` answers with
`issuer` = the `lti_iss` setting (`https://canvas.instructure.com` for every cloud customer, `canvas.beta...` and
`canvas.test...` for the beta and test copies), `authorization_endpoint`, `jwks_uri` and `token_endpoint` on
`Lti::Oidc.auth_domain` (which Instructure's cloud maps to `sso.canvaslms.com`, `sso.beta.canvaslms.com`,
`sso.test.canvaslms.com`; Canvas's LTI docs give those hosts), and `registration_endpoint` on the customer's own
Canvas host (`<school>.instructure.com/api/lti/registrations`). The configuration itself is served at
`https://<issuer host>/api/lti/security/openid-configuration` (`DynamicRegistrationController#oidc_configuration_url`
builds it from the issuer's host).

So the narrowest rule that accepts real cloud Canvas: a shared-issuer configuration must come over https from an
Instructure host of that environment (`canvas.instructure.com` or `<school>.instructure.com`; for beta
`<name>.beta.instructure.com`, for test `<name>.test.instructure.com`), and may name endpoints only on that
environment's SSO host (`sso[.beta|.test].canvaslms.com`) or its Instructure hosts, all https on the default port.
A customer's vanity domain (canvas.school.edu) is not accepted as a registration endpoint: nothing ties it to
Instructure. Everything else follows the general rule in registration.py (one origin for all).
"""
import re
from urllib.parse import urlsplit

#: Canvas cloud's issuers, each shared by every customer of that environment, with the environment's DNS infix.
SHARED_ISSUERS = {
    "https://canvas.instructure.com": "",
    "https://canvas.beta.instructure.com": "beta.",
    "https://canvas.test.instructure.com": "test.",
}

PRODUCT = "canvas"
PRIVACY_LEVEL = "https://canvas.instructure.com/lti/privacy_level"
TOOL_ID = "https://canvas.instructure.com/lti/tool_id"
VISIBILITY = "https://canvas.instructure.com/lti/visibility"
COURSE_NAV_DEFAULT_ENABLED = "https://canvas.instructure.com/lti/course_navigation/default_enabled"
ACCOUNT_NAME = "https://canvas.instructure.com/lti/account_name"
ACCOUNT_LTI_GUID = "https://canvas.instructure.com/lti/account_lti_guid"

#: The tool's id in both install paths (developer-key JSON and Dynamic Registration), so Canvas sees one tool.
TOOL_ID_VALUE = "bargaining-certificate"
#: Custom fields Canvas fills at launch ($Canvas variables), the same in both install paths.
CUSTOM_FIELDS = {"canvas_user_id": "$Canvas.user.id", "canvas_course_id": "$Canvas.course.id"}


def is_shared_issuer(issuer: str) -> bool:
    """Whether many institutions share this issuer (Canvas cloud), so only issuer + client id names one."""
    return issuer.rstrip("/") in SHARED_ISSUERS


def _https_default_port(url: str):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or port not in (None, 443) or parts.username or parts.password:
        return None
    return (parts.hostname or "").lower()


def _instructure_host(host: str, infix: str) -> bool:
    # One label in front of the environment's domain: canvas.instructure.com, school.instructure.com,
    # school.beta.instructure.com — never a host of another environment, never a longer chain.
    return re.fullmatch(rf"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.{re.escape(infix)}instructure\.com", host) is not None


def serves_configuration(url: str, issuer: str) -> bool:
    """Whether `url` (where the OpenID configuration was fetched) is Instructure's own for this shared issuer."""
    host = _https_default_port(url)
    return bool(host) and _instructure_host(host, SHARED_ISSUERS[issuer.rstrip("/")])


def may_name(url: str, issuer: str) -> bool:
    """Whether a shared-issuer configuration may name this endpoint: Canvas cloud's SSO host or its own hosts."""
    host = _https_default_port(url)
    infix = SHARED_ISSUERS[issuer.rstrip("/")]
    return bool(host) and (host == f"sso.{infix}canvaslms.com" or _instructure_host(host, infix))
