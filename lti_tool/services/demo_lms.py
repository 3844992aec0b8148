"""The built-in demo LMS (development only): one course, its people, the links placed in it, its gradebook.

It plays the platform's side as Canvas and Moodle do: it signs id_tokens with its own key (kept in the instance
folder), keeps what a deep-linking response places, launches each placed link with its resource link id, custom
parameters and gradebook column, and serves the tool's service calls (an OAuth2 token for a client assertion the
tool signed, AGS line items, scores and results, the NRPS roster). Functions here flush and never commit.
"""
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import jwt
import sqlalchemy as sa
from flask import current_app
from jwt.algorithms import RSAAlgorithm

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.lti.ags import ACTIVITY_PROGRESS, GRADING_PROGRESS, SCORE_TYPE
from lti_tool.lti.claims import COURSE_OFFERING, LTI_VERSION, Claim, MessageType, Role, Scope
from lti_tool.lti.registration import tool_urls
from lti_tool.models import DemoLineItem, DemoLink, DemoScore, Deployment, Platform
from lti_tool.models.base import utcnow
from lti_tool.services import platforms

CLIENT_ID = "demo-client"
DEPLOYMENT_ID = "demo-deployment"
KEY_FILE = "demo_platform_key.pem"
KEY_ID = "demo-platform-key"
COURSE = {"id": "demo-course", "label": "BARG-101", "title": "Demo Local: Bargaining Certificate",
          "type": [COURSE_OFFERING]}


@dataclass(frozen=True)
class Person:
    key: str
    sub: str
    given_name: str
    family_name: str
    email: str
    role: Role

    @property
    def name(self) -> str:
        """Return the full name the LMS shows and sends."""
        return f"{self.given_name} {self.family_name}"

    @property
    def instructor(self) -> bool:
        """Whether the person teaches the demo course."""
        return self.role == Role.INSTRUCTOR


#: The demo course's people: its instructor and four members. The keys are the login hints the demo sends.
PEOPLE = {p.key: p for p in (
    Person("instructor", "demo-instructor", "Sam", "Okafor", "sam.okafor@example.org", Role.INSTRUCTOR),
    Person("member", "demo-member", "Dana", "Rivera", "dana.rivera@example.org", Role.LEARNER),
    Person("member-2", "demo-member-2", "Luis", "Ortega", "luis.ortega@example.org", Role.LEARNER),
    Person("member-3", "demo-member-3", "Mei", "Chen", "mei.chen@example.org", Role.LEARNER),
    Person("member-4", "demo-member-4", "Aisha", "Bello", "aisha.bello@example.org", Role.LEARNER),
)}
#: The scopes the demo LMS grants the tool (what its developer key, in Canvas terms, allows).
SCOPES = (Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY, Scope.AGS_RESULT_READONLY, Scope.AGS_SCORE,
          Scope.NRPS_MEMBERSHIP)
TOKEN_LIFETIME = 3600
#: The longest a client assertion may live (a signed request for a token, not a credential to keep).
ASSERTION_MAX_LIFETIME = 300
#: lti_message_hint values: the course's navigation link, a deep-linking request, or a placed link.
COURSE_NAVIGATION, DEEP_LINK, PLACED = "course", "deep-link", "link:"


class DemoError(Exception):
    """A request the demo LMS refuses: `status`, an OAuth/AGS-style `error` code and a plain description."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict:
        """Return the refusal as the JSON body a platform answers with."""
        return {"error": self.error, "error_description": self.description}


# -- addresses and keys ------------------------------------------------------------------------------------------

def base_url() -> str:
    """Return the address the demo LMS (and the tool) answer on."""
    return current_app.config["PUBLIC_BASE_URL"]


def issuer() -> str:
    """Return the demo platform's issuer."""
    return base_url() + "/demo"


def token_url() -> str:
    """Return the OAuth2 token endpoint (the audience of the tool's client assertions)."""
    return issuer() + "/token"


def lineitems_url() -> str:
    """Return the course's AGS line item container."""
    return issuer() + "/lineitems"


def line_item_url(item: DemoLineItem) -> str:
    """Return a line item's URL (its AGS id)."""
    return f"{lineitems_url()}/{item.id}"


def memberships_url() -> str:
    """Return the course's NRPS memberships endpoint."""
    return issuer() + "/memberships"


def _private_key_pem() -> str:
    """Return the demo platform's key, generated once into the instance folder (never the repository)."""
    path = Path(current_app.instance_path) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem, _ = keys.generate_key_pair()
        path.write_text(pem)
        path.chmod(0o600)
    return path.read_text()


