"""Property-based fuzzing of Dynamic Registration (hypothesis): the registration page and form with arbitrary
parameters, and a hostile platform serving arbitrary configurations and registration answers. No input gives a
500, a refused request writes nothing, and nothing the platform answers in an error reaches the page."""
import json

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from lti_tool.extensions import db, limiter
from lti_tool.models import Platform, RegistrationInvitation
from lti_tool.services import invitations
from tests.test_outbound import HostileServer
from tests.test_registration import hidden_fields

MARKER = "HOSTILE-ANSWER-7f3a"


def fuzz(examples: int) -> settings:
    """Settings for a fixed, reproducible run of `examples` cases (the app and emulator are shared by all)."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12)
texts = st.text(max_size=60) | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=3000)


@pytest.fixture
def hostile(app, monkeypatch):
    monkeypatch.setattr(limiter, "enabled", False)  # thousands of requests from one address are the point here
    server = HostileServer()
    server.config = {}
    server.answer = (200, {})
    server.routes["/config"] = lambda r: Response(
        server.config if isinstance(server.config, bytes) else json.dumps(server.config),
        mimetype="application/json")
    server.routes["/register"] = lambda r: Response(json.dumps(server.answer[1]), status=server.answer[0],
                                                    mimetype="application/json")
    yield server
    server.stop()


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        platforms = db.session.scalar(sa.select(sa.func.count()).select_from(Platform))
        spent = db.session.scalar(sa.select(sa.func.count()).select_from(RegistrationInvitation).where(
            RegistrationInvitation.used_at.is_not(None)))
        return platforms, spent


def _same_origin_url(server):
    path = st.text(alphabet="abcdefghijklmnopqrstuvwxyz/._-%?=&", max_size=30)
    return path.map(lambda p: f"{server.url}/{p}")


ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint")


def _configurations(server):
    """Valid configurations, valid ones with a few fields broken, and arbitrary documents."""
    own = _same_origin_url(server)
    url = own | st.sampled_from([server.url + "/register", "https://sso.canvaslms.com/api/lti/security/jwks",
                                 "http://10.0.0.1/x", "javascript:alert(1)", "http://[::1", "http://h:99999/"]) | texts
    platform = st.fixed_dictionaries({}, optional={
        "product_family_code": st.sampled_from(["moodle", "canvas", "Moodle"]) | texts,
        "version": texts | json_values,
        "https://canvas.instructure.com/lti/account_name": texts | json_values,
    })
    valid = st.fixed_dictionaries({
        "issuer": st.just(server.url), "authorization_endpoint": own, "token_endpoint": own, "jwks_uri": own,
        "registration_endpoint": st.just(server.url + "/register"),
    }, optional={
        "scopes_supported": st.lists(texts | st.sampled_from(["openid", "https://purl.imsglobal.org/spec/lti-ags/"
                                                                       "scope/score"]), max_size=5) | json_values,
        "https://purl.imsglobal.org/spec/lti-platform-configuration": platform | json_values,
    })
    broken = st.tuples(valid, st.dictionaries(st.sampled_from(("issuer", " issuer ", *ENDPOINTS)),
                                              url | json_values, min_size=1, max_size=2)).map(
        lambda pair: {**pair[0], **pair[1]})
    return valid | broken | json_values | st.binary(max_size=50)


def _answers():
    identifier = st.text(min_size=1, max_size=30) | texts | st.integers() | json_values
    body = st.fixed_dictionaries({}, optional={
        "client_id": identifier, "deployment_id": identifier,
        "https://purl.imsglobal.org/spec/lti-tool-configuration": st.fixed_dictionaries(
            {}, optional={"deployment_id": identifier}) | json_values,
    }) | json_values
    error = st.just({"error": MARKER, "detail": f"<script>{MARKER}</script>"})
    return st.tuples(st.sampled_from([200, 201]), body) | st.tuples(st.sampled_from([400, 401, 422, 500]), error)


def test_a_hostile_platform_never_gets_a_500_and_a_refused_registration_writes_nothing(app, client, hostile):
    @fuzz(1200)
    @given(config=_configurations(hostile), answer=_answers(), token=st.none() | texts,
           confirm_duplicate=st.booleans())
    def run(config, answer, token, confirm_duplicate):
        hostile.config = config
        hostile.answer = answer
        params = {"openid_configuration": hostile.url + "/config"}
        if token is not None:
            params["registration_token"] = token
        before = _counts(app)
        page = client.get("/lti/register", query_string=params)
        assert page.status_code != 500, page.get_data(as_text=True)
        if page.status_code != 200:
            assert _counts(app) == before
            return
        fields = hidden_fields(page.get_data(as_text=True))
        if confirm_duplicate:
            fields["confirm_duplicate"] = "1"
        done = client.post("/lti/register", data=fields, headers={"Origin": "http://localhost:5000"})
        text = done.get_data(as_text=True)
        assert done.status_code != 500, text
        assert MARKER not in text  # the platform's error answers stay in the log
        if done.status_code >= 400:
            assert _counts(app) == before

    run()


def test_arbitrary_registration_requests_never_get_a_500_or_spend_the_invitation(app, client, hostile):
    app.config["REGISTRATION_WITHOUT_INVITATION"] = False
    with app.app_context():
        url = invitations.create("Fuzz University", app.config["PUBLIC_BASE_URL"]).url
        db.session.commit()
    real = url.split("invitation=")[1]
    hostile.config = {"issuer": hostile.url, **{name: f"{hostile.url}/{name}" for name in (
        "authorization_endpoint", "token_endpoint", "jwks_uri")}, "registration_endpoint": hostile.url + "/register"}
    hostile.answer = (500, {"error": MARKER})
    value = st.none() | texts | st.just(hostile.url + "/config") | st.just(real)
    fields = st.fixed_dictionaries({}, optional={name: value for name in (
        "openid_configuration", "registration_token", "invitation", "form_token", "confirm_duplicate")})

    @fuzz(1000)
    @given(method=st.sampled_from(["GET", "POST"]), data=fields,
           origin=st.none() | st.sampled_from(["http://localhost:5000", "null", "https://evil.example"]) | texts)
    def run(method, data, origin):
        data = {k: v for k, v in data.items() if v is not None}
        headers = {"Origin": origin} if origin and origin.isascii() and origin.isprintable() else {}
        if method == "GET":
            response = client.get("/lti/register", query_string=data, headers=headers)
        else:
            response = client.post("/lti/register", data=data, headers=headers)
        text = response.get_data(as_text=True)
        assert response.status_code != 500, text
        assert MARKER not in text
        assert response.status_code == 200 or _counts(app) == (0, 0)

    run()
    assert _counts(app) == (0, 0)
