"""An LMS emulator for the tests: real RSA keys, a real JWKS over HTTP on loopback, the real OIDC flow.

It plays Canvas or Moodle: OIDC authorization endpoint, key set, OAuth2 token endpoint, and LTI Dynamic
Registration (OpenID configuration and registration endpoint). Tests change its behaviour through attributes.
"""
import base64
import copy
import hashlib
import html
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlparse

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"


@dataclass
class KeyPair:
    kid: str
    private_pem: str
    jwk: dict

    @classmethod
    def generate(cls, kid: str | None = None) -> "KeyPair":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        kid = kid or base64.urlsafe_b64encode(hashlib.sha256(jwk["n"].encode()).digest()[:9]).decode()
        jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        return cls(kid=kid, private_pem=pem, jwk=jwk)


@dataclass
class User:
    sub: str
    name: str
    email: str
    roles: list[str]


DEFAULT_USERS = {
    "member": User("user-member-1", "Maria Member", "maria@example.org", [MEMBERSHIP + "Learner"]),
    "instructor": User("user-instructor-1", "Ivan Instructor", "ivan@example.org", [MEMBERSHIP + "Instructor"]),
    "admin": User("user-admin-1", "Ada Admin", "ada@example.org",
                  ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
                   MEMBERSHIP + "Instructor"]),
    "guest": User("user-guest-1", "Gus Guest", "gus@example.org",
                  ["http://purl.imsglobal.org/vocab/lis/v2/system/person#User"]),
}