def public_jwk() -> dict:
    """Return the demo platform's public key as a JWK."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = serialization.load_pem_private_key(_private_key_pem().encode(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise RuntimeError("The demo platform's key must be an RSA key.")
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": KEY_ID, "alg": "RS256", "use": "sig"})
    return jwk


def ensure_demo_platform() -> Platform:
    """Register the demo platform (and the tool's first key) if they are not there yet."""
    keys.ensure_active_key()
    platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == issuer(),
                                                            Platform.client_id == CLIENT_ID)).first()
    if platform is None:
        platform = Platform(name="Demo LMS (built in)", issuer=issuer(), client_id=CLIENT_ID,
                            lms=platforms.lms_for(issuer(), CLIENT_ID, "Demo LMS (built in)"),
                            auth_login_url="", auth_token_url="", registered_by="demo", product="demo")
        db.session.add(platform)
        db.session.flush()
        db.session.add(Deployment(platform_id=platform.id, deployment_id=DEPLOYMENT_ID))
    platform.auth_login_url = issuer() + "/authorize"
    platform.auth_token_url = token_url()
    # The key set is stored with the registration: the demo needs no HTTP call to itself.
    platform.key_set = {"keys": [public_jwk()]}
    db.session.flush()
    return platform


def demo_platform() -> Platform | None:
    """Return the demo platform's registration, if a demo launch made it."""
    return db.session.scalars(sa.select(Platform).where(Platform.issuer == issuer(),
                                                        Platform.client_id == CLIENT_ID)).first()


# -- launches ----------------------------------------------------------------------------------------------------

def members() -> list[Person]:
    """Return the course's members (learners), by name."""
    return sorted((p for p in PEOPLE.values() if not p.instructor), key=lambda p: (p.family_name, p.given_name))


def placed_links() -> list[DemoLink]:
    """Return the links placed in the demo course, oldest first."""
    return list(db.session.scalars(sa.select(DemoLink).order_by(DemoLink.id)))


def link_by_resource_link_id(resource_link_id: str) -> DemoLink | None:
    """Return the placed link with this resource link id."""
    return db.session.scalars(sa.select(DemoLink).where(DemoLink.resource_link_id == resource_link_id[:64])).first()


def message_hint(target: str, person_key: str) -> str:
    """Check what a launch asks for and return its lti_message_hint; raise DemoError when it cannot be."""
    if person_key not in PEOPLE:
        raise DemoError(400, "invalid_request", "Choose one of the demo course's people to launch as.")
    if target == DEEP_LINK:
        if not PEOPLE[person_key].instructor:
            raise DemoError(400, "invalid_request", "Only the course's instructor adds content (deep linking).")
        return DEEP_LINK
    if target in ("", COURSE_NAVIGATION):
        return COURSE_NAVIGATION
    if link_by_resource_link_id(target) is None:
        raise DemoError(400, "invalid_request", "That link is not in the demo course: reload the course page.")
    return PLACED + target


def launch_claims(person_key: str, hint: str, nonce: str) -> dict:
    """Return the id_token claims of a launch as `person_key`, for the course link, a deep link or a placed link."""
    person = PEOPLE[person_key]
    launch_url = tool_urls(base_url())["launch"]
    now = int(time.time())
    claims = {
        "iss": issuer(), "aud": CLIENT_ID, "sub": person.sub, "iat": now, "exp": now + 300, "nonce": nonce,
        "name": person.name, "given_name": person.given_name, "family_name": person.family_name,
        "email": person.email,
        Claim.VERSION.value: LTI_VERSION, Claim.DEPLOYMENT_ID.value: DEPLOYMENT_ID,
        Claim.TARGET_LINK_URI.value: launch_url, Claim.ROLES.value: [person.role.value], Claim.CONTEXT.value: COURSE,
        Claim.TOOL_PLATFORM.value: {"guid": "demo-lms", "name": "Demo LMS", "product_family_code": "demo"},
        # The course's roster, as Canvas and Moodle offer it to a tool with the roster scope.
        Claim.NRPS.value: {"context_memberships_url": memberships_url(), "service_versions": ["2.0"]},
    }
    if hint == DEEP_LINK:
        claims[Claim.MESSAGE_TYPE.value] = MessageType.DEEP_LINKING.value
        claims[Claim.DEEP_LINKING_SETTINGS.value] = {
            "deep_link_return_url": issuer() + "/deep-link-return",
            "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": True, "accept_lineitem": True, "data": str(uuid.uuid4())}
        return claims
    claims[Claim.MESSAGE_TYPE.value] = MessageType.RESOURCE_LINK.value
    ags = {"scope": [s.value for s in SCOPES if s != Scope.NRPS_MEMBERSHIP], "lineitems": lineitems_url()}
    link = link_by_resource_link_id(hint.removeprefix(PLACED)) if hint.startswith(PLACED) else None
    if link is None:
        claims[Claim.RESOURCE_LINK.value] = {"id": "demo-course-navigation", "title": "Bargaining Certificate"}
    else:
        claims[Claim.RESOURCE_LINK.value] = {"id": link.resource_link_id, "title": link.title}
        claims[Claim.TARGET_LINK_URI.value] = link.url  # as an LMS does: the placed item's own url
        if link.custom:
            claims[Claim.CUSTOM.value] = dict(link.custom)
        if link.line_item is not None:
            # The placed link's own gradebook column, as an LMS sends it for an activity that takes grades.
            ags["lineitem"] = line_item_url(link.line_item)
    claims[Claim.AGS_ENDPOINT.value] = ags
    return claims


