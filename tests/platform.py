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
from urllib.parse import parse_qs, urlparse

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
    #: Roster (NRPS members) and its page size.
    members: list = field(default_factory=list)
    members_page_size: int = 50
    #: Access tokens issued, and how many token requests were made.
    tokens: dict = field(default_factory=dict)
    token_requests: int = 0
    token_lifetime: int = 3600

    def __post_init__(self):
        if not self.keys:
            self.keys = [KeyPair.generate()]
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self.issuer = self.issuer or self.base_url
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    # -- what an admin would type into the tool --
    @property
    def registration(self) -> dict:
        return {"name": f"Test {self.product}", "issuer": self.issuer, "client_id": self.client_id,
                "auth_login_url": self.base_url + "/authorize", "auth_token_url": self.base_url + "/token",
                "key_set_url": self.base_url + "/jwks", "deployment_ids": [self.deployment_id]}

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
            "/course": self._course_page,
            f"/{self.context_id}/lineitems": self._lineitems, f"/{self.context_id}/memberships": self._memberships,
        }.get(request.path)
        if handler is None and request.path.startswith(f"/{self.context_id}/lineitems/"):
            handler = self._line_item
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _authorized(self, request, scope: str) -> bool:
        token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
        return scope in self.tokens.get(token, ())

    def _lineitems(self, request):
        if not self._authorized(request, "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"):
            return Response("unauthorized", status=401)
        if request.method == "POST":
            body = request.get_json()
            url = self.add_line_item(body.get("label"), body.get("scoreMaximum"), body.get("resourceLinkId"),
                                     body.get("resourceId"), body.get("tag"))
            return Response(json.dumps(self.line_items[url]), status=201,
                            mimetype="application/vnd.ims.lis.v2.lineitem+json")
        items = list(self.line_items.values())
        rl = request.args.get("resource_link_id")
        if rl:
            items = [i for i in items if i.get("resourceLinkId") == rl]
        return Response(json.dumps(items), mimetype="application/vnd.ims.lis.v2.lineitemcontainer+json")

    def _line_item(self, request):
        url = self.base_url + request.path
        if request.path.endswith("/scores") and request.method == "POST":
            return self._score(request, url.removesuffix("/scores"))
        if url not in self.line_items:
            return Response("no such line item", status=404)
        return Response(json.dumps(self.line_items[url]), mimetype="application/vnd.ims.lis.v2.lineitem+json")

    def _score(self, request, line_item_url):
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
        if line_item_url not in self.line_items:
            return Response("no such line item", status=404)
        body = request.get_json()
        self.scores.append(dict(body, lineItem=line_item_url))
        return Response("", status=204)

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
        message_type = "LtiDeepLinkingRequest" if params.get("lti_message_hint") == "deep-link" else None
        id_token = self.sign(self.claims_for(user_key, params["nonce"], message_type))
        body = (f'<form method="post" action="{html.escape(params["redirect_uri"])}">'
                f'<input type="hidden" name="id_token" value="{id_token}">'
                f'<input type="hidden" name="state" value="{html.escape(params["state"])}"></form>'
                '<script>document.forms[0].submit()</script>')
        return Response(body, mimetype="text/html")

    def _course_page(self, request):
        """A course page that frames the tool and offers LTI client-side postMessage storage, as Canvas does."""
        tool_login = request.args["tool_login"]
        body = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course</title></head><body>
<h1>Course page</h1><iframe name="tool" title="Bargaining Certificate" src="%s" width="900" height="700"></iframe>
<script>
  var store = {}; window.putCount = 0; window.getCount = 0;
  window.addEventListener("message", function (event) {
    var m = event.data || {}, reply = { message_id: m.message_id };
    if (m.subject === "lti.capabilities") {
      reply.subject = "lti.capabilities.response";
      reply.supported_messages = [{ subject: "lti.put_data" }, { subject: "lti.get_data" }];
    } else if (m.subject === "lti.put_data") {
      store[m.key] = m.value; window.putCount++; reply.subject = "lti.put_data.response"; reply.key = m.key; reply.value = m.value;
    } else if (m.subject === "lti.get_data") {
      window.getCount++; reply.subject = "lti.get_data.response"; reply.key = m.key; reply.value = store[m.key];
    } else { return; }
    event.source.postMessage(reply, "*");
  });
</script></body></html>""" % html.escape(tool_login)
        return Response(body, mimetype="text/html")

    def _token(self, request):
        """OAuth2 client credentials with a JWT assertion signed by the tool (checked against its JWKS)."""
        self.token_requests += 1
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
                                audience=self.base_url + "/token")
            assert claims["iss"] == claims["sub"] == self.client_id
        except Exception as exc:  # noqa: BLE001 - any bad assertion is the client's error
            return Response(json.dumps({"error": "invalid_client", "error_description": str(exc)}), status=401,
                            mimetype="application/json")
        token = uuid.uuid4().hex
        self.tokens[token] = set(form.get("scope", "").split())
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
        assert location.startswith(self.base_url + "/authorize"), location
        response = requests.get(location, timeout=10)
        assert response.status_code == 200, response.text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', response.text))
        fields["action"] = html.unescape(re.search(r'action="([^"]+)"', response.text).group(1))
        return fields


def login_params(emulator: PlatformEmulator, user: str = "member", **extra) -> dict:
    """Return the login initiation parameters the platform sends (Moodle adds client_id and deployment)."""
    params = {"iss": emulator.issuer, "login_hint": user, "target_link_uri": "http://localhost:5000/lti/launch",
              "lti_message_hint": "resource", "client_id": emulator.client_id,
              "lti_deployment_id": emulator.deployment_id}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def state_and_nonce(location: str) -> tuple[str, str]:
    """Read the state and nonce the tool put in its redirect to the platform."""
    query = parse_qs(urlparse(location).query)
    return query["state"][0], query["nonce"][0]


def random_id() -> str:
    return uuid.uuid4().hex
