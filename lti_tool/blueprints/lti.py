"""LTI endpoints: OIDC login, launch, the tool's JWKS, Canvas JSON configuration and Dynamic Registration."""
import functools
import hashlib
import hmac
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, url_for
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from limits import RateLimitItem
from limits import parse as parse_limit
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from lti_tool.auth import remember_launch
from lti_tool.extensions import csrf, db, limiter
from lti_tool.lti import keys, platform_origins
from lti_tool.lti.claims import MessageType
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.launch import (
    PendingResubmit,
    PendingStorageCheck,
    claim_handoff,
    unverified_registration,
    validate_launch,
)
from lti_tool.lti.login import (
    LOGIN_TTL,
    STATE_COOKIE_PREFIX,
    begin_login,
    browser_binding,
    holds,
    storage_proof,
)
from lti_tool.lti.registration import canvas_configuration, describe_scopes, tool_registration_request, tool_urls
from lti_tool.lti.sync import record_launch
from lti_tool.models import Launch
from lti_tool.services import invitations, platforms

bp = Blueprint("lti", __name__)

HANDOFF_MAX_AGE = 120


def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


def _cookie_options() -> dict:
    config = current_app.config
    return {"secure": config["SESSION_COOKIE_SECURE"], "httponly": True,
            "samesite": config["SESSION_COOKIE_SAMESITE"], "partitioned": config["SESSION_COOKIE_PARTITIONED"]}


def _framed_by_another_site() -> bool:
    """Whether the browser says (Fetch Metadata) that this page loads in a frame of another site's page.

    There the tool's cookie may not be kept (third-party cookies blocked, or plain http), and a platform like
    Moodle spends its login hint on first use: so the tool checks before it sends the browser to the platform.
    """
    return (request.headers.get("Sec-Fetch-Dest") in ("iframe", "frame", "embed", "object")
            and request.headers.get("Sec-Fetch-Site") == "cross-site")


def _set_state_cookie(response, state: str) -> None:
    response.set_cookie(STATE_COOKIE_PREFIX + state, browser_binding(state), max_age=int(LOGIN_TTL.total_seconds()),
                        path="/lti/", **_cookie_options())


@bp.route("/lti/login", methods=["GET", "POST"])
@csrf.exempt
def login():
    """Answer the platform's OIDC login initiation with the redirect to its authorization endpoint.

    Where the tool's cookie may be lost (a frame on another site) or the platform offers postMessage storage, the
    answer is a page that first checks that this browser keeps the cookie here, and otherwise keeps the login's
    state with the platform, asks for storage access, or carries the untouched login into a new window, all
    before the platform's one-time hint is used.
    """
    params = request.form if request.method == "POST" else request.args
    login_redirect = begin_login(params, launch_url=tool_urls(_base_url())["launch"], public_base_url=_base_url())
    response: Response
    if login_redirect.storage_target or _framed_by_another_site():
        secure = current_app.config["SESSION_COOKIE_SECURE"]
        response = current_app.make_response(render_template(
            # Without Secure (an http:// address) the cookie is SameSite=Lax: no browser keeps it in another
            # site's frame, whatever its settings.
            "lti/login_check.html", login=login_redirect, secure=secure, plain_http=not secure,
            check_url=url_for("lti.login_cookie", state=login_redirect.state),
            binding=browser_binding(login_redirect.state),
            storage_proof=storage_proof(login_redirect.state) if login_redirect.storage_target else None,
            new_window_url=url_for("lti.login") + "?" + urlencode(login_redirect.carried_params)))
        response.headers["Cache-Control"] = "no-store"
    else:
        response = redirect(login_redirect.url, code=302)
    _set_state_cookie(response, login_redirect.state)
    return response


@bp.route("/lti/login/cookie/<state>", methods=["GET", "POST"])
@csrf.exempt  # sets only the cookie this login's own page proves it was given
@limiter.limit("600 per minute")  # cheap (no database), and a class behind one school address launches at once
def login_cookie(state: str):
    """Say whether this browser sent the login's state cookie back here; POST sets it again (after storage access)."""
    if len(state) > 64:
        return jsonify(kept=False), 400
    expected = browser_binding(state)
    response = jsonify(kept=holds(request.cookies.get(STATE_COOKIE_PREFIX + state), expected))
    if request.method == "POST":
        if not holds(request.form.get("binding"), expected):
            return jsonify(kept=False), 403
        _set_state_cookie(response, state)
    response.headers["Cache-Control"] = "no-store"
    return response