def sign(claims: dict) -> str:
    """Sign claims with the demo platform's key."""
    return jwt.encode(claims, _private_key_pem(), algorithm="RS256", headers={"kid": KEY_ID})


# -- deep linking ------------------------------------------------------------------------------------------------

def _tool_key(token: str):
    """Return the tool's public key named by the token's kid (from the key set the tool publishes)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise DemoError(400, "invalid_request", f"The token is not a JWT ({exc}).") from exc
    if header.get("alg") != "RS256":
        raise DemoError(401, "invalid_client", "The token must be signed with RS256.")
    # The same key set /.well-known/jwks.json serves, read in-process: the demo makes no HTTP call to itself.
    published = {k["kid"]: k for k in keys.public_jwks()["keys"]}
    if header.get("kid") not in published:
        raise DemoError(401, "invalid_client", "The token's kid is not in the tool's published key set.")
    return RSAAlgorithm.from_jwk(json.dumps(published[header["kid"]]))


def receive_deep_link_response(token: str) -> tuple[list[DemoLink], bool]:
    """Check the tool's deep-linking response and place its links in the course (and their gradebook columns).

    Return the links and whether they were placed just now (False: this response had placed them already).
    """
    try:
        message = jwt.decode(token, _tool_key(token), algorithms=["RS256"], audience=issuer(),
                             options={"require": ["iss", "aud", "exp", "iat", "nonce"]})
    except jwt.InvalidTokenError as exc:
        raise DemoError(400, "invalid_request", f"The deep-linking response did not verify: {exc}.") from exc
    if message["iss"] != CLIENT_ID or message.get(Claim.DEPLOYMENT_ID) != DEPLOYMENT_ID or \
            message.get(Claim.MESSAGE_TYPE) != MessageType.DEEP_LINKING_RESPONSE or \
            message.get(Claim.VERSION) != LTI_VERSION:
        raise DemoError(400, "invalid_request", "This is not a deep-linking response for the demo course.")
    response_id = str(message["nonce"])[:255]
    already = list(db.session.scalars(sa.select(DemoLink).where(DemoLink.response_id == response_id)
                                      .order_by(DemoLink.id)))
    if already:
        return already, False  # the same response posted again (a reload): nothing is placed twice
    items = message.get(Claim.DL_CONTENT_ITEMS) or []
    placed = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
            continue  # the demo course asked for resource links only
        resource_link_id = f"demo-link-{uuid.uuid4().hex[:12]}"
        custom = item.get("custom") if isinstance(item.get("custom"), dict) else None
        link = DemoLink(resource_link_id=resource_link_id, title=str(item.get("title") or "Untitled link")[:300],
                        text=item.get("text") if isinstance(item.get("text"), str) else None,
                        url=str(item.get("url") or tool_urls(base_url())["launch"])[:1000],
                        custom={str(k): str(v) for k, v in custom.items()} if custom else None,
                        response_id=response_id, created_at=utcnow())
        line_item = item.get("lineItem")
        if isinstance(line_item, dict):
            link.line_item = _new_line_item(line_item, resource_link_id, default_label=link.title)
        db.session.add(link)
        placed.append(link)
    db.session.flush()
    return placed, True


def _new_line_item(body: dict, resource_link_id: str | None, default_label: str | None = None) -> DemoLineItem:
    label = body.get("label") if isinstance(body.get("label"), str) and body["label"].strip() else default_label
    if not label:
        raise DemoError(400, "invalid_request", "A line item needs a label.")
    maximum = _number(body.get("scoreMaximum"))
    if maximum is None or maximum <= 0:
        raise DemoError(400, "invalid_request", "A line item needs a scoreMaximum greater than 0.")
    item = DemoLineItem(label=label.strip()[:300], score_maximum=maximum, resource_link_id=resource_link_id,
                        resource_id=_short(body.get("resourceId")), tag=_short(body.get("tag")), created_at=utcnow())
    db.session.add(item)
    db.session.flush()
    return item


def _short(value) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# -- the OAuth2 token endpoint ----------------------------------------------------------------------------------

def issue_token(form) -> dict:
    """Answer a client-credentials request whose assertion the tool signed; raise DemoError when refused."""
    if form.get("grant_type") != "client_credentials":
        raise DemoError(400, "unsupported_grant_type", "Only client_credentials is offered.")
    if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
        raise DemoError(400, "invalid_request", "The client must authenticate with a signed JWT assertion.")
    assertion = form.get("client_assertion") or ""
    try:
        claims = jwt.decode(assertion, _tool_key(assertion), algorithms=["RS256"], audience=token_url(),
                            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
    except jwt.InvalidTokenError as exc:
        raise DemoError(401, "invalid_client", f"The client assertion did not verify: {exc}.") from exc
    if claims["iss"] != CLIENT_ID or claims["sub"] != CLIENT_ID:
        raise DemoError(401, "invalid_client", "The client assertion is not from the demo LMS's client.")
    if claims["exp"] - claims["iat"] > ASSERTION_MAX_LIFETIME:
        raise DemoError(401, "invalid_client", "The client assertion lives too long (at most five minutes).")
    requested = (form.get("scope") or "").split()
    granted = [s for s in requested if s in {scope.value for scope in SCOPES}]
    if not granted:
        raise DemoError(400, "invalid_scope", "None of the requested scopes is offered by the demo LMS.")
    now = int(time.time())
    # The token is itself signed by the demo LMS (as Canvas's are): nothing to store, so the endpoint writes nothing.
    token = sign({"iss": issuer(), "sub": CLIENT_ID, "aud": issuer() + "/services", "iat": now,
                  "exp": now + TOKEN_LIFETIME, "jti": uuid.uuid4().hex, "scope": " ".join(granted)})
    return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": " ".join(granted)}


def _public_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = RSAAlgorithm.from_jwk(json.dumps(public_jwk()))
    if not isinstance(key, rsa.RSAPublicKey):
        raise RuntimeError("The demo platform's key must be an RSA public key.")
    return key


def authorize(authorization: str | None, *scopes: Scope) -> None:
    """Check the bearer token of a service call carries one of `scopes`; raise DemoError (401/403) when not."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    if not token:
        raise DemoError(401, "invalid_token", "A bearer access token from /demo/token is needed.")
    try:
        claims = jwt.decode(token, _public_key(), algorithms=["RS256"],
                            audience=issuer() + "/services", issuer=issuer())
    except jwt.InvalidTokenError as exc:
        raise DemoError(401, "invalid_token", f"The access token is not valid: {exc}.") from exc
    if not set(str(claims.get("scope", "")).split()) & {s.value for s in scopes}:
        raise DemoError(403, "insufficient_scope", "The access token does not carry the scope this call needs.")


