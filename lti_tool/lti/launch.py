"""The launch: every check of the 1EdTech security framework, then the records a launch keeps.

pylti1p3's MessageLaunch drives the validation; the checks it lacks or gets wrong are overridden here:
nonces used once (atomically), `aud`/`azp`, clock leeway, RS256 only, key sets cached and refetched for an
unknown `kid`, state and launch data kept server-side.
"""
import binascii
import json
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, cast
from urllib.parse import urlparse

import jwt
import requests
import sqlalchemy as sa
from flask import current_app, g, has_request_context, url_for
from jwt.utils import base64url_decode
from pylti1p3.contrib.flask import FlaskCookieService, FlaskRequest
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch, TJwtData
from pylti1p3.session import SessionService

from lti_tool.extensions import db
from lti_tool.lti.claims import LTI_VERSION, Claim, MessageType, ToolRole, tool_role
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.login import (
    LOGIN_TTL,
    STATE_COOKIE_PREFIX,
    browser_binding,
    holds,
    storage_proof,
    unknown_deployment_message,
)
from lti_tool.lti.platform_keys import public_key_for
from lti_tool.lti.tool_config import (
    DatabaseToolConf,
    DeploymentRecord,
    PlatformRecord,
    ToolRegistration,
    find_deployment,
    find_platform,
    read_version_with,
    refuse_if_disabled,
    version_column,
)
from lti_tool.models import Launch, LoginState
from lti_tool.models.base import rowcount, utcnow
from lti_tool.text import clean_json, clean_line, has_control_characters

log = logging.getLogger(__name__)

MAX_ID_TOKEN_LENGTH = 64 * 1024
SUPPORTED_MESSAGES = {MessageType.RESOURCE_LINK, MessageType.DEEP_LINKING}


class _StoredLaunches(SessionService):
    """pylti1p3's session service, reading launch data from the launches table instead of the cookie."""

    def __init__(self):  # no cookie-backed storage at all
        pass

    def get_launch_data(self, key):
        launch = db.session.get(Launch, key)
        return launch.claims if launch else None


#: pylti1p3 builds a requests.Session per launch for key-set fetches and service calls; the tool makes both through
#: lti/http.py (its outbound rules and limits), so this one idle session stands in for it in every launch.
_UNUSED_HTTP_SESSION = requests.Session()


@dataclass
class PendingStorageCheck:
    """The browser lost the state cookie but the platform offered postMessage storage: check there.

    The page reads back, from the platform's storage in this browser, the proof the login stored there; the
    proof itself is never in this page.
    """

    state: str
    id_token: str
    storage_target: str
    platform_origin: str


@dataclass
class PendingResubmit:
    """The launch POST came from the platform's site without the state cookie, which a browser holds back on a
    cross-site POST (SameSite=Lax over http) or until the tool's page asks for storage access: post it again
    from the tool's own page, where the browser sends it. Nothing has been consumed."""

    state: str
    id_token: str