@dataclass
class PlatformEmulator:
    """One LMS on loopback. `issuer` defaults to its own base URL (as Moodle does)."""

    issuer: str | None = None
    client_id: str = "tool-client-1"
    deployment_id: str = "deployment-1"
    product: str = "moodle"
    context_id: str = "course-101"
    users: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_USERS))
    keys: list = field(default_factory=list)
    #: Counters the tests read.
    jwks_fetches: int = 0
    registrations: list = field(default_factory=list)
    #: Claims merged into (or, with value None, removed from) the next id_tokens.
    claim_overrides: dict = field(default_factory=dict)
    #: Seconds the course page's storage frame takes to arrive (a slow LMS, or a slow phone).
    storage_frame_delay: float = 0.0
    message_type: str = "LtiResourceLinkRequest"
    resource_link_id: str = "resource-link-1"
    registration_token: str = "reg-token-1"
    used_registration_tokens: set = field(default_factory=set)
    #: The tool's JWKS (a callable returning it): the token endpoint checks the tool's signed assertion.
    tool_jwks: object = None
    #: Gradebook: line items by URL, scores received, and failures to inject into the next score POSTs:
    #: an int status (500, 429, 401, 400...), "timeout", or ("retry-after", seconds) for a 429 with Retry-After.
    line_items: dict = field(default_factory=dict)
    scores: list = field(default_factory=list)
    score_failures: list = field(default_factory=list)
    score_delay: float = 0.0
    #: How the gradebook compares a score's timestamp with the result it holds (None: it takes every score):
    #: "canvas" refuses an older one with 400 (Lti::IMS::ScoresController#verify_valid_timestamp),
    #: "not-newer-400" refuses one that is not newer with a Canvas-style 400 (a stricter LMS),
    #: "moodle" refuses one not later to the second with 409 (gradebookservices' scores resource).
    score_order: str | None = None
    #: What the gradebook holds: (line item URL, userId) -> the stored score (with its timestamp).
    results: dict = field(default_factory=dict)
    #: After storing a score, answer only after this many seconds ("stall"), or send the answer a byte at a
    #: time every `score_drip` seconds ("drip"), or wait until `score_release` is set (a held request).
    score_stall: float = 0.0
    score_drip: float = 0.0
    score_release: object = None
    #: Score POSTs that reached the score endpoint (whatever the answer).
    score_requests: int = 0
    #: Roster (NRPS members) and its page size.
    members: list = field(default_factory=list)
    members_page_size: int = 50
    #: Access tokens issued, and how many token requests were made.
    tokens: dict = field(default_factory=dict)
    token_requests: int = 0
    token_lifetime: int = 3600
    #: When set, the token endpoint answers every request with this (status, body, content type) instead.
    token_answer: tuple | None = None
    #: The name its addresses use: "localhost" puts it on another site than a tool served at 127.0.0.1.
    host: str = "127.0.0.1"
    #: Which registration (client id) each access token was issued to, and which made each line item: as Moodle
    #: does per tool type, a registration sees and writes only the columns it made (or the LMS's own).
    token_clients: dict = field(default_factory=dict)
    line_item_clients: dict = field(default_factory=dict)

    def __post_init__(self):
        self._lock = threading.Lock()
        if not self.keys:
            self.keys = [KeyPair.generate()]
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://{self.host}:{self._server.server_port}"
        self.issuer = self.issuer or self.base_url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    # -- its endpoints (subclasses use the real products' paths) --
    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/jwks"

    def login_extras(self) -> dict:
        """Parameters this product adds to every login initiation."""
        return {}

    # -- what an admin would type into the tool --
    @property
    def registration(self) -> dict:
        return {"name": f"Test {self.product}", "issuer": self.issuer, "client_id": self.client_id,
                "auth_login_url": self.authorize_url, "auth_token_url": self.token_url,
                "key_set_url": self.jwks_url, "deployment_ids": [self.deployment_id]}

    @property
    def active_key(self) -> KeyPair:
        return self.keys[-1]

    def rotate_key(self) -> KeyPair:
        """Publish a new key and sign with it from now on (the old one stays published)."""
        self.keys.append(KeyPair.generate())
        return self.active_key

    # -- id_tokens --
    def claims_for(self, user_key: str, nonce: str, message_type: str | None = None) -> dict:
        user = self.users[user_key]
        now = int(time.time())
        message_type = message_type or self.message_type
        claims = {
            "iss": self.issuer, "aud": self.client_id, "sub": user.sub, "iat": now, "exp": now + 300,
            "nonce": nonce, "name": user.name, "email": user.email,
            LTI + "message_type": message_type, LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id, LTI + "target_link_uri": "http://localhost:5000/lti/launch",
            LTI + "roles": list(user.roles),
            LTI + "context": {"id": self.context_id, "label": "BARG-101", "title": f"Course {self.context_id}"},
            LTI + "tool_platform": {"guid": "platform-guid", "product_family_code": self.product},
        }
        claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                      "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": self.lineitems_url}
        claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"] = {
            "context_memberships_url": f"{self.base_url}/{self.context_id}/memberships", "service_versions": ["2.0"]}
        if message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": self.resource_link_id, "title": "Bargaining Certificate"}
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.base_url + "/deep_link_return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": True}
        for name, value in self.claim_overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict, key: KeyPair | None = None, headers: dict | None = None,
             algorithm: str = "RS256") -> str:
        key = key or self.active_key
        header = {"kid": key.kid}
        header.update(headers or {})
        return jwt.encode(claims, key.private_pem, algorithm=algorithm, headers=header)

    @property
    def lineitems_url(self) -> str:
        return f"{self.base_url}/{self.context_id}/lineitems"

    def add_line_item(self, label="Workshop", score_maximum=100, resource_link_id=None, resource_id=None,
                      tag=None) -> str:
        """Make a gradebook column (as the LMS does when an activity accepts grades); return its URL."""
        url = f"{self.lineitems_url}/{len(self.line_items) + 1}"
        self.line_items[url] = {"id": url, "label": label, "scoreMaximum": score_maximum,
                                "resourceLinkId": resource_link_id, "resourceId": resource_id, "tag": tag}
        return url

    def add_members(self, count: int, role: str = "Learner", prefix: str = "roster") -> list[dict]:
        """Put people on the course roster (NRPS), including some who never launched the tool."""
        added = []
        for _ in range(count):
            member = {"status": "Active", "user_id": f"{prefix}-{len(self.members) + 1}",
                      "name": f"Roster Member {len(self.members) + 1}", "given_name": "Roster",
                      "family_name": f"Member {len(self.members) + 1}",
                      "email": f"{prefix}{len(self.members) + 1}@example.org", "roles": [MEMBERSHIP + role]}
            self.members.append(member)
            added.append(member)
        return added

    def expire_tokens(self):
        """Make every access token issued so far invalid (the LMS answers 401 to them)."""
        self.tokens.clear()

    # -- the HTTP side --
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {
            "/jwks": self._jwks, "/authorize": self._authorize, "/token": self._token,
            "/.well-known/openid-configuration": self._openid_configuration, "/register": self._register,
            "/course": self._course_page, "/post_message_forwarding": self._storage_frame,
            f"/{self.context_id}/lineitems": self._lineitems, f"/{self.context_id}/memberships": self._memberships,
        }.get(request.path)
        if handler is None and request.path.startswith(f"/{self.context_id}/lineitems/"):
            handler = self._line_item
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _authorized(self, request, scope: str) -> bool:
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        return scope in self.tokens.get(token, ())

    def _client_of(self, request) -> str | None:
        return self.token_clients.get((request.headers.get("Authorization") or "").removeprefix("Bearer "))

    def _visible(self, request, url: str) -> bool:
        """Whether the registration of this request's token may see the line item."""
        owner = self.line_item_clients.get(url)
        return owner is None or owner == self._client_of(request)

    def client_ids(self) -> set[str]:
        """The client ids of the tool's registrations in this LMS (one, unless the LMS has several)."""
        return {self.client_id}

    def _lineitems(self, request):
        if not self._authorized(request, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"):
            return Response("unauthorized", status=401)
        if request.method == "POST":
            body = request.get_json()
            url = self.add_line_item(body.get("label"), body.get("scoreMaximum"), body.get("resourceLinkId"),
                                     body.get("resourceId"), body.get("tag"))
            self.line_item_clients[url] = self._client_of(request)
            return Response(json.dumps(self.line_items[url]), status=201,
                            mimetype="application/vnd.ims.lis.v2.lineitem+json")
        items = [item for url, item in self.line_items.items() if self._visible(request, url)]
        rl = request.args.get("resource_link_id")
        if rl:
            items = [i for i in items if i.get("resourceLinkId") == rl]
        return Response(json.dumps(items), mimetype="application/vnd.ims.lis.v2.lineitemcontainer+json")

    def _line_item(self, request):
        url = self.base_url + request.path
        if request.path.endswith("/scores") and request.method == "POST":
            return self._score(request, url.removesuffix("/scores"))
        if url not in self.line_items or not self._visible(request, url):
            return Response("no such line item", status=404)
        return Response(json.dumps(self.line_items[url]), mimetype="application/vnd.ims.lis.v2.lineitem+json")

    def _score(self, request, line_item_url):
        with self._lock:
            self.score_requests += 1
        if self.score_delay:
            time.sleep(self.score_delay)
        if self.score_failures:
            failure = self.score_failures.pop(0)
            if failure == "timeout":
                time.sleep(3)
                return Response("too slow", status=504)
            if isinstance(failure, tuple) and failure[0] == "retry-after":
                return Response("slow down", status=429, headers={"Retry-After": str(failure[1])})
            return Response(json.dumps({"error": f"injected {failure}"}), status=failure, mimetype="application/json")
        if not self._authorized(request, "https://purl.imsglobal.org/spec/lti-ags/scope/score"):
            return Response(json.dumps({"error": "invalid_token"}), status=401, mimetype="application/json")
        if request.content_type != "application/vnd.ims.lis.v1.score+json":
            return Response("wrong content type", status=415)
        if line_item_url not in self.line_items or not self._visible(request, line_item_url):
            return Response("no such line item", status=404)
        body = request.get_json()
        with self._lock:
            refusal = self._not_newer(line_item_url, body)
            if refusal is not None:
                return refusal
            self.scores.append(dict(body, lineItem=line_item_url))
            self.results[(line_item_url, body["userId"])] = dict(body)
        if self.score_release is not None:  # stored; the answer waits (the test kills the tool meanwhile)
            self.score_release.wait(60)
        if self.score_stall:
            time.sleep(self.score_stall)
        if self.score_drip:
            def drip():
                for _ in range(40):
                    time.sleep(self.score_drip)
                    yield b" "
            return Response(drip(), status=200, mimetype="application/json")
        return Response("", status=204)

    def set_result(self, line_item_url: str, user_id: str, timestamp: str, score: float = 1.0):
        """A grade entered in the LMS itself (by a teacher, at `timestamp`)."""
        self.results[(line_item_url, user_id)] = {"userId": user_id, "scoreGiven": score, "timestamp": timestamp}

    def _not_newer(self, line_item_url, body):
        held = self.results.get((line_item_url, body.get("userId")))
        if not self.score_order or held is None:
            return None
        new, old = _parse_time(body["timestamp"]), _parse_time(held["timestamp"])
        if self.score_order == "moodle" and int(old) >= int(new):
            return Response(json.dumps({"error": f"Refusing score with an earlier timestamp for item 7 and user "
                                                 f"{body['userId']}"}), status=409, mimetype="application/json")
        if (self.score_order == "canvas" and new < old) or (self.score_order == "not-newer-400" and new <= old):
            return Response(json.dumps({"errors": [{"message": f"Provided timestamp of {body['timestamp']} before "
                                                               f"last updated timestamp of {held['timestamp']}"}]}),
                            status=400, mimetype="application/json")
        return None

    def _memberships(self, request):
        if not self._authorized(request,
                                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"):
            return Response("unauthorized", status=401)
        page = int(request.args.get("page", "1"))
        size = self.members_page_size
        chunk = self.members[(page - 1) * size: page * size]
        headers = {}
        if page * size < len(self.members):
            # Capitals in the next URL on purpose: pylti1p3 lower-cases the Link header and breaks such URLs.
            headers["Link"] = f'<{self.base_url}/{self.context_id}/memberships?page={page + 1}&Sort=Name>; rel="next"'
        body = {"id": request.url, "context": {"id": self.context_id}, "members": chunk}
        return Response(json.dumps(body), headers=headers,
                        mimetype="application/vnd.ims.lti-nrps.v2.membershipcontainer+json")

    def _jwks(self, request):
        self.jwks_fetches += 1
        return Response(json.dumps({"keys": [k.jwk for k in self.keys]}), mimetype="application/json")

    def _authorize(self, request):
        params = request.values
        for name, expected in (("scope", "openid"), ("response_type", "id_token"), ("response_mode", "form_post"),
                               ("prompt", "none"), ("client_id", self.client_id)):
            if params.get(name) != expected:
                return Response(f"bad {name}", status=400)
        if not params.get("nonce") or not params.get("state") or not params.get("redirect_uri"):
            return Response("missing nonce, state or redirect_uri", status=400)
        user_key = params.get("login_hint")
        if user_key not in self.users:
            return Response("unknown login_hint", status=400)
        message_type = self._message_type_for(params.get("lti_message_hint"))
        id_token = self.sign(self.claims_for(user_key, params["nonce"], message_type))
        body = (f'<form method="post" action="{html.escape(params["redirect_uri"])}">'
                f'<input type="hidden" name="id_token" value="{id_token}">'
                f'<input type="hidden" name="state" value="{html.escape(params["state"])}"></form>'
                '<script>document.forms[0].submit()</script>')
        return Response(body, mimetype="text/html")

    def _message_type_for(self, hint: str | None) -> str | None:
        return "LtiDeepLinkingRequest" if hint == "deep-link" else None

    def _course_page(self, request):
        """A course page that frames the tool and, as Canvas does, a hidden `post_message_forwarding` frame served
        from the platform's authorization origin that keeps the tool's data (LTI platform storage)."""
        tool_login = request.args["tool_login"]
        # storage_origin: where the storage frame is served from (a test gives another origin than the platform's)
        storage_origin = request.args.get("storage_origin", self.base_url)
        src, storage = html.escape(tool_login), html.escape(storage_origin)
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course</title></head><body>
<h1>Course page</h1><iframe name="tool" title="Bargaining Certificate" src="{src}" width="900" height="700"></iframe>
<iframe name="post_message_forwarding" title="Platform storage" src="{storage}/post_message_forwarding" hidden></iframe>
</body></html>"""
        return Response(body, mimetype="text/html")

    def _storage_frame(self, request):
        """The platform storage frame: data kept per sender origin, answers sent to that origin only."""
        time.sleep(self.storage_frame_delay)
        body = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Storage</title></head><body>
<script>
  // Counts are of distinct requests: a tool may send a message again (same message_id) until it is answered.
  var store = {}, seen = {}; window.putCount = 0; window.getCount = 0;
  window.addEventListener("message", function (event) {
    var m = event.data || {}, reply = { message_id: m.message_id }, key = event.origin + " " + m.key;
    var first = !seen[m.message_id]; seen[m.message_id] = true;
    if (m.subject === "lti.put_data") {
      store[key] = m.value; if (first) window.putCount++; reply.subject = "lti.put_data.response"; """ \
            """reply.key = m.key; reply.value = m.value;
    } else if (m.subject === "lti.get_data") {
      if (first) window.getCount++; reply.subject = "lti.get_data.response"; reply.key = m.key; """ \
            """reply.value = store[key];
    } else { return; }
    event.source.postMessage(reply, event.origin);
  });
</script></body></html>"""
        return Response(body, mimetype="text/html")

    def _token(self, request):
        """OAuth2 client credentials with a JWT assertion signed by the tool (checked against its JWKS)."""
        self.token_requests += 1
        if self.token_answer is not None:
            status, body, mimetype = self.token_answer
            return Response(body, status=status, mimetype=mimetype)
        form = request.form
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return Response(json.dumps({"error": "unsupported_grant_type"}), status=400, mimetype="application/json")
        try:
            assertion = form.get("client_assertion", "")
            jwks = self.tool_jwks() if callable(self.tool_jwks) else self.tool_jwks
            kid = jwt.get_unverified_header(assertion).get("kid")
            jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
            claims = jwt.decode(assertion, RSAAlgorithm.from_jwk(json.dumps(jwk)), algorithms=["RS256"],
                                audience=self.token_url)
            assert claims["iss"] == claims["sub"] and claims["sub"] in self.client_ids()
        except Exception as exc:  # noqa: BLE001 - any bad assertion is the client's error
            return Response(json.dumps({"error": "invalid_client", "error_description": str(exc)}), status=401,
                            mimetype="application/json")
        token = uuid.uuid4().hex
        self.tokens[token] = set(form.get("scope", "").split())
        self.token_clients[token] = claims["sub"]
        return Response(json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime,
                                    "scope": form.get("scope", "")}), mimetype="application/json")

    def _openid_configuration(self, request):
        if request.headers.get("Authorization") != f"Bearer {self.registration_token}":
            return Response("unauthorized", status=401)
        return Response(json.dumps({
            "issuer": self.issuer, "authorization_endpoint": self.base_url + "/authorize",
            "token_endpoint": self.base_url + "/token", "jwks_uri": self.base_url + "/jwks",
            "registration_endpoint": self.base_url + "/register",
            "scopes_supported": ["openid", "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                                 "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                                 "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": self.product, "version": "4.5",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}]},
        }), mimetype="application/json")

    def _register(self, request):
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token != self.registration_token:
            return Response("unauthorized", status=401)
        if token in self.used_registration_tokens:
            return Response(json.dumps({"error": "token_already_used"}), status=401, mimetype="application/json")
        self.used_registration_tokens.add(token)
        body = request.get_json()
        self.registrations.append(body)
        tool_config = {"deployment_id": self.deployment_id} if self.product == "moodle" else {}
        answer = dict(body, client_id=self.client_id)
        answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] = dict(
            body["https://purl.imsglobal.org/spec/lti-tool-configuration"], **tool_config)
        return Response(json.dumps(answer), status=200, mimetype="application/json")

    # -- driving a browser-like flow through the tool --
    def authorize(self, location: str) -> dict:
        """Follow the tool's redirect to this platform over real HTTP; return the form it posts back."""
        assert location.startswith(self.authorize_url), location
        response = requests.get(location, timeout=10)
        assert response.status_code == 200, response.text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', response.text))
        fields["action"] = html.unescape(re.search(r'action="([^"]+)"', response.text).group(1))
        return fields