def _launch_registration() -> str:
    # Unverified, and only for counting: a forged token counts against the registration it names (issuer and client
    # id, since Canvas cloud's customers share one issuer), when there is one.
    named = unverified_registration(request.form.get("id_token"))
    if named is None or named not in platform_origins.registered().registrations:
        return "registration:none"
    return "registration:" + hashlib.sha256("\n".join(named).encode()).hexdigest()


_TOO_MANY_FROM_ADDRESS = ("Too many launches from your network were refused in the last minute, so the tool is "
                          "pausing launches from it. Wait a minute, then open the tool again from your course.")
_TOO_MANY_FOR_PLATFORM = ("Too many launches for your learning platform were refused in the last minute, so the tool "
                        "is pausing its launches. Wait a minute, then open the tool again from your course; if it "
                        "keeps happening, tell the platform's administrators.")


_REFUSED_LAUNCHES = "refused-launches"


@functools.lru_cache(maxsize=16)
def _parsed_limit(text: str) -> RateLimitItem:
    return parse_limit(text)


def _refusal_counters() -> list[tuple[RateLimitItem, str, str]]:
    """The counts of refused launches this launch falls under: its address's and its platform's (issuer and client
    id, read from the token unchecked: a forged token counts against the registration it names)."""
    config = current_app.config
    return [(_parsed_limit(config["RATELIMIT_REFUSED_LAUNCHES_PER_ADDRESS"]), "address:" + get_remote_address(),
             _TOO_MANY_FROM_ADDRESS),
            (_parsed_limit(config["RATELIMIT_REFUSED_LAUNCHES_PER_PLATFORM"]), _launch_registration(),
             _TOO_MANY_FOR_PLATFORM)]


def _refuse_if_too_many_refused() -> None:
    """Answer 429 while this address or platform is over its count of refused launches; remember the counts, so
    that a refusal of this launch is counted against both (`_count_refused_launch`)."""
    if not limiter.enabled:
        return
    counters = _refusal_counters()
    for limit, key, message in counters:
        if not limiter.limiter.test(limit, _REFUSED_LAUNCHES, key):
            raise TooManyRequests(description=message)
    g.refusal_counters = counters


@bp.after_request
def _count_refused_launch(response):
    # Whatever refused it (a LaunchError page, a 400 from a form, a 500), the refusal counts.
    counters = g.pop("refusal_counters", ())
    if response.status_code >= 400:
        for limit, key, _message in counters:
            limiter.limiter.hit(limit, _REFUSED_LAUNCHES, key)
    return response


@bp.post("/lti/launch")
@csrf.exempt
def launch():
    """Validate the platform's launch, record who and where, and send the user to their page."""
    # Refused launches only are counted (with the `limits` counters Flask-Limiter keeps, in its storage, so
    # several servers share them through Redis): a room of members behind one address launching at once must
    # never be slowed.
    _refuse_if_too_many_refused()
    # A POST straight from the platform's site may lack the cookie only because of SameSite rules or a storage
    # access grant not yet active: post it once more from the tool's own page before deciding.
    may_resubmit = (request.headers.get("Sec-Fetch-Site") == "cross-site"
                    and request.form.get("lti_resubmitted") != "1")
    result = validate_launch(request.cookies, storage_proof_given=request.form.get("lti_storage_proof"),
                             may_resubmit=may_resubmit)
    if isinstance(result, PendingResubmit):
        return render_template("lti/launch_resubmit.html", pending=result,
                               secure=current_app.config["SESSION_COOKIE_SECURE"])
    if isinstance(result, PendingStorageCheck):
        return render_template("lti/launch_storage_check.html", check=result)
    record = record_launch(result)
    g.launch = record  # for the request's log line (platform and role)
    if result.browser_holds_state():
        remember_launch(record)
        response = redirect(landing_url(record), code=303)
    else:
        # Verified through the platform's storage: this browser keeps no cookie in the iframe.
        handoff = _handoff_serializer().dumps(record.id)
        response = current_app.make_response(render_template(
            "lti/new_window.html", handoff_url=url_for("lti.resume", token=handoff, _external=False)))
    # the state the launch was just validated against (its login row is keyed by it)
    response.delete_cookie(STATE_COOKIE_PREFIX + request.form["state"], path="/lti/", **_cookie_options())
    return response


def landing_url(record: Launch) -> str:
    """Return where a launch lands: the deep-linking picker or the user's home in the course."""
    if record.message_type == MessageType.DEEP_LINKING:
        return url_for("deep_linking.picker", launch_id=record.id)
    return url_for("member.home", launch_id=record.id)


def _handoff_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="launch-handoff")


