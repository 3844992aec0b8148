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

    # -- the HTTP side --
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        handler = {
            "/jwks": self._jwks, "/authorize": self._authorize, "/token": self._token,
            "/.well-known/openid-configuration": self._openid_configuration, "/register": self._register,
        }.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

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
                f'<input type="hidden" name="state" value="{html.escape(params["state"])}"></form>')
        return Response(body, mimetype="text/html")

    def _token(self, request):
        return Response(json.dumps({"error": "unsupported_grant_type"}), status=400, mimetype="application/json")

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
