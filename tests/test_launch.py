"""Launches through the real login, authorization and launch endpoints, and every way one is refused."""
import time

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, Course, Enrolment, Launch, LoginState, ResourceLink
from tests.conftest import recorded_sql, register
from tests.platform import LTI, MEMBERSHIP, KeyPair, login_params, state_and_nonce


def page(response) -> str:
    return response.get_data(as_text=True)


def test_member_launch_lands_on_a_page_saying_who_where_and_role(app, client, platform, do_launch):
    response = do_launch(platform, "member")
    assert response.status_code == 303
    first = client.get(response.location)
    # a member's first launch asks for the program's registration, once
    assert first.status_code == 302 and first.location.endswith("/registration?first=1")
    register(client, response.location)
    home = client.get(response.location)
    assert home.status_code == 200
    text = page(home)
    assert "Maria Member" in text and "maria@example.org" in text
    assert "Course course-101" in text
    assert "signed in as <strong>member</strong>" in text


def test_instructor_launch_gets_instructor_role(client, platform, do_launch):
    home = client.get(do_launch(platform, "instructor").location, follow_redirects=True)
    assert "signed in as <strong>instructor</strong>" in page(home)


def test_institution_admin_gets_admin_role(client, platform, do_launch):
    home = client.get(do_launch(platform, "admin").location, follow_redirects=True)
    assert "signed in as <strong>admin</strong>" in page(home)


def test_launch_records_account_course_enrolment_and_resource_link(app, platform, do_launch):
    do_launch(platform, "member")
    do_launch(platform, "member")  # a second launch updates, never duplicates
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        assert (account.sub, account.name, account.email) == ("user-member-1", "Maria Member", "maria@example.org")
        course = db.session.scalars(sa.select(Course)).one()
        assert course.context_id == "course-101"
        enrolment = db.session.scalars(sa.select(Enrolment)).one()
        assert enrolment.role == "member" and MEMBERSHIP + "Learner" in enrolment.lti_roles
        assert db.session.scalars(sa.select(ResourceLink)).one().resource_link_id == "resource-link-1"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Launch)) == 2


def test_login_by_post_as_moodle_sends_it(client, platform, do_launch):
    response = do_launch(platform, "member", method="POST")
    assert response.status_code == 303


def test_canvas_style_login_with_shared_issuer_and_extra_parameters(make_platform, do_launch, client):
    # Two Canvas customers share one issuer; the client id tells them apart.
    first = make_platform(issuer="https://canvas.instructure.com", client_id="10000000000001", product="canvas")
    second = make_platform(issuer="https://canvas.instructure.com", client_id="10000000000002", product="canvas")
    for emulator in (first, second):
        response = do_launch(emulator, "member", canvas_region="us-east-1", canvas_environment="prod",
                             lti_storage_target="_parent")
        # With lti_storage_target the tool first stores state and nonce with the platform, then goes on.
        assert response.status_code == 303


def test_login_without_client_id_works_when_the_issuer_has_one_registration(client, platform):
    response = client.get("/lti/login", query_string=login_params(platform, client_id=None))
    assert response.status_code == 302


def test_deep_linking_launch_lands_instructor_on_the_deep_link_page(client, platform, do_launch):
    response = do_launch(platform, "instructor", lti_message_hint="deep-link")
    assert response.status_code == 303 and response.location.endswith("/deep-link")
    assert "Add Bargaining Certificate content to Course course-101" in page(client.get(response.location))


@pytest.mark.parametrize("params, expected", [
    ({"iss": None}, "no &#39;iss&#39;"),
    ({"login_hint": None}, "no &#39;login_hint&#39;"),
    ({"target_link_uri": None}, "no &#39;target_link_uri&#39;"),
    ({"target_link_uri": "https://evil.example.com/lti/launch"}, "is not an address of this tool"),
    ({"iss": "https://unknown.example.edu"}, "No platform is registered for issuer https://unknown.example.edu"),
    ({"client_id": "someone-else"}, "with client id someone-else"),
    ({"lti_deployment_id": "deployment-x"}, "Deployment deployment-x is not registered"),
])
def test_bad_login_requests_get_a_clear_400(client, platform, params, expected):
    response = client.get("/lti/login", query_string=login_params(platform, **params))
    assert response.status_code == 400
    assert expected in page(response)


def _login(client, emulator, user="member"):
    response = client.get("/lti/login", query_string=login_params(emulator, user))
    assert response.status_code == 302
    return state_and_nonce(response.location)


def _post(client, id_token, state):
    return client.post("/lti/launch", data={"id_token": id_token, "state": state})


def _claims(emulator, login_nonce, **overrides):
    emulator.claim_overrides = overrides
    return emulator.claims_for("member", login_nonce)