class ToolMessageLaunch(MessageLaunch):
    """A launch validated against the database's registrations, with the checks pylti1p3 leaves out."""

    def __init__(self, request: FlaskRequest, cookies):
        super().__init__(request, DatabaseToolConf(), session_service=_StoredLaunches(),
                         cookie_service=FlaskCookieService(request), requests_session=_UNUSED_HTTP_SESSION)
        self._request_cookies = cookies
        self.platform: PlatformRecord | None = None
        #: The login's row as read (its columns, not an ORM object: the launch only reads it, then consumes it
        #: with one UPDATE).
        self.login: sa.Row | None = None
        self.deployment: DeploymentRecord | None = None
        #: The launch POST came from the platform's site without the cookie: the tool may post it once more itself.
        self.may_resubmit = False

    def _get_request_param(self, key):
        return self._request.get_param(key)

    # -- the order matters: nothing is consumed or written until the token itself is proven good, and nothing
    # that can wait (a key-set fetch) runs before the launch is shown to belong to a live login of this platform --
    def validate(self):
        """Run every check, consume the state and nonce last; return self."""
        self._validated = True
        try:
            self.validate_jwt_format()
            self.validate_registration()
            self.validate_state()
            self.validate_state_cookie()
            self.validate_nonce()
            self.validate_jwt_signature()
            self.validate_deployment()
            self.validate_message()
            self._jwt["body"] = clean_json(self._jwt["body"])
        except LtiException as exc:  # a pylti1p3 check we did not replace
            self._validated = False
            raise LaunchError("invalid_launch", f"The launch is not valid: {exc}.",
                              platform=self._issuer_for_logs()) from exc
        except Exception:
            self._validated = False
            raise
        return self

    def _issuer_for_logs(self) -> str | None:
        body = self._jwt.get("body") or {}
        return body.get("iss") if isinstance(body.get("iss"), str) else None

    def _client_id_for_logs(self) -> str | None:
        body = (self._jwt or {}).get("body")
        return next(iter(self._client_id_candidates()), None) if isinstance(body, dict) else None

    def _fail(self, reason: str, message: str, status: int = 400) -> NoReturn:
        client_id = self.platform.client_id if self.platform else self._client_id_for_logs()
        raise LaunchError(reason, message, status=status, platform=self._issuer_for_logs(), client_id=client_id)

    def validate_jwt_format(self):
        id_token = self._request.get_param("id_token")
        if not id_token:
            error = self._request.get_param("error")
            if error:  # the platform refused the login and said why (OIDC error response)
                description = self._request.get_param("error_description") or ""
                self._fail("platform_error", f"The platform refused the launch: {error} {description}".strip())
            self._fail("no_id_token", "The launch request has no id_token. Launches must come from the platform "
                       "after the login at /lti/login.")
        if len(id_token) > MAX_ID_TOKEN_LENGTH:
            self._fail("bad_token", "The id_token is far larger than any launch token; it was refused.")
        header, body = _unverified_parts(id_token)
        if header is None or body is None:
            self._fail("bad_token", "The id_token is not a valid JWT (it must be three base64url parts of JSON).")
        if not isinstance(body, dict) or not isinstance(header, dict):
            self._fail("bad_token", "The id_token is not a valid JWT.")
        self._jwt = cast(TJwtData, {"header": header, "body": body})  # checked claim by claim below
        alg = header.get("alg")
        if alg != "RS256":
            self._fail("bad_alg", f"The id_token is signed with {_shown(alg)}; LTI 1.3 accepts only RS256.", 401)
        kid = header.get("kid")
        if kid is None or kid == "":
            self._fail("no_kid", "The id_token's header has no 'kid', so the platform key cannot be chosen.", 401)
        if not isinstance(kid, str) or len(kid) > 255 or has_control_characters(kid):
            self._fail("bad_kid", f"The id_token's header 'kid' must be a short string naming one of the platform's "
                       f"keys; it is {_json_type(kid)}.", 401)
        self._check_claim_types(body)
        return self

    def _check_claim_types(self, body: dict) -> None:
        """Refuse claims of the wrong JSON type (before anything trusts them): `"exp": "1700000000"` is not a time."""
        for name, expected in CLAIM_TYPES.items():
            if name in body and not _is_type(body[name], expected, optional=name in OPTIONAL_CLAIMS):
                self._fail("bad_claim_type", f"The id_token's '{_claim_name(name)}' claim must be "
                           f"{_TYPE_WORDS[expected]}; it is {_json_type(body[name])}. The platform sent a malformed "
                           "launch: tell its administrators.")
        for name, members in CLAIM_MEMBERS.items():
            value = body.get(name)
            if not isinstance(value, dict):
                continue
            for member, expected in members.items():
                if member in value and not _is_type(value[member], expected, optional=member not in ("id",)):
                    self._fail("bad_claim_type", f"The id_token's '{_claim_name(name)}' claim has '{member}' of "
                               f"the wrong type: it must be {_TYPE_WORDS[expected]}; it is "
                               f"{_json_type(value[member])}. The platform sent a malformed launch: tell its "
                               "administrators.")
        aud = body.get("aud")
        if isinstance(aud, list) and not all(isinstance(a, str) for a in aud):
            self._fail("bad_claim_type", "The id_token's 'aud' claim must be a string or a list of strings.")
        roles = body.get(Claim.ROLES)
        if isinstance(roles, list) and not all(isinstance(r, str) for r in roles):
            self._fail("bad_claim_type", "The id_token's roles claim must be a list of role URIs (strings).")
        for name in IDENTIFIER_CLAIMS:
            self._check_identifier(_claim_name(name), body.get(name))
        for name, member in IDENTIFIER_MEMBERS:
            value = body.get(name)
            if isinstance(value, dict):
                self._check_identifier(f"{_claim_name(name)}.{member}", value.get(member))
        for client_id in (aud if isinstance(aud, list) else [aud]):
            self._check_identifier("aud", client_id)

    def _check_identifier(self, name: str, value) -> None:
        if isinstance(value, str) and (len(value) > 255 or has_control_characters(value)):
            why = "is longer than 255 characters" if len(value) > 255 else "contains control characters (such as NUL)"
            self._fail("bad_identifier", f"The id_token's '{name}' {why}, so the tool cannot use it as an "
                       "identifier. The platform sent a malformed launch: tell its administrators.")

    def _client_id_candidates(self) -> list[str]:
        body = self._jwt["body"]
        aud = body.get("aud")
        auds = ([aud] if isinstance(aud, str)
                else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else [])
        azp = body.get("azp")
        return [azp] if isinstance(azp, str) else auds

    def get_client_id(self):
        return self.platform.client_id if self.platform else super().get_client_id()

    def _read_login_and_version(self) -> None:
        """Read the login named by the state, with the registration version, in one statement (the launch's first).

        Only read here: the checks stay in validate_state(), after the registration is found. A state no login
        could have (empty, too long, unprintable) reads nothing and leaves `login` None.
        """
        state = self._request.get_param("state")
        if not state or len(state) > 64 or not state.isprintable():
            return
        row = db.session.connection().execute(_LOGIN_AND_VERSION, {"state": state}).first()
        self.login = row if row is not None and row.state is not None else None
        read_version_with(row.registration_version if row is not None else None)

    def validate_registration(self):
        body = self._jwt["body"]
        self._read_login_and_version()
        issuer = body.get("iss")
        if not isinstance(issuer, str) or not issuer:
            self._fail("no_iss", "The id_token has no 'iss' (issuer).")
        candidates = self._client_id_candidates()
        if not candidates:
            self._fail("no_aud", "The id_token has no 'aud' (audience): it must contain the tool's client id.")
        for client_id in candidates:
            self.platform = find_platform(issuer, client_id)
            if self.platform:
                break
        if self.platform is None:
            self._fail("unknown_platform",
                       f"No platform is registered for issuer {issuer} with client id {', '.join(candidates)}: "
                       "add it with `flask --app lti_tool platform add` or LTI Dynamic Registration.")
        refuse_if_disabled(self.platform)
        self._registration = ToolRegistration(self.platform)
        aud = body.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []  # `azp` with no `aud`
        azp = body.get("azp")
        if self.platform.client_id not in auds:
            self._fail("bad_aud", f"The id_token's audience ({aud}) does not contain the client id "
                       f"{self.platform.client_id}.", 401)
        if (azp is not None or len(auds) > 1) and azp != self.platform.client_id:
            self._fail("bad_azp", f"The id_token's azp ({azp}) is not the tool's client id "
                       f"{self.platform.client_id}.", 401)
        return self

    def validate_jwt_signature(self):
        if self.platform is None:
            raise RuntimeError("validate_registration() finds the platform before the signature is checked")
        key = public_key_for(self.platform, self._jwt["header"]["kid"])
        leeway = current_app.config["LTI_CLOCK_LEEWAY"]
        try:
            jwt.decode(self._request.get_param("id_token"), key, algorithms=["RS256"],
                       audience=self.platform.client_id, issuer=self.platform.issuer, leeway=leeway,
                       options={"require": ["exp", "iat", "iss", "aud", "nonce"]})
        except jwt.ExpiredSignatureError:
            expired = _when(self._jwt["body"].get("exp"))
            self._fail("expired", f"The launch token expired at {expired} (tool time {_when(None)}, with "
                       f"{leeway} s of leeway). Relaunch from the course; if this keeps happening, check the "
                       "clocks of the platform and of the tool's server.", 401)
        except jwt.ImmatureSignatureError:
            issued = _when(self._jwt["body"].get("iat"))
            self._fail("issued_in_future", f"The launch token was issued at {issued}, later than the tool's "
                       f"time {_when(None)} by more than {leeway} s: the platform's clock is ahead. "
                       "Fix the clock, or raise LTI_CLOCK_LEEWAY.", 401)
        except jwt.MissingRequiredClaimError as exc:
            self._fail("missing_claim", f"The id_token has no '{exc.claim}' claim.", 401)
        except jwt.InvalidSignatureError:
            self._fail("bad_signature", f"The id_token's signature does not match key "
                       f"'{self._jwt['header']['kid']}' of {self.platform.name}: it was not signed by the "
                       "platform, or it was altered.", 401)
        except jwt.InvalidTokenError as exc:
            self._fail("invalid_token", f"The id_token was refused: {exc}.", 401)
        return self

    def validate_deployment(self):
        if self.platform is None:
            raise RuntimeError("validate_registration() finds the platform before the deployment is checked")
        deployment_id = self._jwt["body"].get(Claim.DEPLOYMENT_ID)
        if not isinstance(deployment_id, str) or not deployment_id:
            self._fail("no_deployment", "The id_token has no deployment_id claim.")
        if len(deployment_id) > 255:
            self._fail("no_deployment", "The deployment_id is longer than 255 characters.")
        #: The deployment row (None for a first launch from a new deployment the platform may add).
        self.deployment = find_deployment(self.platform, deployment_id)
        if self.deployment is None and not self.platform.accept_new_deployments:
            self._fail("unknown_deployment", unknown_deployment_message(self.platform, deployment_id), 403)
        return self

    def validate_message(self):
        body = self._jwt["body"]
        message_type = body.get(Claim.MESSAGE_TYPE)
        if message_type not in SUPPORTED_MESSAGES:
            self._fail("bad_message_type", f"The message type '{message_type}' is not one this tool handles "
                       f"({', '.join(sorted(SUPPORTED_MESSAGES))}).")
        if body.get(Claim.VERSION) != LTI_VERSION:
            self._fail("bad_version", f"The LTI version is '{body.get(Claim.VERSION)}'; this tool speaks 1.3.0.")
        sub = body.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            self._fail("no_sub", "The id_token has no 'sub': this tool needs to know the user (anonymous "
                       "launches are not supported).")
        roles = body.get(Claim.ROLES)
        if not isinstance(roles, list):
            self._fail("no_roles", "The id_token has no roles claim.")
        if message_type == MessageType.RESOURCE_LINK:
            link = body.get(Claim.RESOURCE_LINK)
            if not isinstance(link, dict) or not isinstance(link.get("id"), str) or not link.get("id"):
                self._fail("no_resource_link", "The resource link launch has no resource_link id.")
        else:
            settings = body.get(Claim.DEEP_LINKING_SETTINGS)
            if not isinstance(settings, dict) or not isinstance(settings.get("deep_link_return_url"), str):
                self._fail("bad_deep_linking", "The deep linking request has no deep_link_return_url.")
        context = body.get(Claim.CONTEXT)
        if context is not None and (not isinstance(context, dict) or not isinstance(context.get("id"), str)):
            self._fail("bad_context", "The context claim has no id.")
        return self

    def validate_state(self):
        if self.platform is None:
            raise RuntimeError("validate_registration() finds the platform before the state is checked")
        state = self._request.get_param("state")
        if not state:
            self._fail("no_state", "The launch arrived without its OIDC state: launches must start at the tool's "
                       "login URL (/lti/login). Check the OpenID Connect login URL in the platform.")
        # self.login was read with the registration version, before the platform was found
        if self.login is None or self.login.platform_id != self.platform.id:
            self._fail("unknown_state", "This launch was not started by this tool's login, or it is too old. "
                       "Relaunch the tool from the course.", 401)
        if self.login.used_at is not None:
            self._fail("replayed", "This launch link was already used. Each launch works once: relaunch the tool "
                       "from the course.", 401)
        if utcnow() - self.login.created_at > LOGIN_TTL:
            self._fail("login_expired", "The login for this launch started more than "
                       f"{int(LOGIN_TTL.total_seconds() // 60)} minutes ago. Relaunch the tool from the course.", 401)
        return self

    def validate_state_cookie(self):
        """Refuse a launch from a browser without the login's cookie (before the signature, so before any key-set
        fetch), unless the platform's storage can vouch or the tool may post it again from its own page."""
        if self.login is None:
            raise RuntimeError("validate_state() finds the login before the state cookie is checked")
        if self.browser_holds_state() or self.login.storage_target or self.may_resubmit:
            return self
        raise _no_state_cookie(self)

    def validate_nonce(self):
        if self.login is None:
            raise RuntimeError("validate_state() finds the login before the nonce is checked")
        # Before the signature: a launch with another login's nonce is refused without fetching any key.
        nonce = self._jwt["body"].get("nonce")
        if nonce is None:
            self._fail("missing_claim", "The id_token has no 'nonce' claim.", 401)
        if not isinstance(nonce, str) or nonce != self.login.nonce:
            self._fail("bad_nonce", "The id_token's nonce is not the one this tool issued for this login.", 401)
        return self

    def browser_holds_state(self) -> bool:
        """Whether this browser is the one that began the login (it holds the state cookie the tool made)."""
        if self.login is None:
            raise RuntimeError("the launch is validated (its login found) before the state cookie is read")
        return holds(self._request_cookies.get(STATE_COOKIE_PREFIX + self.login.state),
                     browser_binding(self.login.state))

    def platform_origin(self) -> str:
        """Return the origin of the platform's authorization endpoint (where its postMessage storage answers)."""
        if self.platform is None:
            raise RuntimeError("the launch is validated (its platform found) before its origin is read")
        parts = urlparse(self.platform.auth_login_url)
        return f"{parts.scheme}://{parts.netloc}"

    def from_moodle(self) -> bool:
        """Whether the platform says it is Moodle (which spends its login hint on first use)."""
        platform = self._jwt["body"].get(Claim.TOOL_PLATFORM)
        return isinstance(platform, dict) and platform.get("product_family_code") == "moodle"

    def consume_login(self) -> None:
        """Mark the state and nonce used, atomically: a second use of this id_token is refused."""
        if self.login is None:
            raise RuntimeError("the launch is validated (its login found) before its login is consumed")
        result = db.session.connection().execute(_CONSUME_LOGIN, {"b_state": self.login.state, "now": utcnow()})
        if result.rowcount != 1:
            self._fail("replayed", "This launch link was already used. Each launch works once: relaunch the tool "
                       "from the course.", 401)

    @property
    def claims(self) -> dict:
        """Return the validated claims."""
        return cast(dict, self._jwt["body"])  # pylti1p3 types it as its TypedDict; it is the plain JSON object