# -- Assignment and Grade Services -------------------------------------------------------------------------------

def line_item_json(item: DemoLineItem) -> dict:
    """Return a line item as AGS describes it."""
    body = {"id": line_item_url(item), "label": item.label, "scoreMaximum": float(item.score_maximum)}
    for name, value in (("resourceLinkId", item.resource_link_id), ("resourceId", item.resource_id),
                        ("tag", item.tag)):
        if value:
            body[name] = value
    return body


def line_items(resource_link_id: str | None = None, resource_id: str | None = None,
               tag: str | None = None) -> list[DemoLineItem]:
    """Return the course's line items, filtered as the AGS container's query parameters ask."""
    query = sa.select(DemoLineItem).order_by(DemoLineItem.id)
    if resource_link_id:
        query = query.where(DemoLineItem.resource_link_id == resource_link_id)
    if resource_id:
        query = query.where(DemoLineItem.resource_id == resource_id)
    if tag:
        query = query.where(DemoLineItem.tag == tag)
    return list(db.session.scalars(query))


def create_line_item(body) -> DemoLineItem:
    """Make a gradebook column the tool asked for; raise DemoError when the request is not one."""
    if not isinstance(body, dict):
        raise DemoError(400, "invalid_request", "Send the line item as a JSON object.")
    resource_link_id = body.get("resourceLinkId")
    if resource_link_id is not None and (not isinstance(resource_link_id, str)
                                         or link_by_resource_link_id(resource_link_id) is None):
        raise DemoError(400, "invalid_request", "resourceLinkId names no link of the demo course.")
    return _new_line_item(body, resource_link_id)


