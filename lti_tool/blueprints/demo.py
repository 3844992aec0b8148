"""A built-in demo LMS (development only): signs real id_tokens and goes through the tool's real endpoints."""
import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import jwt
import sqlalchemy as sa
from flask import Blueprint, abort, current_app, redirect, render_template, request

from lti_tool.extensions import csrf, db
from lti_tool.lti import keys
from lti_tool.lti.claims import LTI_VERSION, Claim, MessageType, Role
from lti_tool.lti.registration import tool_urls
from lti_tool.models import Deployment, Platform
from lti_tool.services import platforms

bp = Blueprint("demo", __name__, url_prefix="/demo")

CLIENT_ID = "demo-client"
DEPLOYMENT_ID = "demo-deployment"
KEY_FILE = "demo_platform_key.pem"
COURSE = {"id": "demo-course", "label": "BARG-101", "title": "Demo Local: Bargaining Certificate",
          "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]}
PEOPLE = {
    "member": {"sub": "demo-member", "name": "Dana Rivera", "given_name": "Dana", "family_name": "Rivera",
               "email": "dana.rivera@example.org", "roles": [Role.LEARNER.value]},
    "instructor": {"sub": "demo-instructor", "name": "Sam Okafor", "given_name": "Sam", "family_name": "Okafor",
                   "email": "sam.okafor@example.org", "roles": [Role.INSTRUCTOR.value]},
}
CHOICES = {
    "member": ("member", MessageType.RESOURCE_LINK),
    "instructor": ("instructor", MessageType.RESOURCE_LINK),
    "deep-link": ("instructor", MessageType.DEEP_LINKING),
}


def _issuer() -> str:
    return current_app.config["PUBLIC_BASE_URL"] + "/demo"


def _private_key_pem() -> str:
    """Return the demo platform's key, generated once into the instance folder (never the repository)."""
    path = Path(current_app.instance_path) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem, _ = keys.generate_key_pair()
        path.write_text(pem)
        path.chmod(0o600)
    return path.read_text()


def _public_jwk() -> dict:
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import RSAAlgorithm

    private = serialization.load_pem_private_key(_private_key_pem().encode(), password=None)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": "demo-platform-key", "alg": "RS256", "use": "sig"})
    return jwk


def ensure_demo_platform() -> Platform:
    """Register the demo platform (and the tool's first key) if they are not there yet."""
    keys.ensure_active_key()
    platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == _issuer(),
                                                            Platform.client_id == CLIENT_ID)).first()
    if platform is None:
        platform = Platform(name="Demo LMS (built in)", issuer=_issuer(), client_id=CLIENT_ID,
                            lms=platforms.lms_for(_issuer(), CLIENT_ID, "Demo LMS (built in)"),
                            auth_login_url="", auth_token_url="", registered_by="demo", product="demo")
        db.session.add(platform)
        db.session.flush()
        db.session.add(Deployment(platform_id=platform.id, deployment_id=DEPLOYMENT_ID))
    base = current_app.config["PUBLIC_BASE_URL"]
    platform.auth_login_url = f"{base}/demo/authorize"
    platform.auth_token_url = f"{base}/demo/token"
    # The key set is stored with the registration: the demo needs no HTTP call to itself.
    platform.key_set = {"keys": [_public_jwk()]}
    return platform


@bp.get("/")
def index():
    """Show the demo LMS course page with its launch buttons."""
    return render_template("demo/index.html", course=COURSE, people=PEOPLE)


@bp.post("/start")
def start():
    """Begin a launch as the chosen demo user: the LMS sends the browser to the tool's login."""
    choice = request.form.get("as", "")
    if choice not in CHOICES:
        abort(400, description="Choose one of the demo launches.")
    platform = ensure_demo_platform()
    db.session.commit()
    base = current_app.config["PUBLIC_BASE_URL"]
    params = {"iss": platform.issuer, "login_hint": CHOICES[choice][0], "lti_message_hint": choice,
              "target_link_uri": tool_urls(base)["launch"], "client_id": CLIENT_ID,
              "lti_deployment_id": DEPLOYMENT_ID}
    return redirect(f"{tool_urls(base)['login']}?{urlencode(params)}", code=303)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    """Play the platform's OIDC authorization endpoint: sign an id_token and post it to the tool."""
    params = request.values
    base = current_app.config["PUBLIC_BASE_URL"]
    if params.get("client_id") != CLIENT_ID or params.get("redirect_uri") != tool_urls(base)["launch"]:
        abort(400, description="The demo LMS only launches the tool's own launch URL with its own client id.")
    if params.get("response_type") != "id_token" or params.get("scope") != "openid" or not params.get("nonce"):
        abort(400, description="Not an OIDC implicit-flow authorization request.")
    choice = params.get("lti_message_hint", "member")
    if choice not in CHOICES or params.get("login_hint") != CHOICES[choice][0]:
        abort(400, description="Unknown demo user.")
    person_key, message_type = CHOICES[choice]
    person = PEOPLE[person_key]
    now = int(time.time())
    claims = {
        "iss": _issuer(), "aud": CLIENT_ID, "sub": person["sub"], "iat": now, "exp": now + 300,
        "nonce": params["nonce"], "name": person["name"], "given_name": person["given_name"],
        "family_name": person["family_name"], "email": person["email"],
        Claim.MESSAGE_TYPE.value: message_type.value, Claim.VERSION.value: LTI_VERSION,
        Claim.DEPLOYMENT_ID.value: DEPLOYMENT_ID, Claim.TARGET_LINK_URI.value: tool_urls(base)["launch"],
        Claim.ROLES.value: person["roles"], Claim.CONTEXT.value: COURSE,
        Claim.TOOL_PLATFORM.value: {"guid": "demo-lms", "name": "Demo LMS", "product_family_code": "demo"},
    }
    if message_type == MessageType.RESOURCE_LINK:
        claims[Claim.RESOURCE_LINK.value] = {"id": "demo-course-navigation", "title": "Bargaining Certificate"}
    else:
        claims[Claim.DEEP_LINKING_SETTINGS.value] = {
            "deep_link_return_url": f"{base}/demo/deep-link-return",
            "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": True, "data": str(uuid.uuid4())}
    id_token = jwt.encode(claims, _private_key_pem(), algorithm="RS256", headers={"kid": "demo-platform-key"})
    return render_template("demo/auto_post.html", action=params["redirect_uri"],
                           fields={"id_token": id_token, "state": params.get("state", "")})


@bp.post("/token")
@csrf.exempt
def token():
    """Refuse service tokens: the demo LMS has no gradebook or roster services."""
    return {"error": "unsupported_grant_type", "error_description": "The demo LMS offers no services."}, 400


@bp.post("/deep-link-return")
@csrf.exempt
def deep_link_return():
    """Receive the tool's deep-linking response, check its signature, and show what it placed."""
    token_value = request.form.get("JWT", "")
    jwk = {k["kid"]: k for k in keys.public_jwks()["keys"]}
    try:
        kid = jwt.get_unverified_header(token_value).get("kid")
        from jwt.algorithms import RSAAlgorithm

        message = jwt.decode(token_value, RSAAlgorithm.from_jwk(json.dumps(jwk[kid])), algorithms=["RS256"],
                             audience=_issuer())
    except (jwt.InvalidTokenError, KeyError) as exc:
        abort(400, description=f"The deep-linking response did not verify: {exc}")
    items = message.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    return render_template("demo/deep_link_return.html", items=items)