def _parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()  # Python 3.11 reads the trailing "Z"


def login_params(emulator: PlatformEmulator, user: str = "member", **extra) -> dict:
    """Return the login initiation parameters the platform sends (Moodle adds client_id and deployment)."""
    params = {"iss": emulator.issuer, "login_hint": user, "target_link_uri": "http://localhost:5000/lti/launch",
              "lti_message_hint": "resource", "client_id": emulator.client_id,
              "lti_deployment_id": emulator.deployment_id, **emulator.login_extras()}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def state_and_nonce(location: str) -> tuple[str, str]:
    """Read the state and nonce the tool put in its redirect to the platform."""
    query = parse_qs(urlparse(location).query)
    return query["state"][0], query["nonce"][0]


def random_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------------------------
# Moodle, as its mod/lti source behaves (startltiadvregistration.php, openid-configuration.php,
# openid-registration.php, classes/local/ltiopenid/registration_helper.php).
# ---------------------------------------------------------------------------------------------------------------

def _with_params(url: str, **params) -> str:
    """Add query parameters to a URL, keeping its own (as moodle_url->param and Canvas's Addressable do)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))


@dataclass
class MoodleEmulator(PlatformEmulator):
    """Moodle 4.x: issuer = wwwroot, endpoints under mod/lti/, tool types that start pending.

    Dynamic Registration as Moodle does it: the admin pastes the tool URL, Moodle redirects with
    `openid_configuration` and a `registration_token`, a JWT signed with Moodle's own LTI key,
    {"sub": <new 15-character client id>, "scope": "reg"} for a new tool, or {"sub": <that tool type's id>,
    "scope": "reg-update"} when the tool URL's site already has tools and the admin chooses Update next to one (rather
    than "Register as a new external tool"); both expire in an hour. The configuration
    needs no token. A new registration creates a *pending* tool type whose id is the deployment id; reusing a token
    whose client id exists is "token_already_used" (401). An update keeps the type's client id, id (deployment) and
    state, and takes the new settings (which resets "Tool configuration usage").
    """

    product: str = "moodle"
    version: str = "4.5.6 (Build: 20250811)"
    #: Tool types by id: {"clientid", "state" ("pending"/"configured"), "name", "coursevisible", "registration"}.
    tool_types: dict = field(default_factory=dict)
    #: Login hints launch.php has put in the session and auth.php has not used yet (hint -> message type), and how
    #: often a spent or unknown hint came back (auth.php answers "invalid_request").
    open_hints: dict = field(default_factory=dict)
    refused_hints: int = 0
    _hints_issued: int = 0
    #: The tool's login and launch URLs, for the activity page (view.php / launch.php).
    tool_login_url: str | None = None
    tool_launch_url: str | None = None

    def login_extras(self) -> dict:
        return {"lti_message_hint": self.issue_hint()}

    def issue_hint(self, message_type: str | None = None) -> str:
        """What launch.php keeps in the member's session when they open the activity (the activity's id)."""
        self._hints_issued += 1
        hint = str(100 + self._hints_issued)
        self.open_hints[hint] = message_type
        return hint

    def _message_type_for(self, hint: str | None) -> str | None:
        return self.open_hints.pop(hint, None)

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/mod/lti/auth.php"

    @property
    def token_url(self) -> str:
        return self.base_url + "/mod/lti/token.php"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/mod/lti/certs.php"

    @property
    def openid_configuration_url(self) -> str:
        return self.base_url + "/mod/lti/openid-configuration.php"

    def start_registration(self, tool_url: str, update_type: int | None = None) -> str:
        """Where Add LTI Advantage sends the admin's browser: a new tool, or Update of tool type `update_type`."""
        now = int(time.time())
        sub, scope = (str(update_type), "reg-update") if update_type else (uuid.uuid4().hex[:15], "reg")
        token = self.sign({"sub": sub, "scope": scope, "iat": now, "exp": now + 3600})
        return _with_params(tool_url, openid_configuration=self.openid_configuration_url, registration_token=token)

    def activate(self, type_id: int) -> None:
        """Click Activate on a pending tool's card."""
        self.tool_types[type_id]["state"] = "configured"

    def type_of(self, client_id: str) -> int | None:
        return next((i for i, t in self.tool_types.items() if t["clientid"] == client_id), None)

    def client_ids(self) -> set[str]:
        return {self.client_id} | {t["clientid"] for t in self.tool_types.values()}

    def add_tool_by_hand(self, name: str = "Bargaining Certificate (by hand)") -> int:
        """Manage tools › configure a tool manually: an active tool type with a client id Moodle makes up."""
        type_id = max(self.tool_types, default=0) + 1
        self.tool_types[type_id] = {"clientid": uuid.uuid4().hex[:15], "state": "configured", "name": name,
                                    "coursevisible": "preconfigured", "registration": {}}
        return type_id

    def use_tool(self, type_id: int, resource_link_id: str | None = None) -> None:
        """Launch through tool type `type_id` from now on (its client id and deployment id), from one of its
        activities (a resource link belongs to one tool type)."""
        self.client_id, self.deployment_id = self.tool_types[type_id]["clientid"], str(type_id)
        self.resource_link_id = resource_link_id or f"activity-of-type-{type_id}"

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {"/mod/lti/auth.php": self._authorize, "/mod/lti/token.php": self._token,
                   "/mod/lti/certs.php": self._jwks, "/mod/lti/openid-configuration.php": self._openid_configuration,
                   "/mod/lti/openid-registration.php": self._register,
                   "/mod/lti/toolconfigure.php": self._manage_tools, "/mod/lti/view.php": self._view,
                   "/mod/lti/launch.php": self._launch,
                   "/mod/lti/startltiadvregistration.php": self._start_registration}.get(request.path)
        if handler is None:
            return super()._wsgi(environ, start_response)
        return handler(request)(environ, start_response)

    def _manage_tools(self, request):
        """Manage tools › Add LTI Advantage: the registration in an iframe; its close message ends it."""
        body = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Manage tools</title></head><body>
