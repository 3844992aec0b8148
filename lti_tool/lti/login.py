"""OIDC third-party initiated login: check the platform, remember state and nonce server-side, redirect."""
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlparse

import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.tool_config import PlatformRecord, find_deployment, find_platform, refuse_if_disabled
from lti_tool.models import LoginState, Platform
from lti_tool.models.base import rowcount, utcnow

#: How long a login may take between the tool's redirect and the platform's launch POST.
LOGIN_TTL = timedelta(minutes=10)
#: Login records are kept a while after use so a replay is told "already used", then purged.
LOGIN_RECORD_RETENTION = timedelta(days=1)
#: Only the parameters LTI defines are remembered (to restart the login in a new window).
LOGIN_PARAMS = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id")
STATE_COOKIE_PREFIX = "lti_state_"
#: At most this many login parameters are carried into a new window (the platform's own, untouched).
MAX_CARRIED_PARAMS = 20


@dataclass(frozen=True)
class LoginRedirect:
    """Where to send the browser, and what to remember in it."""

    url: str
    state: str
    nonce: str
    storage_target: str | None
    #: The origin of the platform's authorization endpoint: its postMessage storage answers from there.
    platform_origin: str
    #: Every parameter of the platform's login request, untouched, to start it again in a new window.
    carried_params: dict


_INSERT_LOGIN = sa.insert(LoginState)


def _param(params, name: str, max_len: int = 2048) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_len:
        raise LaunchError("bad_login", f"The login parameter '{name}' is longer than {max_len} characters.")
    return value


def begin_login(params, launch_url: str, public_base_url: str) -> LoginRedirect:
    """Validate a login initiation request and record its state and nonce for the launch to consume."""
    issuer = _param(params, "iss")
    login_hint = _param(params, "login_hint")
    target_link_uri = _param(params, "target_link_uri")
    client_id = _param(params, "client_id", 255)
    deployment_id = _param(params, "lti_deployment_id", 255)
    if not issuer:
        raise LaunchError("bad_login", "The login request has no 'iss' (issuer). The platform must start the "
                          "launch at this URL with iss, login_hint and target_link_uri.")
    if not login_hint:
        raise LaunchError("bad_login", "The login request has no 'login_hint'. The platform must send it.",
                          platform=issuer)
    if not target_link_uri:
        raise LaunchError("bad_login", "The login request has no 'target_link_uri'.", platform=issuer)
    if urlparse(target_link_uri).netloc != urlparse(public_base_url).netloc:
        raise LaunchError("bad_login", f"The target_link_uri {target_link_uri} is not an address of this tool "
                          f"({public_base_url}). Check the target link URI in the platform's settings.",
                          platform=issuer)

    platform = find_platform(issuer, client_id)
    if platform is None:
        raise LaunchError("unknown_platform", _unknown_platform_message(issuer, client_id), platform=issuer)
    refuse_if_disabled(platform)
    if deployment_id and find_deployment(platform, deployment_id) is None and not platform.accept_new_deployments:
        raise LaunchError("unknown_deployment", unknown_deployment_message(platform, deployment_id),
                          platform=issuer)

    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    storage_target = _param(params, "lti_storage_target", 100)
    # One INSERT, not the ORM's unit of work: every launch begins here.
    db.session.connection().execute(_INSERT_LOGIN, {
        "state": state, "nonce": nonce, "platform_id": platform.id, "storage_target": storage_target,
        "login_params": {k: params.get(k) for k in LOGIN_PARAMS if params.get(k)}, "created_at": utcnow()})
    auth_params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": launch_url,
        "state": state,
        "nonce": nonce,
        "login_hint": login_hint,
    }
    if params.get("lti_message_hint"):
        auth_params["lti_message_hint"] = params.get("lti_message_hint")
    separator = "&" if "?" in platform.auth_login_url else "?"
    auth = urlparse(platform.auth_login_url)
    return LoginRedirect(url=platform.auth_login_url + separator + urlencode(auth_params), state=state,
                         nonce=nonce, storage_target=storage_target, platform_origin=f"{auth.scheme}://{auth.netloc}",
                         carried_params=_carried_params(params))


def _carried_params(params) -> dict:
    """Return the platform's login parameters as it sent them (bounded), to replay while its hint is unused."""
    carried = {}
    for name in list(params.keys())[:MAX_CARRIED_PARAMS]:
        value = params.get(name)
        if isinstance(value, str) and len(name) <= 100 and len(value) <= 2048:
            carried[name] = value
    return carried


def _keyed_digest(purpose: str, state: str) -> str:
    secret = current_app.secret_key
    if not secret:
        raise RuntimeError("SECRET_KEY must be set: the login's cookies are keyed with it.")
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{purpose}\0{state}".encode(), hashlib.sha256).hexdigest()


def browser_binding(state: str) -> str:
    """Return the state cookie's value: only the tool can make it, so a browser cannot claim a state it was not
    given (a captured id_token and state are useless without it)."""
    return _keyed_digest("state-cookie", state)


def storage_proof(state: str) -> str:
    """Return the value the tool keeps in the platform's postMessage storage at login: only a page that can read
    that storage in the user's own browser gets it back at launch."""
    return _keyed_digest("platform-storage", state)


def holds(value: str | None, expected: str) -> bool:
    """Compare a secret from the browser with the expected one in constant time."""
    return isinstance(value, str) and hmac.compare_digest(value.encode(), expected.encode())


def _unknown_platform_message(issuer: str, client_id: str | None) -> str:
    if client_id:
        return (f"No platform is registered for issuer {issuer} with client id {client_id}: add it with "
                "`flask --app lti_tool platform add` or LTI Dynamic Registration.")
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Platform).where(Platform.issuer == issuer))
    if count:
        return (f"Several registrations share issuer {issuer} and the login request did not say which client id "
                "it is for. Ask the platform to send client_id, or remove the registrations not in use.")
    return (f"No platform is registered for issuer {issuer}: add it with `flask --app lti_tool platform add` "
            "or LTI Dynamic Registration.")


def unknown_deployment_message(platform: PlatformRecord, deployment_id: str) -> str:
    """Explain an unknown deployment id and how to add it."""
    return (f"Deployment {deployment_id} is not registered for {platform.name} (issuer {platform.issuer}, "
            f"client id {platform.client_id}): add it with `flask --app lti_tool deployment add --issuer "
            f"{platform.issuer} --client-id {platform.client_id} --deployment-id {deployment_id}`.")


def purge_login_states() -> int:
    """Delete login records past their retention; return how many went."""
    cutoff = utcnow() - LOGIN_RECORD_RETENTION
    result = db.session.execute(sa.delete(LoginState).where(LoginState.created_at < cutoff))
    return rowcount(result) or 0