# Built once, run on the session's connection: the launch's hot statements need no ORM.
# The login named by the state, with the registration version (which finding the platform needs next): one round
# trip for both. The version comes back even when no login has this state.
_LOGIN_AND_VERSION = (sa.select(version_column(), *LoginState.__table__.c)
                      .select_from(sa.select(sa.literal(1).label("one")).subquery("one_row"))
                      .outerjoin(LoginState.__table__, LoginState.state == sa.bindparam("state")))
_CONSUME_LOGIN = (sa.update(LoginState)
                  .where(LoginState.state == sa.bindparam("b_state"), LoginState.used_at.is_(None))
                  .values(used_at=sa.bindparam("now")))

NUMBER, STRING, LIST, OBJECT = "number", "string", "list", "object"
#: The claims the tool reads, and their JSON types. Missing ones are checked where they are required.
CLAIM_TYPES = {
    "iss": STRING, "aud": (STRING, LIST), "azp": STRING, "sub": STRING, "nonce": STRING,
    "exp": NUMBER, "iat": NUMBER, "nbf": NUMBER,
    "name": STRING, "given_name": STRING, "family_name": STRING, "email": STRING,
    Claim.DEPLOYMENT_ID: STRING, Claim.MESSAGE_TYPE: STRING, Claim.VERSION: STRING, Claim.TARGET_LINK_URI: STRING,
    Claim.ROLES: LIST, Claim.CONTEXT: OBJECT, Claim.RESOURCE_LINK: OBJECT, Claim.CUSTOM: OBJECT,
    Claim.DEEP_LINKING_SETTINGS: OBJECT, Claim.AGS_ENDPOINT: OBJECT, Claim.NRPS: OBJECT,
    Claim.TOOL_PLATFORM: OBJECT, Claim.LAUNCH_PRESENTATION: OBJECT,
}
#: Claims a platform may send as null, meaning "not given" (names and email under a privacy setting).
OPTIONAL_CLAIMS = {"name", "given_name", "family_name", "email", Claim.CUSTOM, Claim.LAUNCH_PRESENTATION,
                   Claim.TOOL_PLATFORM}