<h1>Manage tools</h1><div id="external-registration-template-container"><iframe title="Tool registration"
 src="startltiadvregistration.php?url=""" + html.escape(quote(request.args["url"], safe="")) + """" width="900" \
height="700"></iframe></div>
<script>
  window.closedWith = null;
  window.addEventListener("message", function (e) {
    if (e.data && e.data.subject === "org.imsglobal.lti.close") {
      window.closedWith = e.data.subject;
      document.getElementById("external-registration-template-container").innerHTML = "";
    }
  }, false);
</script></body></html>"""
        return Response(body, mimetype="text/html")

    def _start_registration(self, request):
        url = request.args["url"]
        if "type" not in request.args and self.tool_types:
            # The URL's site already has tools: Moodle asks whether to update one or register a new one.
            rows = "".join(f'<li>{html.escape(t.get("name", ""))} <a href="?url={quote(url, safe="")}&amp;type={i}">'
                           "Update</a></li>" for i, t in self.tool_types.items())
            return Response(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tools</title></head>'
                            f"<body><p>There are existing tools attached to the domain of the registration.</p>"
                            f'<ul>{rows}</ul><a href="?url={quote(url, safe="")}&amp;type=0">Register as a new '
                            "external tool</a></body></html>", mimetype="text/html")
        update_type = request.args.get("type", type=int) or None
        return Response("", status=303, headers={"Location": self.start_registration(url, update_type=update_type)})

    def _authorize(self, request):
        """mod/lti/auth.php: the hint must be the one in the session, which is unset after its first use (even a
        refused one); without it, the answer is an error posted back to the tool ("invalid_request")."""
        type_id = self.type_of(request.values.get("client_id", ""))
        if type_id is not None and self.tool_types[type_id]["state"] != "configured":
            return Response("invalid_request: the tool is not active", status=400)
        if request.values.get("lti_message_hint") not in self.open_hints:
            self.refused_hints += 1
            redirect_uri = request.values.get("redirect_uri")
            if not redirect_uri:
                return Response("Invalid request", status=400)
            body = (f'<form method="post" action="{html.escape(redirect_uri)}">'
                    '<input type="hidden" name="error" value="invalid_request">'
                    f'<input type="hidden" name="state" value="{html.escape(request.values.get("state", ""))}">'
                    '</form><script>document.forms[0].submit()</script>')
            return Response(body, mimetype="text/html")
        return super()._authorize(request)

    def _view(self, request):
        """mod/lti/view.php with the launch container "Embed": the course page frames launch.php."""
        user = request.args.get("user", "member")
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course: Bargaining</title></head>
<body><h1>Bargaining Certificate activity</h1><iframe id="contentframe" name="contentframe" \
title="Bargaining Certificate"
 src="launch.php?user={html.escape(quote(user))}" width="900" height="700"></iframe></body></html>"""
        return Response(body, mimetype="text/html")

    def _launch(self, request):
        """mod/lti/launch.php: keep a fresh hint in the session and post the login initiation to the tool."""
        fields = {"iss": self.issuer, "target_link_uri": self.tool_launch_url,
                  "login_hint": request.args.get("user", "member"), "lti_message_hint": self.issue_hint(),
                  "client_id": self.client_id, "lti_deployment_id": self.deployment_id}
        inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
        body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Launch</title></head><body>'
                f'<form method="post" action="{html.escape(self.tool_login_url)}">{inputs}</form>'
                "<script>document.forms[0].submit()</script></body></html>")
        return Response(body, mimetype="text/html")

    def _openid_configuration(self, request):
        scopes = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                  "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                  "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                  "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                  "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                  "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting", "openid"]
        return Response(json.dumps({
            "issuer": self.issuer, "token_endpoint": self.token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.jwks_url, "authorization_endpoint": self.authorize_url,
            "registration_endpoint": self.base_url + "/mod/lti/openid-registration.php",
            "scopes_supported": scopes, "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle", "version": self.version,
                "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                "placements": ["AddContentMenu"], "variables": ["basic-lti-launch-request", "Context.id"]},
        }, indent=4), mimetype="application/json")

    def _register(self, request):
        authorization = request.headers.get("Authorization") or ""
        if not authorization.startswith("Bearer "):
            return Response("missing_registration_token", status=401)
        try:
            token = jwt.decode(authorization[7:].strip(), RSAAlgorithm.from_jwk(json.dumps(self.active_key.jwk)),
                               algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            return Response(str(exc), status=500)  # Moodle lets the JWT library's exception escape
        if token.get("scope") == "reg":
            if self.type_of(token["sub"]) is not None:
                return Response("token_already_used", status=401)
            type_id, clientid = None, token["sub"]
        elif token.get("scope") == "reg-update":
            type_id = int(token["sub"])
            if type_id not in self.tool_types:
                return Response("Unknown client", status=400)
            clientid = self.tool_types[type_id]["clientid"]
        else:
            return Response("Incorrect scope", status=403)
        if request.method == "GET":
            return Response(json.dumps(self.tool_types[type_id]["registration"] if type_id else {}),
                            mimetype="application/json")
        payload = request.get_json(silent=True) or {}
        problem = self._registration_problem(payload)
        if problem:
            return Response(problem, status=400)
        self.registrations.append(payload)
        if type_id is None:
            type_id = max(self.tool_types, default=0) + 1
            self.tool_types[type_id] = {"clientid": clientid, "state": "pending"}
        # New or updated, the settings are the registration's (so "Tool configuration usage" goes back to
        # "preconfigured"); the state, client id and id (the deployment) stay.
        self.tool_types[type_id].update(name=payload["client_name"], coursevisible="preconfigured",
                                        registration=payload)
        self.client_id, self.deployment_id = clientid, str(type_id)
        tool_configuration = payload["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        answer = {
            "client_id": clientid, "response_types": ["id_token"], "jwks_uri": payload["jwks_uri"],
            "initiate_login_uri": payload["initiate_login_uri"], "grant_types": ["client_credentials", "implicit"],
            "redirect_uris": payload["redirect_uris"], "application_type": "web",
            "token_endpoint_auth_method": "private_key_jwt", "client_name": payload["client_name"], "logo_uri": "",
            "scope": " ".join(s for s in payload.get("scope", "").split() if "lti-ags" in s or "lti-nrps" in s),
            "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                "version": "1.3.0", "deployment_id": str(type_id),
                "target_link_uri": tool_configuration.get("target_link_uri", ""),
                "domain": tool_configuration.get("domain", ""),
                "description": tool_configuration.get("description", ""),
                "messages": [{"type": "LtiDeepLinkingRequest", "target_link_uri": m.get("target_link_uri", "")}
                             for m in tool_configuration.get("messages", [])
                             if m.get("type") == "LtiDeepLinkingRequest"],
                "claims": ["sub", "iss", "name", "family_name", "given_name", "email"]},
        }
        return Response(json.dumps(answer), mimetype="application/json; charset=utf-8")

    @staticmethod
    def _registration_problem(payload: dict) -> str | None:
        for name in ("response_types", "initiate_login_uri", "redirect_uris", "client_name", "jwks_uri",
                     "token_endpoint_auth_method", "https://purl.imsglobal.org/spec/lti-tool-configuration"):
            if not payload.get(name):
                return f"missing required attribute {name}"
        tool_configuration = payload["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        if not tool_configuration.get("domain"):
            return "missing_domain"
        target = tool_configuration.get("target_link_uri") or "https://" + tool_configuration["domain"]
        if urlparse(target).netloc.removeprefix("www.") != tool_configuration["domain"].removeprefix("www."):
            return "domain_targetlinkuri_mismatch"
        if "id_token" not in payload["response_types"]:
            return "invalid_response_types"
        if not isinstance(payload["redirect_uris"], list):
            return "invalid_redirect_uris"
        if payload["token_endpoint_auth_method"] != "private_key_jwt":
            return "invalid_token_endpoint_auth_method"
        if payload.get("application_type") not in (None, "", "web"):
            return "invalid_application_type"
        return None


# ---------------------------------------------------------------------------------------------------------------
# Canvas, as its source behaves (Lti::IMS::DynamicRegistrationController, SecurityController#openid_configuration,
# Schemas::Lti::IMS::OidcRegistration / LtiToolConfiguration, the LTI launch docs).
# ---------------------------------------------------------------------------------------------------------------

#: Canvas's own placements (Lti::ResourcePlacement::PLACEMENTS), as a schema without ContentArea accepts them.
CANVAS_PLACEMENTS = (
    "account_navigation", "assignment_edit", "assignment_group_menu", "assignment_index_menu", "assignment_menu",
    "assignment_selection", "assignment_view", "collaboration", "conference_selection", "course_assignments_menu",
    "course_home_sub_navigation", "course_navigation", "course_settings_sub_navigation",
    "discussion_topic_index_menu", "discussion_topic_menu", "editor_button", "file_index_menu", "file_menu",
    "global_navigation", "homework_submission", "link_selection", "migration_selection", "module_group_menu",
    "module_index_menu", "module_index_menu_modal", "module_menu", "module_menu_modal", "post_grades",
    "quiz_index_menu", "quiz_menu", "resource_selection", "student_context_card", "submission_type_selection",
    "tool_configuration", "top_navigation", "user_navigation", "wiki_index_menu", "wiki_page_menu",
)
CANVAS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://canvas.instructure.com/lti/public_jwk/scope/update",
    "https://canvas.instructure.com/lti/account_lookup/scope/show",
    "https://canvas.instructure.com/lti-ags/progress/scope/show",
    "https://canvas.instructure.com/lti/page_content/show",
)
CANVAS_TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
_CANVAS_DOMAIN = re.compile(r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*"
                            r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])(:[0-9]{1,5})?$")


def canvas_deployment_id(number: int, context: str) -> str:
    """A Canvas deployment id: the installing context's id and its 40-hex LTI id (ContextExternalTool)."""
    return f"{number}:{hashlib.sha1(context.encode()).hexdigest()}"


