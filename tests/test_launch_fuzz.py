"""Property-based fuzzing of the launch endpoint (hypothesis): id_tokens signed for real with the platform's key,
after a real login, so every check runs; claims and header fields of every JSON type and size, with control
characters and lone surrogates. Never a 500, and a refused launch writes nothing."""
import json
import os
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_tool.extensions import db
from lti_tool.lti.launch import CLAIM_MEMBERS, CLAIM_TYPES
from lti_tool.models import Account, Course, Deployment, Enrolment, Launch, LoginState, Person, ResourceLink
from tests.platform import login_params, state_and_nonce
from tests.test_launch_hardening import sign_raw


def fuzz(examples: int) -> settings:
    """Settings for a fixed, reproducible run of `examples` cases (the app and emulator are shared by all).

    FUZZ_N overrides the count for a quick or a longer run.
    """
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


DELETE = object()
odd_strings = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\x1b[31mred", "tab\there", "line\nbreak", "\ud800", "x\udfff", "\u202eevil",
    "x" * 300, "y" * 5000, "https://purl.imsglobal.org/spec/lti/claim/x", "LtiResourceLinkRequest", "1.3.0",
    "1700000000", "-1", "1e400", "null", "tool-client-1", "deployment-1",
])
texts = (st.text(max_size=40) | odd_strings
         | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), max_size=20)
         | st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=2000))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**80, max_value=2**80) | st.floats(allow_nan=False,
                                                                                        allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10)
claim_names = st.sampled_from(sorted(str(c) for c in CLAIM_TYPES)) | texts
changes = st.lists(st.tuples(claim_names, st.just(DELETE) | json_values), min_size=1, max_size=3)
member_changes = st.lists(
    st.tuples(st.sampled_from(sorted(str(c) for c in CLAIM_MEMBERS)),
              st.sampled_from(sorted({m for members in CLAIM_MEMBERS.values() for m in members})) | texts,
              st.just(DELETE) | json_values),
    min_size=1, max_size=3)

COUNTED = (Account, Person, Course, Enrolment, ResourceLink, Launch, Deployment)


class LaunchFuzzer:
    """Log in for real, sign what the strategy made with the platform's key, post it, and check the answer."""

    def __init__(self, app, platform):
        self.app, self.platform = app, platform
        self.client = app.test_client()
        self.outcomes: dict[int, int] = {}
        self.state = self.nonce = None
        with app.app_context():
            # One statement for every count (rows that a launch writes, and logins used up).
            self._counting = sa.select(*(sa.select(sa.func.count()).select_from(m).scalar_subquery()
                                         for m in COUNTED),
                                       sa.select(sa.func.count()).select_from(LoginState)
                                       .where(LoginState.used_at.is_not(None)).scalar_subquery())

    def counts(self) -> tuple:
        with self.app.app_context():
            return tuple(db.session.execute(self._counting).one())

    def login(self) -> tuple[str, str]:
        # A refused launch leaves its login unused (that is checked), so it serves the next case too.
        if self.state is None:
            response = self.client.get("/lti/login", query_string=login_params(self.platform))
            assert response.status_code == 302
            self.state, self.nonce = state_and_nonce(response.location)
        return self.state, self.nonce

    def launch(self, header: dict, claims: dict) -> None:
        state, nonce = self.login()
        if claims.get("nonce") == "{login}":
            claims["nonce"] = nonce
        token = sign_raw(self.platform, header, json.dumps(claims))
        before = self.counts()
        response = self.client.post("/lti/launch", data={"id_token": token, "state": state})
        status = response.status_code
        self.outcomes[status] = self.outcomes.get(status, 0) + 1
        assert status < 500, response.get_data(as_text=True)[:2000]
        if status >= 400:
            assert self.counts() == before  # nothing written, and the login is not used up
        else:
            assert status in (200, 303)
            self.state = None

    def header(self) -> dict:
        return {"alg": "RS256", "typ": "JWT", "kid": self.platform.active_key.kid}

    def claims(self) -> dict:
        claims = self.platform.claims_for("member", "{login}")
        return claims


@pytest.fixture
def fuzzer(app, platform):
    return LaunchFuzzer(app, platform)


def _apply(target: dict, name: str, value) -> None:
    if value is DELETE:
        target.pop(name, None)
    else:
        target[name] = value


@given(changes=changes)
@fuzz(int(os.environ.get('FUZZ_N', '800')))
def test_claims_of_any_type_and_size_never_give_a_500_and_a_refusal_writes_nothing(fuzzer, changes):
    claims = fuzzer.claims()
    for name, value in changes:
        _apply(claims, name, value)
    fuzzer.launch(fuzzer.header(), claims)


@given(changes=member_changes)
@fuzz(int(os.environ.get('FUZZ_N', '400')))
def test_members_of_object_claims_of_any_type_never_give_a_500(fuzzer, changes):
    claims = fuzzer.claims()
    for name, member, value in changes:
        if not isinstance(claims.get(name), dict):
            claims[name] = {}
        _apply(claims[name], member, value)
    fuzzer.launch(fuzzer.header(), claims)


@given(kid=st.just(None) | json_values, alg=st.sampled_from(["RS256", "none", "HS256", "RS512"]) | json_values,
       extra=st.dictionaries(texts, json_values, max_size=3))
@fuzz(int(os.environ.get('FUZZ_N', '400')))
def test_header_fields_of_any_type_never_give_a_500(fuzzer, kid, alg, extra):
    header = {**extra, "alg": alg}
    if kid is not None:
        header["kid"] = kid
    fuzzer.launch(header, fuzzer.claims())


@given(id_token=texts | st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_=", max_size=60),
                                 min_size=1, max_size=5).map(".".join),
       state=texts, extra=st.dictionaries(st.sampled_from(["lti_storage_verified", "error", "error_description",
                                                           "id_token", "state"]), texts, max_size=3))
@fuzz(int(os.environ.get('FUZZ_N', '600')))
def test_any_launch_form_gets_a_4xx_and_writes_nothing(app, fuzzer, id_token, state, extra):
    before = fuzzer.counts()
    # Encoded by hand: a lone surrogate goes as the (invalid UTF-8) bytes a hostile client could send.
    fields = {"id_token": id_token, "state": state, **extra}
    body = "&".join(f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
                    for k, v in fields.items())
    response = fuzzer.client.post("/lti/launch", data=body, content_type="application/x-www-form-urlencoded")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:2000]
    assert fuzzer.counts() == before


def test_the_fuzzing_reaches_past_the_signature(fuzzer):
    """The strategies are not all refused at the first check: a valid launch and typed refusals both occur."""
    fuzzer.launch(fuzzer.header(), fuzzer.claims())
    claims = fuzzer.claims()
    claims["https://purl.imsglobal.org/spec/lti/claim/context"] = {"id": "c\x00"}
    fuzzer.launch(fuzzer.header(), claims)
    assert fuzzer.outcomes == {303: 1, 400: 1}