#: Members of object claims the tool reads (null allowed except for an `id`).
CLAIM_MEMBERS = {
    Claim.CONTEXT: {"id": STRING, "title": STRING, "label": STRING},
    Claim.RESOURCE_LINK: {"id": STRING, "title": STRING},
    Claim.DEEP_LINKING_SETTINGS: {"deep_link_return_url": STRING, "accept_types": LIST},
    Claim.AGS_ENDPOINT: {"lineitem": STRING, "lineitems": STRING, "scope": LIST},
    Claim.NRPS: {"context_memberships_url": STRING},
}
#: Identifiers: stored and matched as given, so a control character refuses the launch instead of being dropped.
IDENTIFIER_CLAIMS = ("iss", "azp", "sub", "nonce", Claim.DEPLOYMENT_ID)
IDENTIFIER_MEMBERS = ((Claim.CONTEXT, "id"), (Claim.RESOURCE_LINK, "id"))

_TYPE_WORDS = {NUMBER: "a number (seconds since 1970)", STRING: "a string", LIST: "a list", OBJECT: "a JSON object",
               (STRING, LIST): "a string or a list of strings"}


def _is_type(value, expected, optional: bool = False) -> bool:
    if value is None:
        return optional
    if isinstance(expected, tuple):
        return any(_is_type(value, e) for e in expected)
    if expected == NUMBER:  # JSON has no NaN or Infinity, but Python's parser takes them
        return isinstance(value, int | float) and not isinstance(value, bool) and (
            isinstance(value, int) or math.isfinite(value))
    return isinstance(value, {STRING: str, LIST: list, OBJECT: dict}[expected])


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a JSON object"