@dataclass
class CanvasEmulator(PlatformEmulator):
    """Canvas with the registrations feature. By default a self-hosted Canvas (issuer = its own address); give
    `issuer="https://canvas.instructure.com"` for the shared cloud issuer.

    Its registration token is Canvas's own JWT (uuid, user, root account and its domain, the registration URL),
    valid for an hour; the OpenID configuration reads it from the `registration_token` query parameter of the URL it
    hands out. The registration answer has the developer key's global id as client_id, the new root-account
    deployment's id at the top level (`<context id>:<40 hex>`) and `openid` appended to `scope`. Its schema lists
    Canvas's own placements only (the releases that refused ContentArea with 422).
    """

    product: str = "canvas"
    client_id: str = "10000000000042"
    deployment_id: str = field(default_factory=lambda: canvas_deployment_id(1, "root-account"))
    account_name: str = "Springfield Public Schools"
    account_lti_guid: str = "pNu5F9EoIATW6XqZ33C5tiqomb7bFJ4IGWFoCFy6:canvas-lms"
    region: str = "us-east-1"
    environment: str = "prod"
    #: Developer keys made by registration: global id -> registration body.
    developer_keys: dict = field(default_factory=dict)
    _secret: str = field(default_factory=lambda: uuid.uuid4().hex * 2)

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/api/lti/authorize_redirect"

    @property
    def token_url(self) -> str:
        return self.base_url + "/login/oauth2/token"

    @property
    def jwks_url(self) -> str:
        return self.base_url + "/api/lti/security/jwks"

    def login_extras(self) -> dict:
        return {"canvas_region": self.region, "canvas_environment": self.environment,
                "lti_storage_target": "post_message_forwarding"}

    def start_registration(self, tool_url: str, lifetime: int = 3600) -> str:
        """What + LTI Registration (Admin › Developer Keys) loads in its frame for the tool's registration URL."""
        now = int(time.time())
        token = jwt.encode({"uuid": str(uuid.uuid4()), "initiated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "user_id": 1, "root_account_global_id": 10000000000001,
                            "root_account_domain": urlparse(self.base_url).netloc, "registration_url": tool_url,
                            "exp": now + lifetime}, self._secret, algorithm="HS512")
        configuration = _with_params(self.base_url + "/api/lti/security/openid-configuration",
                                     registration_token=token)
        return _with_params(tool_url, registration_token=token, openid_configuration=configuration)

    def install(self, number: int, context: str) -> str:
        """Install the key in a sub-account or course: a new deployment, which launches from there carry."""
        self.deployment_id = canvas_deployment_id(number, context)
        return self.deployment_id

    def _token_claims(self, token: str) -> dict | None:
        try:
            return jwt.decode(token, self._secret, algorithms=["HS512"])
        except jwt.PyJWTError:
            return None

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {"/api/lti/authorize_redirect": self._authorize, "/login/oauth2/token": self._token,
                   "/api/lti/security/jwks": self._jwks,
                   "/api/lti/security/openid-configuration": self._openid_configuration,
                   "/api/lti/registrations": self._register,
                   "/accounts/1/developer_keys": self._developer_keys,
                   "/accounts/1/developer_keys/dr_iframe": self._dr_iframe}.get(request.path)
        if handler is None:
            return super()._wsgi(environ, start_response)
        return handler(request)(environ, start_response)

    def _developer_keys(self, request):
        """+ LTI Registration: Canvas's wizard frames its dr_iframe page, which frames the tool."""
        start = self.start_registration(request.args["registration_url"])
        body = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Developer Keys</title></head>