CLAIM_FAILURES = [
    ("iss", {"iss": "https://other.example.edu"}, 400, "No platform is registered for issuer https://other.example.edu"),
    ("aud", {"aud": "wrong-client"}, 400, "client id wrong-client"),
    ("aud list without the client id", {"aud": ["a", "b"], "azp": "a"}, 400, "No platform is registered"),
    ("azp", {"aud": ["tool-client-1", "other"], "azp": "other"}, 400, "No platform is registered"),
    ("azp missing with several audiences", {"aud": ["tool-client-1", "other"]}, 401, "azp"),
    ("azp without aud", {"aud": None, "azp": "tool-client-1"}, 401, "does not contain the client id"),
    ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, 401, "The launch token expired at"),
    ("issued in the future", {"iat": int(time.time()) + 3600}, 401, "the platform&#39;s clock is ahead"),
    ("no exp", {"exp": None}, 401, "no &#39;exp&#39; claim"),
    ("no nonce", {"nonce": None}, 401, "no &#39;nonce&#39; claim"),
    ("other nonce", {"nonce": "not-the-nonce"}, 401, "nonce is not the one this tool issued"),
    ("deployment", {LTI + "deployment_id": "unknown-deployment"}, 403,
     "Deployment unknown-deployment is not registered"),
    ("message type", {LTI + "message_type": "LtiSubmissionReviewRequest"}, 400, "is not one this tool handles"),
    ("no message type", {LTI + "message_type": None}, 400, "is not one this tool handles"),
    ("version", {LTI + "version": "1.1"}, 400, "this tool speaks 1.3.0"),
    ("no sub", {"sub": None}, 400, "no &#39;sub&#39;"),
    ("no roles", {LTI + "roles": None}, 400, "no roles claim"),
    ("no role the tool knows", {LTI + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/system/person#User"]}, 403,
     "no role this tool recognises"),
    ("no resource link", {LTI + "resource_link": None}, 400, "no resource_link id"),
]


@pytest.mark.parametrize("case, overrides, status, expected", CLAIM_FAILURES, ids=[c[0] for c in CLAIM_FAILURES])
def test_each_security_check_refuses_with_a_clear_message_and_writes_nothing(app, client, platform, case, overrides,
                                                                               status, expected, caplog):
    state, nonce = _login(client, platform)
    response = _post(client, platform.sign(_claims(platform, nonce, **overrides)), state)
    assert response.status_code == status, page(response)
    assert expected in page(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Launch)) == 0
        assert db.session.get(LoginState, state).used_at is None
    assert any("refused POST /lti/launch" in r.getMessage() for r in caplog.records)


def test_refused_launch_logs_the_platform_and_reason(client, platform, caplog):
    state, nonce = _login(client, platform)
    _post(client, platform.sign(_claims(platform, nonce, exp=int(time.time()) - 3600, iat=int(time.time()) - 4000)),
          state)
    record = next(r for r in caplog.records if "refused" in r.getMessage())
    assert f"platform={platform.issuer}" in record.getMessage() and "reason=expired" in record.getMessage()


def test_small_clock_skew_is_allowed(client, platform):
    state, nonce = _login(client, platform)
    response = _post(client, platform.sign(_claims(platform, nonce, iat=int(time.time()) + 20)), state)
    assert response.status_code == 303


def test_replayed_id_token_is_refused(client, platform, do_launch):
    state, nonce = _login(client, platform)
    token = platform.sign(_claims(platform, nonce))
    assert _post(client, token, state).status_code == 303
    again = _post(client, token, state)
    assert again.status_code == 401 and "This launch link was already used" in page(again)


def test_replay_from_another_browser_is_refused(app, client, platform):
    state, nonce = _login(client, platform)
    token = platform.sign(_claims(platform, nonce))
    assert _post(client, token, state).status_code == 303
    stranger = app.test_client()
    stranger.set_cookie(f"lti_state_{state}", "1", path="/lti/")
    response = _post(stranger, token, state)
    assert response.status_code == 401 and "already used" in page(response)


def test_captured_token_with_a_fresh_state_is_refused(client, platform):
    state, nonce = _login(client, platform)
    token = platform.sign(_claims(platform, nonce))
    assert _post(client, token, state).status_code == 303
    fresh_state, _ = _login(client, platform)
    response = _post(client, token, fresh_state)
    assert response.status_code == 401 and "nonce is not the one this tool issued" in page(response)


def test_state_unknown_or_missing(client, platform):
    _, nonce = _login(client, platform)
    token = platform.sign(_claims(platform, nonce))
    missing = client.post("/lti/launch", data={"id_token": token})
    assert missing.status_code == 400 and "without its OIDC state" in page(missing)
    unknown = _post(client, token, "made-up-state")
    assert unknown.status_code == 401 and "not started by this tool" in page(unknown)