def _claim_name(name: str) -> str:
    # The short name an admin recognises: ".../claim/deployment_id" -> "deployment_id".
    return name.rsplit("/", 1)[-1]


def _shown(value) -> str:
    """Quote a value from the token for a message: short and printable."""
    text = value if isinstance(value, str) else json.dumps(value)[:40]
    return "'" + clean_line(text)[:40] + "'"


def _unverified_parts(id_token: str) -> tuple[dict | None, dict | None]:
    """Read the header and claims of a JWT without checking it (to choose the registration and key)."""
    # Once per request: counting refused launches per platform reads the same token before the launch does.
    if has_request_context():
        read = g.get("_unverified_token")
        if read is not None and read[0] == id_token:
            return read[1]
        g._unverified_token = (id_token, parts := _read_unverified(id_token))
        return parts
    return _read_unverified(id_token)


def _read_unverified(id_token: str) -> tuple[dict | None, dict | None]:
    # Read by hand: PyJWT refuses some malformed headers (a numeric `kid`) with errors that name nothing useful.
    parts = id_token.split(".")
    if len(parts) != 3:
        return None, None
    try:
        header, body = (json.loads(base64url_decode(part.encode("ascii"))) for part in parts[:2])
    except (ValueError, TypeError, RecursionError, binascii.Error):
        return None, None
    if not isinstance(header, dict) or not isinstance(body, dict):
        return None, None
    return header, body


