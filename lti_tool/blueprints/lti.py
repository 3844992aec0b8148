"""LTI endpoints: OIDC login, launch, the tool's JWKS, Canvas JSON configuration and Dynamic Registration."""
import hmac
import random

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from lti_tool.auth import remember_launch
from lti_tool.extensions import csrf, db
from lti_tool.lti import keys
from lti_tool.lti.claims import MessageType
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.launch import PendingStorageCheck, claim_handoff, validate_launch
from lti_tool.lti.login import LOGIN_TTL, STATE_COOKIE_PREFIX, begin_login, purge_login_states
from lti_tool.lti.registration import canvas_configuration, register_dynamically, tool_urls
from lti_tool.lti.sync import record_launch
from lti_tool.models import Launch

bp = Blueprint("lti", __name__)

HANDOFF_MAX_AGE = 120


def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


def _cookie_options() -> dict:
    config = current_app.config
    return {"secure": config["SESSION_COOKIE_SECURE"], "httponly": True,
            "samesite": config["SESSION_COOKIE_SAMESITE"], "partitioned": config["SESSION_COOKIE_PARTITIONED"]}


@bp.route("/lti/login", methods=["GET", "POST"])
@csrf.exempt
def login():
    """Answer the platform's OIDC login initiation with the redirect to its authorization endpoint."""
    params = request.form if request.method == "POST" else request.args
    login_redirect = begin_login(params, launch_url=tool_urls(_base_url())["launch"], public_base_url=_base_url())
    if random.random() < 0.01:  # keep the table small without a scheduler
        purge_login_states()
    db.session.commit()
    if login_redirect.storage_target:
        response = current_app.make_response(render_template(
            "lti/login_storage.html", auth_url=login_redirect.url, state=login_redirect.state,
            nonce=login_redirect.nonce, storage_target=login_redirect.storage_target))
    else:
        response = redirect(login_redirect.url, code=302)
    response.set_cookie(STATE_COOKIE_PREFIX + login_redirect.state, "1", max_age=int(LOGIN_TTL.total_seconds()),
                        path="/lti/", **_cookie_options())
    return response


@bp.post("/lti/launch")
@csrf.exempt
def launch():
    """Validate the platform's launch, record who and where, and send the user to their page."""
    result = validate_launch(request.cookies, storage_verified=request.form.get("lti_storage_verified") == "1")
    if isinstance(result, PendingStorageCheck):
        return render_template("lti/launch_storage_check.html", check=result)
    record = record_launch(result)
    db.session.commit()
    if result.browser_holds_state():
        remember_launch(record.id)
        response = redirect(landing_url(record), code=303)
    else:
        # Verified through the platform's storage: this browser keeps no cookie in the iframe.
        handoff = _handoff_serializer().dumps(record.id)
        response = current_app.make_response(render_template(
            "lti/new_window.html", handoff_url=url_for("lti.resume", token=handoff, _external=False)))
    response.delete_cookie(STATE_COOKIE_PREFIX + result.login.state, path="/lti/", **_cookie_options())
    return response


def landing_url(record: Launch) -> str:
    """Return where a launch lands: the deep-linking picker or the user's home in the course."""
    if record.message_type == MessageType.DEEP_LINKING:
        return url_for("deep_linking.picker", launch_id=record.id)
    return url_for("member.home", launch_id=record.id)


def _handoff_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="launch-handoff")


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
    db.session.commit()
    record = db.session.get(Launch, launch_id)
    remember_launch(record.id)
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


@bp.get("/lti/register")
@csrf.exempt
def register():
    """LTI Dynamic Registration: register with the platform that opened this page, then tell it to close."""
    expected_key = current_app.config["REGISTRATION_KEY"]
    if expected_key is None:
        raise LaunchError("registration_off", "Dynamic Registration is turned off on this tool. The tool's "
                          "administrator sets LTI_REGISTRATION_KEY and gives you the registration URL "
                          "/lti/register?key=<that key>.", status=403)
    if expected_key and not hmac.compare_digest(request.args.get("key", ""), expected_key):
        raise LaunchError("registration_key", "This registration URL lacks the tool's registration key (or has a "
                          "wrong one). Use the full URL the tool's administrator gave you, with ?key=.", status=403)
    result = register_dynamically(request.args.get("openid_configuration", ""),
                                  request.args.get("registration_token"))
    db.session.commit()
    return render_template("lti/registered.html", result=result)