<body><h1>Developer Keys</h1><iframe title="Install app" src="/accounts/1/developer_keys/dr_iframe?url=""" \
            + html.escape(quote(start, safe="")) + """"
 width="950" height="720"></iframe>
<script>
  window.closedWith = null;
  window.addEventListener("message", function (e) {
    if (e.data && e.data.subject === "org.imsglobal.lti.close") { window.closedWith = e.data.subject; }
  });
</script></body></html>"""
        return Response(body, mimetype="text/html")

    def _dr_iframe(self, request):
        """app/views/lti/ims/dynamic_registration/dr_iframe: forwards the close message from the tool's origin only."""
        body = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Registration</title></head><body>
<script>
  var toolOrigin = new URL(""" + json.dumps(request.args["url"]).replace("</", "<\\/") + """).origin;
  var onMessage = function (message) {
    if (message.data.subject === "org.imsglobal.lti.close" && message.origin === toolOrigin) {
      window.removeEventListener("message", onMessage);
      window.parent.postMessage(message.data, "*");
    }
  };
  window.addEventListener("message", onMessage);
</script>
<iframe title="Tool registration" src=\"""" + html.escape(request.args["url"]) + """" \
style="width: 100%; height: 600px; border: 0"></iframe></body></html>"""
        return Response(body, mimetype="text/html")

    def _openid_configuration(self, request):
        token = request.args.get("registration_token")
        if not token:
            return Response(json.dumps({"error": "Access token missing (You must include the registration_token "
                                                 "parameter)."}), status=401, mimetype="application/json")
        if self._token_claims(token) is None:
            return Response(json.dumps({"errors": [{"message": "Invalid access token"}]}), status=401,
                            mimetype="application/json")
        return Response(json.dumps({
            "issuer": self.issuer, "authorization_endpoint": self.authorize_url,
            "registration_endpoint": self.base_url + "/api/lti/registrations", "jwks_uri": self.jwks_url,
            "token_endpoint": self.token_url, "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"], "scopes_supported": list(CANVAS_SCOPES),
            "response_types_supported": ["id_token"], "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "picture", "email", "name", "given_name", "family_name", "locale"],
            "subject_types_supported": ["public"], "authorization_server": urlparse(self.base_url).netloc,
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "canvas", "version": "vCloud",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest", "placements": ["course_navigation", "link_selection"]},
                    {"type": "LtiDeepLinkingRequest",
                     "placements": ["assignment_selection", "link_selection", "editor_button"]}],
                "variables": ["ResourceLink.id", "Canvas.user.id", "Canvas.course.id"],
                "https://canvas.instructure.com/lti/account_name": self.account_name,
                "https://canvas.instructure.com/lti/account_lti_guid": self.account_lti_guid},
        }), mimetype="application/json")

    def _register(self, request):
        claims = self._token_claims((request.headers.get("Authorization") or "").removeprefix("Bearer "))
        required = {"user_id", "initiated_at", "root_account_global_id", "root_account_domain", "exp", "uuid",
                    "registration_url"}
        if claims is None or not required <= set(claims):
            return Response(json.dumps({"errorMessage": "JWT did not include expected contents"}), status=401,
                            mimetype="application/json")
        payload = request.get_json(silent=True) or {}
        errors = self._schema_errors(payload)
        if claims["uuid"] in {k["guid"] for k in self.developer_keys.values()}:
            errors.append("guid has already been taken")
        if errors:
            return Response(json.dumps({"errors": errors}), status=422, mimetype="application/json")
        self.registrations.append(payload)
        client_id = str(10000000000042 + len(self.developer_keys))
        self.developer_keys[client_id] = {"guid": claims["uuid"], "registration": payload}
        # With lti_registrations_next, Canvas makes the root account's deployment (not yet available) at once.
        self.client_id, self.deployment_id = client_id, canvas_deployment_id(1, "root-account")
        scopes = [s for s in (payload.get("scope") or "").split() if s != "openid"]
        answer = {
            "client_id": client_id, "application_type": "web", "grant_types": ["client_credentials", "implicit"],
            "initiate_login_uri": payload["initiate_login_uri"], "redirect_uris": payload["redirect_uris"],
            "response_types": ["id_token"], "client_name": payload["client_name"], "jwks_uri": payload["jwks_uri"],
            "token_endpoint_auth_method": "private_key_jwt", "scope": " ".join(scopes + ["openid"]),
            CANVAS_TOOL_CONFIGURATION: {
                **payload[CANVAS_TOOL_CONFIGURATION],
                "https://canvas.instructure.com/lti/registration_config_url":
                    f"{self.base_url}/api/v1/accounts/1/lti_registrations/{len(self.developer_keys)}/view"},
            "registration_client_uri": f"{self.base_url}/api/lti/registrations/{len(self.developer_keys)}",
            "deployment_id": self.deployment_id,
        }
        return Response(json.dumps(answer), status=200, mimetype="application/json")

    @staticmethod
    def _schema_errors(payload: dict) -> list[str]:
        errors = []
        for name in ("application_type", "grant_types", "response_types", "redirect_uris", "initiate_login_uri",
                     "client_name", "jwks_uri", "token_endpoint_auth_method", CANVAS_TOOL_CONFIGURATION):
            if name not in payload:
                errors.append(f"The property '#/' did not contain a required property of '{name}'")
        if errors:
            return errors
        if payload["application_type"] != "web" or payload["token_endpoint_auth_method"] != "private_key_jwt":
            errors.append("application_type must be web and token_endpoint_auth_method private_key_jwt")
        if not {"client_credentials", "implicit"} <= set(payload["grant_types"]):
            errors.append("grant_types must contain client_credentials and implicit")
        tool_configuration = payload[CANVAS_TOOL_CONFIGURATION]
        for name in ("domain", "messages", "claims"):
            if name not in tool_configuration:
                errors.append(f"The property '#/{CANVAS_TOOL_CONFIGURATION}' did not contain a required property "
                              f"of '{name}'")
        if not _CANVAS_DOMAIN.match(tool_configuration.get("domain", "")):
            errors.append("domain does not match the pattern")
        allowed = set(CANVAS_PLACEMENTS) | {f"https://canvas.instructure.com/lti/{p}" for p in CANVAS_PLACEMENTS}
        for index, message in enumerate(tool_configuration.get("messages") or []):
            if message.get("type") not in ("LtiResourceLinkRequest", "LtiDeepLinkingRequest"):
                errors.append(f"messages/{index}/type is not a Canvas message type")
            for placement in message.get("placements") or []:
                if placement not in allowed:
                    errors.append(f"The property '#/{CANVAS_TOOL_CONFIGURATION}/messages/{index}/placements' value "
                                  f"\"{placement}\" did not match one of the allowed placements")
            if message.get("https://canvas.instructure.com/lti/visibility") not in (None, "admins", "members",
                                                                                     "public"):
                errors.append(f"messages/{index} visibility is not admins, members or public")
        return errors