def unverified_registration(id_token: str | None) -> tuple[str, str] | None:
    """Return the (issuer, client id) a token claims, unchecked (for counting refused launches per platform only)."""
    if not id_token or len(id_token) > MAX_ID_TOKEN_LENGTH:
        return None
    _, body = _unverified_parts(id_token)
    if not body or not isinstance(body.get("iss"), str):
        return None
    aud, azp = body.get("aud"), body.get("azp")
    client_id = azp if isinstance(azp, str) else aud if isinstance(aud, str) else (
        aud[0] if isinstance(aud, list) and aud and isinstance(aud[0], str) else None)
    return (body["iss"], client_id) if client_id else None


def _when(timestamp) -> str:
    if timestamp is None:
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError):
        return repr(timestamp)


def validate_launch(cookies, storage_proof_given: str | None = None, may_resubmit: bool = False
                    ) -> ToolMessageLaunch | PendingStorageCheck | PendingResubmit:
    """Validate the launch in the current request.

    Returns the validated launch with its login consumed; or, when the browser did not send the state cookie,
    a PendingResubmit (post again from the tool's own page, when `may_resubmit`) or a PendingStorageCheck (the
    platform's postMessage storage must give back the login's proof). Only the browser that began the login
    gets past either: it holds the cookie, or its platform storage holds the proof.
    """
    launch = ToolMessageLaunch(FlaskRequest(), cookies)
    launch.may_resubmit = may_resubmit
    launch.validate()
    if launch.login is None or launch.platform is None:
        raise RuntimeError("a validated launch has its platform and login")
    if not launch.browser_holds_state():
        id_token = launch._request.get_param("id_token")
        if may_resubmit:
            return PendingResubmit(state=launch.login.state, id_token=id_token)
        if launch.login.storage_target:
            if storage_proof_given is None:
                return PendingStorageCheck(state=launch.login.state, id_token=id_token,
                                           storage_target=launch.login.storage_target,
                                           platform_origin=launch.platform_origin())
            if not holds(storage_proof_given, storage_proof(launch.login.state)):
                launch._fail("storage_unconfirmed", "The course did not confirm that this launch began in this "
                             "browser, so the tool refused it. Open the tool again from your course.", 401)
        else:
            raise _no_state_cookie(launch)
    launch.consume_login()
    return launch