def test_launch_from_a_browser_without_the_state_cookie_offers_a_new_window(app, client, make_platform):
    platform = make_platform(product="sakai")  # a platform whose login hint can be used again
    state, nonce = _login(client, platform)
    other_browser = app.test_client()
    response = _post(other_browser, platform.sign(_claims(platform, nonce)), state)
    assert response.status_code == 401
    text = page(response)
    assert "Open the tool in a new window" in text and "/lti/login?" in text


def test_launch_from_moodle_without_the_state_cookie_does_not_replay_the_spent_hint(app, client, platform):
    state, nonce = _login(client, platform)
    response = _post(app.test_client(), platform.sign(_claims(platform, nonce)), state)
    assert response.status_code == 401
    text = page(response)
    # Moodle has spent its hint: a replay would only get "Invalid request", so the page says what does work.
    assert "/lti/login?" not in text and "Open the tool in a new window" not in text
    assert "serve the tool over https" in text and "launch container to &#34;New window&#34;" in text


def test_a_browser_cannot_claim_a_state_by_setting_the_cookie_itself(app, client, platform):
    state, nonce = _login(client, platform)
    stranger = app.test_client()  # has the captured id_token and state, not the cookie the tool gave
    stranger.set_cookie(f"lti_state_{state}", "1", path="/lti/")
    response = _post(stranger, platform.sign(_claims(platform, nonce)), state)
    assert response.status_code == 401
    assert _post(client, platform.sign(_claims(platform, nonce)), state).status_code == 303  # the real browser


def test_bad_signature_and_unknown_key_are_refused(client, platform):
    state, nonce = _login(client, platform)
    stranger_key = KeyPair.generate(kid=platform.active_key.kid)  # right kid, wrong key
    response = _post(client, platform.sign(_claims(platform, nonce), key=stranger_key), state)
    assert response.status_code == 401 and "signature does not match" in page(response)
    unknown = KeyPair.generate(kid="never-published")
    response = _post(client, platform.sign(_claims(platform, nonce), key=unknown), state)
    assert response.status_code == 401 and "never-published" in page(response)


def test_alg_none_and_hs256_with_the_public_key_are_refused(client, platform):
    import base64
    import json

    state, nonce = _login(client, platform)
    claims = _claims(platform, nonce)

    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    none_token = f"{b64({'alg': 'none', 'kid': platform.active_key.kid})}.{b64(claims)}."
    response = _post(client, none_token, state)
    assert response.status_code == 401 and "accepts only RS256" in page(response)
    import hashlib
    import hmac

    header_body = f"{b64({'alg': 'HS256', 'kid': platform.active_key.kid})}.{b64(claims)}"
    secret = json.dumps(platform.active_key.jwk).encode()
    signature = base64.urlsafe_b64encode(hmac.new(secret, header_body.encode(), hashlib.sha256).digest()).rstrip(b"=")
    response = _post(client, f"{header_body}.{signature.decode()}", state)
    assert response.status_code == 401 and "&#39;HS256&#39;" in page(response)


_NOT_A_JWT = "The id_token is not a valid JWT (it must be three base64url parts of JSON)."


@pytest.mark.parametrize("form, message", [
    ({}, "The launch request has no id_token."),
    ({"id_token": "garbage"}, _NOT_A_JWT),
    ({"id_token": "a.b.c", "state": "x"}, _NOT_A_JWT),
    ({"id_token": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "state": "x"}, _NOT_A_JWT),
    ({"id_token": "x" * 70000, "state": "y"}, "The id_token is far larger than any launch token; it was refused."),
    ({"state": "x" * 5000, "id_token": "a.b"}, _NOT_A_JWT),
    ({"error": "login_required", "error_description": "The user is not logged in"},
     "The platform refused the launch: login_required"),
])
def test_malformed_launches_get_400_with_what_is_wrong(client, platform, form, message):
    response = client.post("/lti/launch", data=form)
    assert response.status_code == 400, page(response)
    assert message in page(response)


def test_platform_error_response_is_shown_to_the_admin(client, platform):
    response = client.post("/lti/launch", data={"error": "login_required", "error_description": "Log in first"})
    assert "The platform refused the launch: login_required Log in first" in page(response)