def line_item(item_id: int) -> DemoLineItem:
    """Return a line item of the course; raise DemoError (404) when there is none."""
    item = db.session.get(DemoLineItem, item_id)
    if item is None:
        raise DemoError(404, "not_found", "There is no such line item in the demo course.")
    return item


def _timestamp(value) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DemoError(400, "invalid_request", "timestamp must be an ISO 8601 date and time with a time zone.")
    return when


def record_score(item: DemoLineItem, content_type: str | None, body) -> DemoScore:
    """Keep a score the tool posted to a column: the latest by timestamp is the member's result."""
    if (content_type or "").split(";")[0].strip() != SCORE_TYPE:
        raise DemoError(415, "unsupported_media_type", f"A score is sent as {SCORE_TYPE}.")
    if not isinstance(body, dict):
        raise DemoError(400, "invalid_request", "Send the score as a JSON object.")
    user = next((p for p in PEOPLE.values() if p.sub == body.get("userId")), None)
    if user is None or user.instructor:
        # As Canvas does: only the course's students have a grade.
        raise DemoError(422, "invalid_user", "userId is not a student of the demo course.")
    if body.get("activityProgress") not in ACTIVITY_PROGRESS or body.get("gradingProgress") not in GRADING_PROGRESS:
        raise DemoError(400, "invalid_request", "activityProgress and gradingProgress must be AGS values.")
    when = _timestamp(body.get("timestamp"))
    given, maximum = _number(body.get("scoreGiven")), _number(body.get("scoreMaximum"))
    if "scoreGiven" in body and (given is None or given < 0 or maximum is None or maximum <= 0):
        raise DemoError(400, "invalid_request", "scoreGiven needs a number of at least 0 and a scoreMaximum above 0.")
    comment = body.get("comment") if isinstance(body.get("comment"), str) else None
    score = db.session.scalars(sa.select(DemoScore).where(DemoScore.line_item_id == item.id,
                                                          DemoScore.user_id == user.sub)).first()
    if score is not None and score.timestamp > when:
        return score  # AGS: a score older than the result on record does not change it
    if score is None:
        score = DemoScore(line_item_id=item.id, user_id=user.sub)
        db.session.add(score)
    score.score_given, score.score_maximum = given, maximum
    score.activity_progress, score.grading_progress = body["activityProgress"], body["gradingProgress"]
    score.comment, score.timestamp, score.received_at = comment, when, utcnow()
    db.session.flush()
    return score


def results(item: DemoLineItem) -> list[dict]:
    """Return the column's results as AGS's result service lists them."""
    rows = db.session.scalars(sa.select(DemoScore).where(DemoScore.line_item_id == item.id).order_by(DemoScore.id))
    found = []
    for row in rows:
        result: dict[str, object] = {"id": f"{line_item_url(item)}/results/{row.id}", "scoreOf": line_item_url(item),
                  "userId": row.user_id}
        if row.score_given is not None and row.score_maximum is not None:
            result.update(resultScore=float(row.score_given), resultMaximum=float(row.score_maximum))
        if row.comment:
            result["comment"] = row.comment
        found.append(result)
    return found


# -- Names and Role Provisioning ----------------------------------------------------------------------------------

def memberships() -> dict:
    """Return the course's roster as the NRPS memberships container: the instructor and the members."""
    return {"id": memberships_url(), "context": {k: COURSE[k] for k in ("id", "label", "title")},
            "members": [{"status": "Active", "user_id": p.sub, "name": p.name, "given_name": p.given_name,
                         "family_name": p.family_name, "email": p.email, "roles": [p.role.value]}
                        for p in sorted(PEOPLE.values(), key=lambda p: (not p.instructor, p.family_name))]}


# -- the gradebook page -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gradebook:
    columns: list[DemoLineItem]
    rows: list[tuple[Person, list[DemoScore | None]]]


def gradebook() -> Gradebook:
    """Return the course's gradebook: a column per line item, a row per member, the score the tool sent in each."""
    columns = line_items()
    scores = {(s.line_item_id, s.user_id): s for s in db.session.scalars(sa.select(DemoScore))}
    rows = [(person, [scores.get((column.id, person.sub)) for column in columns]) for person in members()]
    return Gradebook(columns=columns, rows=rows)