def _no_state_cookie(launch: ToolMessageLaunch) -> LaunchError:
    if launch.platform is None or launch.login is None:
        raise RuntimeError("a validated launch has its platform and login")
    message = ("Your browser did not send this tool's cookie back with the launch (it blocks third-party "
               "cookies inside the course page, or the tool is served over plain http on another site), so the "
               "launch could not be tied to you.")
    if launch.from_moodle():
        # Moodle spends its login hint on first use: replaying this login would only get "Invalid request".
        return LaunchError("no_state_cookie", message + " Open the tool again from your course. If this keeps "
                           "happening, ask the site's administrator to serve the tool over https or to set the "
                           "tool's launch container to \"New window\" in Moodle.",
                           status=401, platform=launch.platform.issuer)
    return LaunchError("no_state_cookie", message + " Open the tool in a new window to continue.",
                       status=401, platform=launch.platform.issuer, retry_url=_new_window_login_url(launch.login))


def _new_window_login_url(login: sa.Row) -> str:
    return url_for("lti.login", **(login.login_params or {}))


def claim_handoff(launch_id: str) -> None:
    """Use a launch's new-window hand-off, once: a second use of the link is refused."""
    used = db.session.execute(sa.update(Launch).where(Launch.id == launch_id, Launch.handoff_used_at.is_(None))
                              .values(handoff_used_at=utcnow()).execution_options(synchronize_session=False))
    if rowcount(used) != 1:
        raise LaunchError("handoff_used", "This link to open the tool was already used. Open the tool again from "
                          "your course.", status=401)


def new_launch_id() -> str:
    """Return a fresh launch id."""
    return str(uuid.uuid4())


def role_for(claims: dict) -> ToolRole:
    """Return the tool role the launch's LTI roles grant, or refuse the launch."""
    role = tool_role(claims.get(Claim.ROLES) or [])
    if role is None:
        roles = ", ".join(str(r) for r in (claims.get(Claim.ROLES) or [])) or "none"
        raise LaunchError("no_role", f"The platform sent no role this tool recognises (roles: {roles}). Members "
                          "need a Learner role and instructors an Instructor role in the course.", status=403,
                          platform=claims.get("iss"))
    return role


def dump_claims(claims: dict) -> dict:
    """Return the claims as plain JSON (what the launches table stores)."""
    return json.loads(json.dumps(claims))