def test_huge_payload_is_refused_with_413(client, platform):
    response = client.post("/lti/launch", data={"id_token": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


def test_platform_keys_are_fetched_once_and_refetched_for_an_unknown_kid(client, platform, do_launch):
    for _ in range(3):
        assert do_launch(platform, "member").status_code == 303
    assert platform.jwks_fetches == 1
    platform.rotate_key()  # the platform starts signing with a new key
    assert do_launch(platform, "member").status_code == 303
    assert platform.jwks_fetches == 2
    assert do_launch(platform, "member").status_code == 303
    assert platform.jwks_fetches == 2


def test_unknown_kid_refetch_is_rate_limited(app, client, platform, do_launch):
    app.config["LTI_KEY_SET_REFETCH_SECONDS"] = 60
    assert do_launch(platform, "member").status_code == 303
    state, nonce = _login(client, platform)
    for _ in range(3):
        _post(client, platform.sign(_claims(platform, nonce), key=KeyPair.generate(kid="random-kid")), state)
    assert platform.jwks_fetches == 1


def test_views_check_the_launch_belongs_to_this_browser(app, client, platform, member_launch):
    location = member_launch(platform)
    assert client.get(location).status_code == 200
    stranger = app.test_client()
    response = stranger.get(location)
    assert response.status_code == 401 and "Open the tool again from your course" in page(response)


def test_member_cannot_open_instructor_pages(client, platform, do_launch):
    location = do_launch(platform, "member").location
    response = client.get(location + "deep-link")
    assert response.status_code == 403


def test_two_platforms_stay_apart(app, make_platform, do_launch):
    # The same sub and context id on two platforms are different people and different courses.
    moodle = make_platform(product="moodle")
    other = make_platform(product="moodle", client_id="other-client")
    browser_a, browser_b = app.test_client(), app.test_client()
    a = do_launch(moodle, "member", browser=browser_a).location
    b = do_launch(other, "member", browser=browser_b).location
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Course)) == 2
    assert browser_a.get(b).status_code == 401
    assert browser_b.get(a).status_code == 401


def test_session_cookie_stays_small_after_many_launches(client, platform, do_launch):
    for _ in range(25):
        assert do_launch(platform, "member").status_code == 303
    cookie = client.get_cookie("lti_tool_session")
    assert cookie is not None and len(cookie.value) < 1200


def test_simultaneous_first_launches_fetch_the_key_set_once(app, platform):
    import threading

    from tests.platform import login_params

    browsers = [app.test_client() for _ in range(6)]
    forms = []
    for browser in browsers:
        response = browser.get("/lti/login", query_string=login_params(platform))
        forms.append(platform.authorize(response.location))
    barrier = threading.Barrier(len(browsers))
    statuses = []

    def go(browser, form):
        form = dict(form)
        form.pop("action")
        barrier.wait()
        statuses.append(browser.post("/lti/launch", data=form).status_code)

    threads = [threading.Thread(target=go, args=pair) for pair in zip(browsers, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303] * len(browsers)
    assert platform.jwks_fetches == 1


def test_a_returning_launch_does_not_read_the_account_again_and_stores_each_change_of_placement(app, client,
                                                                                                 platform, do_launch):
    """The account upsert returns the member's person; the link's custom parameters (which place the tool) are
    stored as the LMS sends them at every launch, also when they change and change back."""
    def stored_custom():
        with app.app_context():
            return db.session.scalars(sa.select(ResourceLink)).one().custom

    assert do_launch(platform, "member").status_code == 303
    with recorded_sql(app) as statements:
        assert do_launch(platform, "member").status_code == 303
    assert not [s for s in statements if s.lstrip().startswith("SELECT") and "FROM accounts" in s]
    first = stored_custom()
    for custom in ({"module": "esp-bargaining"}, first):  # changed in the LMS, then changed back
        platform.claim_overrides[LTI + "custom"] = custom
        assert do_launch(platform, "member").status_code == 303
        assert stored_custom() == custom
    platform.claim_overrides[LTI + "context"] = {"id": platform.context_id, "label": "BARG-102",
                                                 "title": "Bargaining, renamed"}
    assert do_launch(platform, "member").status_code == 303
    with app.app_context():
        courses = db.session.scalars(sa.select(Course)).all()
        assert [(c.title, c.label) for c in courses] == [("Bargaining, renamed", "BARG-102")]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Launch)) == 5


def test_a_returning_launch_reads_its_login_with_the_registration_version_and_its_course_with_the_link(
        app, client, platform, do_launch):
    """The launch POST's reads come in pairs: the login with the registration version (no second version read), and
    the course with its resource link; a registration changed since is still seen (tests/test_registration_cache)."""
    assert do_launch(platform, "member").status_code == 303
    form = platform.authorize(client.get("/lti/login", query_string=login_params(platform, "member")).location)
    form.pop("action")
    with recorded_sql(app) as statements:
        assert client.post("/lti/launch", data=form).status_code == 303
    version_reads = [s for s in statements if "registration_version" in s]
    assert len(version_reads) == 1 and "login_states" in version_reads[0]
    course_reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM courses" in s]
    assert len(course_reads) == 1 and "resource_links" in course_reads[0]
    assert not [s for s in statements if s.lstrip().startswith("SELECT") and "FROM resource_links" in s]