@bp.get("/lti/resume/<token>")
def resume(token: str):
    """Carry a launch verified inside the iframe into a new window, once, within two minutes."""
    try:
        launch_id = _handoff_serializer().loads(token, max_age=HANDOFF_MAX_AGE)
    except SignatureExpired as exc:
        raise LaunchError("handoff_expired", "This link to open the tool has expired. Open the tool again "
                          "from your course.", status=401) from exc
    except BadSignature as exc:
        raise LaunchError("handoff_invalid", "This link to open the tool is not valid.", status=401) from exc
    claim_handoff(launch_id)
    record = db.session.get_one(Launch, launch_id)
    remember_launch(record)
    return redirect(landing_url(record), code=303)


@bp.get("/.well-known/jwks.json")
def jwks():
    """Publish the tool's public keys: the active one and the previous one."""
    response = current_app.make_response(keys.public_jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/lti/config/canvas.json")
def canvas_config():
    """Serve the developer-key JSON that Canvas admins paste or point to."""
    return canvas_configuration(_base_url())


#: A registration form is good for as long as the LMS's registration token (Moodle and Canvas: one hour).
REGISTRATION_FORM_MAX_AGE = 3600
_MAX_PARAMETER = 4000


def _registration_parameters(values) -> dict:
    """Read the Dynamic Registration parameters (query string or form); refuse oversized or malformed ones."""
    params = {}
    for name in ("openid_configuration", "registration_token", "invitation"):
        value = values.get(name)
        if value is not None and (len(value) > _MAX_PARAMETER or not value.isprintable()):
            raise LaunchError("registration_parameters", f"The registration request's {name} is not valid. Start "
                              "the registration again from the LMS.")
        params[name] = value or None
    return params


def _form_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="dynamic-registration-form")


def _parameters_digest(params: dict) -> str:
    joined = "\n".join(params.get(name) or "" for name in ("openid_configuration", "registration_token", "invitation"))
    return hashlib.sha256(joined.encode()).hexdigest()


def _check_registration_post(params: dict) -> None:
    """CSRF protection that needs no cookie: LMS registration frames often lose the tool's cookies (Safari).

    The POST must come from the tool's own page (Origin, or Referer when a browser sends no Origin) and carry a
    form token the tool signed for exactly these registration parameters, within the hour.
    """
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    own = urlsplit(_base_url())
    theirs = urlsplit(source)
    if (theirs.scheme, theirs.netloc) != (own.scheme, own.netloc):
        raise LaunchError("registration_cross_site", "This registration was not submitted from the tool's own "
                          "page, so the tool refused it. Start the registration again from the LMS.", status=403)
    try:
        digest = _form_serializer().loads(request.form.get("form_token", ""), max_age=REGISTRATION_FORM_MAX_AGE)
    except SignatureExpired as exc:
        raise LaunchError("registration_form_expired", "This registration page is more than an hour old. Start "
                          "the registration again from the LMS.") from exc
    except BadSignature as exc:
        raise LaunchError("registration_form", "This registration form is not one the tool made. Start the "
                          "registration again from the LMS.") from exc
    if not hmac.compare_digest(str(digest), _parameters_digest(params)):
        raise LaunchError("registration_form", "This registration form does not match the registration it was "
                          "made for. Start the registration again from the LMS.")


def _invitation_refused(error: invitations.InvitationError) -> LaunchError:
    return LaunchError(error.reason, error.message, status=403)


@bp.route("/lti/register", methods=["GET", "POST"])
@csrf.exempt  # checked by _check_registration_post, which needs no cookie
@limiter.limit("30 per minute")
def register():
    """LTI Dynamic Registration: GET shows what would be registered; the confirmed POST registers."""
    invitation_required = not current_app.config["REGISTRATION_WITHOUT_INVITATION"]
    if request.method == "GET":
        params = _registration_parameters(request.args)
        try:
            invitation = invitations.find_open(params["invitation"]) if (
                invitation_required or params["invitation"]) else None
        except invitations.InvitationError as exc:
            raise _invitation_refused(exc) from exc
        plan = platforms.plan_dynamic(params["openid_configuration"], params["registration_token"])
        return render_template(
            "lti/register_confirm.html", plan=plan, configuration=plan.configuration, params=params,
            invitation=invitation, form_token=_form_serializer().dumps(_parameters_digest(params)),
            asks_for=describe_scopes(tool_registration_request(_base_url(), plan.configuration)["scope"]))
    params = _registration_parameters(request.form)
    _check_registration_post(params)
    try:
        result = platforms.register_dynamic(
            params["openid_configuration"], params["registration_token"], base_url=_base_url(),
            invitation=params["invitation"], invitation_required=invitation_required,
            confirm_duplicate=request.form.get("confirm_duplicate") == "1")
    except invitations.InvitationError as exc:
        raise _invitation_refused(exc) from exc
    return render_template("lti/registered.html", result=result)
