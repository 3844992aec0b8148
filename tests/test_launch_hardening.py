"""Launches an attacker or a broken platform sends: malformed headers and claims of the wrong type, control
characters, forged keys in bulk, and planted sessions. Every refusal is a clear 4xx that writes nothing."""
import base64
import json
import threading
import time

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, Course, Launch, LoginState, ResourceLink
from tests.platform import LTI, KeyPair, login_params, state_and_nonce


def page(response) -> str:
    return response.get_data(as_text=True)


def _login(client, emulator, user="member"):
    response = client.get("/lti/login", query_string=login_params(emulator, user))
    assert response.status_code == 302
    return state_and_nonce(response.location)


def _claims(emulator, nonce, user="member", **overrides):
    emulator.claim_overrides = overrides
    try:
        return emulator.claims_for(user, nonce)
    finally:
        emulator.claim_overrides = {}


def _post(client, id_token, state):
    return client.post("/lti/launch", data={"id_token": id_token, "state": state})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


_LOADED_KEYS: dict = {}


def sign_raw(emulator, header: dict, body: str) -> str:
    """Sign any header and JSON text with the platform's real key (PyJWT refuses to make malformed headers)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_b64(header)}." + base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()
    pem = emulator.active_key.private_pem
    if pem not in _LOADED_KEYS:  # loading checks the key, which costs a hundred times more than signing
        _LOADED_KEYS[pem] = serialization.load_pem_private_key(pem.encode(), None)
    key = _LOADED_KEYS[pem]
    signature = base64.urlsafe_b64encode(key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))
    return f"{signing_input}.{signature.rstrip(b'=').decode()}"


def _counts(app) -> dict:
    with app.app_context():
        return {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (Account, Course, ResourceLink, Launch)}


# -- 8.9: the header's kid and the claims' JSON types --

@pytest.mark.parametrize("kid", [7, 1.5, True, ["a"], {"k": "v"}, "x" * 300, "kid\u0000"])
def test_a_kid_that_is_not_a_short_string_is_refused_with_401(app, client, platform, kid):
    state, nonce = _login(client, platform)
    token = sign_raw(platform, {"alg": "RS256", "typ": "JWT", "kid": kid}, json.dumps(_claims(platform, nonce)))
    response = _post(client, token, state)
    assert response.status_code == 401, page(response)
    assert "&#39;kid&#39; must be a short string" in page(response)
    assert platform.jwks_fetches == 0
    with app.app_context():
        assert db.session.get(LoginState, state).used_at is None


WRONG_TYPES = [
    ("exp", lambda now: str(now + 300), "&#39;exp&#39; claim must be a number"),
    ("iat", lambda now: str(now), "&#39;iat&#39; claim must be a number"),
    ("exp", lambda now: True, "&#39;exp&#39; claim must be a number"),
    ("exp", lambda now: None, "&#39;exp&#39; claim must be a number"),
    ("nbf", lambda now: "0", "&#39;nbf&#39; claim must be a number"),
    ("sub", lambda now: 12345, "&#39;sub&#39; claim must be a string"),
    ("iss", lambda now: ["x"], "&#39;iss&#39; claim must be a string"),
    ("aud", lambda now: ["tool-client-1", 7], "&#39;aud&#39; claim must be a string or a list of strings"),
    ("aud", lambda now: 7, "&#39;aud&#39; claim must be a string or a list of strings"),
    ("azp", lambda now: 7, "&#39;azp&#39; claim must be a string"),
    ("nonce", lambda now: 1, "&#39;nonce&#39; claim must be a string"),
    ("name", lambda now: {"first": "Maria"}, "&#39;name&#39; claim must be a string"),
    ("email", lambda now: ["maria@example.org"], "&#39;email&#39; claim must be a string"),
    (LTI + "deployment_id", lambda now: 1, "&#39;deployment_id&#39; claim must be a string"),
    (LTI + "message_type", lambda now: ["LtiResourceLinkRequest"], "&#39;message_type&#39; claim must be a string"),
    (LTI + "roles", lambda now: "Learner", "&#39;roles&#39; claim must be a list"),
    (LTI + "roles", lambda now: [MEMBER_ROLE, 3], "roles claim must be a list of role URIs"),
    (LTI + "context", lambda now: "course-101", "&#39;context&#39; claim must be a JSON object"),
    (LTI + "context", lambda now: {"id": 101}, "&#39;context&#39; claim has &#39;id&#39; of the wrong type"),
    (LTI + "context", lambda now: {"id": "c", "title": ["t"]}, "has &#39;title&#39; of the wrong type"),
    (LTI + "resource_link", lambda now: {"id": None}, "&#39;resource_link&#39; claim has &#39;id&#39;"),
    (LTI + "custom", lambda now: ["module=x"], "&#39;custom&#39; claim must be a JSON object"),
    ("https://purl.imsglobal.org/spec/lti-ags/claim/endpoint", lambda now: {"lineitems": 5},
     "&#39;endpoint&#39; claim has &#39;lineitems&#39; of the wrong type"),
]
MEMBER_ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@pytest.mark.parametrize("claim, value, expected", WRONG_TYPES, ids=[f"{c[0].rsplit('/', 1)[-1]}-{i}"
                                                                     for i, c in enumerate(WRONG_TYPES)])
def test_claims_of_the_wrong_json_type_are_refused_and_nothing_is_written(app, client, platform, claim, value,
                                                                         expected):
    state, nonce = _login(client, platform)
    claims = _claims(platform, nonce)
    claims[claim] = value(int(time.time()))
    header = {"alg": "RS256", "typ": "JWT", "kid": platform.active_key.kid}
    response = _post(client, sign_raw(platform, header, json.dumps(claims)), state)
    assert 400 <= response.status_code < 500, page(response)
    assert expected in page(response)
    assert _counts(app) == {"Account": 0, "Course": 0, "ResourceLink": 0, "Launch": 0}
    with app.app_context():
        assert db.session.get(LoginState, state).used_at is None


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_exp_that_is_not_a_finite_number_is_refused(client, platform, value):
    state, nonce = _login(client, platform)
    claims = _claims(platform, nonce)
    claims["exp"] = 0
    body = json.dumps(claims).replace('"exp": 0', f'"exp": {value}')
    token = sign_raw(platform, {"alg": "RS256", "typ": "JWT", "kid": platform.active_key.kid}, body)
    response = _post(client, token, state)
    assert response.status_code == 400 and "&#39;exp&#39; claim must be a number" in page(response)


# -- 8.8: control characters --

IDENTIFIERS = [
    ("sub", lambda c: c.update(sub="user\u0000-1")),
    ("deployment_id", lambda c: c.update({LTI + "deployment_id": "deployment-1\u0000"})),
    ("context.id", lambda c: c[LTI + "context"].update(id="course\u0000-101")),
    ("resource_link.id", lambda c: c[LTI + "resource_link"].update(id="link\u001b1")),
    ("aud", lambda c: c.update(aud=["tool-client-1", "x\u0000"], azp="tool-client-1")),
    ("sub", lambda c: c.update(sub="user-\ud800")),
    ("context.id", lambda c: c[LTI + "context"].update(id="c" * 256)),
]


@pytest.mark.parametrize("claim, change", IDENTIFIERS, ids=[f"{c[0]}-{i}" for i, c in enumerate(IDENTIFIERS)])
def test_identifiers_with_control_characters_are_refused_with_a_400_naming_the_claim(app, client, platform, claim,
                                                                                    change):
    state, nonce = _login(client, platform)
    claims = _claims(platform, nonce)
    change(claims)
    header = {"alg": "RS256", "typ": "JWT", "kid": platform.active_key.kid}
    response = _post(client, sign_raw(platform, header, json.dumps(claims)), state)
    assert response.status_code == 400, page(response)
    assert f"The id_token&#39;s &#39;{claim}&#39;" in page(response)
    assert "identifier" in page(response)
    assert _counts(app) == {"Account": 0, "Course": 0, "ResourceLink": 0, "Launch": 0}


def test_display_text_loses_control_characters_and_the_launch_goes_through(app, client, platform):
    state, nonce = _login(client, platform)
    claims = _claims(platform, nonce, name="Maria\u0000 Mem\u0007ber", email="maria\u0000@example.org",
                     given_name="Ma\tria\nX")
    claims[LTI + "context"]["title"] = "Course\u0000 101\u001f"
    claims[LTI + "resource_link"]["title"] = "Bargaining\u0000 Certificate \ud800"
    claims[LTI + "custom"] = {"note\u0000": "a\u0000b"}
    response = _post(client, platform.sign(claims), state)
    assert response.status_code == 303, page(response)
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        assert (account.name, account.email, account.given_name) == ("Maria Member", "maria@example.org",
                                                                     "Ma ria X")
        assert db.session.scalars(sa.select(Course)).one().title == "Course 101"
        link = db.session.scalars(sa.select(ResourceLink)).one()
        assert link.title == "Bargaining Certificate " and link.custom == {"note": "ab"}
        stored = db.session.scalars(sa.select(Launch)).one().claims
        assert "\u0000" not in json.dumps(stored) and "\\u0000" not in json.dumps(stored)


def test_form_input_loses_control_characters_before_any_view_reads_it(client, platform, do_launch):
    from tests.conftest import register

    home = do_launch(platform, "member").location
    register(client, home, name="Maria\u0000 Member", local_association="Spring\u0007field EA")
    text = page(client.get(home + "registration"))
    assert "Maria Member" in text and "Springfield EA" in text


def test_a_roster_name_with_nul_does_not_break_the_workshop_page(app, client, platform, do_launch):
    from tests.test_workshops import make_workshop, open_as_instructor, place, text

    platform.add_members(3)
    platform.members[0]["name"] = "Nul\u0000 Name"
    platform.members[0]["email"] = "nul\u0000@example.org"
    platform.members[1]["user_id"] = "bad\u0000id"  # an identifier that cannot be kept: that member is skipped
    platform.members[2]["family_name"] = "Line\nBreak\u001b"
    public_id = make_workshop(app, platform, "bargaining-foundations")
    place(platform, public_id, "bargaining-foundations")
    response = client.get(open_as_instructor(client, do_launch, platform))
    assert response.status_code == 200
    html = text(response)
    assert "Nul Name" in html and "nul@example.org" in html
    with app.app_context():
        subs = set(db.session.scalars(sa.select(Account.sub)))
        assert "roster-1" in subs and "roster-3" in subs and not any("\u0000" in s for s in subs)
        assert db.session.scalars(sa.select(Account).where(Account.sub == "roster-3")).one().family_name == \
            "Line Break"


# -- 8.3: forged kids in bulk --

def test_a_launch_without_a_live_login_is_refused_before_any_key_set_fetch(client, platform):
    # A valid issuer and audience, a random kid, and a state the tool never issued: no key set is fetched.
    claims = _claims(platform, "any-nonce")
    for state in ("made-up-state", "", "x" * 80):
        token = platform.sign(claims, key=KeyPair.generate(kid=f"random-{state[:5]}"))
        response = _post(client, token, state)
        assert response.status_code in (400, 401), page(response)
    assert platform.jwks_fetches == 0


def test_a_launch_from_a_browser_without_the_logins_cookie_is_refused_before_any_key_set_fetch(app, client,
                                                                                                 platform):
    state, nonce = _login(client, platform)
    token = platform.sign(_claims(platform, nonce), key=KeyPair.generate(kid="random-kid"))
    response = _post(app.test_client(), token, state)
    assert response.status_code == 401 and "did not send this tool&#39;s cookie back" in page(response)
    assert platform.jwks_fetches == 0


def test_a_launch_with_another_logins_nonce_is_refused_before_any_key_set_fetch(client, platform):
    state, _ = _login(client, platform)
    token = platform.sign(_claims(platform, "not-this-logins-nonce"), key=KeyPair.generate(kid="random-kid"))
    response = _post(client, token, state)
    assert response.status_code == 401 and "nonce is not the one this tool issued" in page(response)
    assert platform.jwks_fetches == 0


def test_many_launches_with_random_kids_fetch_the_key_set_once_and_hold_no_worker(app, platform, do_launch):
    app.config["LTI_KEY_SET_REFETCH_SECONDS"] = 60
    assert do_launch(platform, "member").status_code == 303
    assert platform.jwks_fetches == 1
    # The attacker starts real logins (the login endpoint is open to anyone) and forges a kid for each.
    forged = []
    # As many at once as a server's threads take (each holds a database connection while it runs).
    for number in range(8):
        browser = app.test_client()
        state, nonce = _login(browser, platform)
        forged.append((browser, platform.sign(_claims(platform, nonce), key=KeyPair.generate(kid=f"forged-{number}")),
                       state))
    barrier = threading.Barrier(len(forged))
    results = []

    def attack(browser, token, state):
        barrier.wait()
        started = time.monotonic()
        response = _post(browser, token, state)
        results.append((response.status_code, time.monotonic() - started, page(response)))

    threads = [threading.Thread(target=attack, args=item) for item in forged]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _, _ in results] == [401] * len(forged)
    assert all("which is not in the key set" in text for _, _, text in results)
    assert platform.jwks_fetches == 1  # still the first fetch: the interval holds
    assert time.monotonic() - started < 4, results  # refused at once, not after waiting on a fetch
    # A member's launch right after still works.
    assert do_launch(platform, "member").status_code == 303


class SlowKeySetPlatform:
    """Wrap an emulator's key set so it answers after a delay (a fetch really in flight)."""

    def __init__(self, emulator, delay: float):
        self.original = emulator._jwks
        self.delay = delay
        emulator._jwks = self

    def __call__(self, request):
        time.sleep(self.delay)
        return self.original(request)


def test_launches_wait_for_a_key_set_fetch_in_flight_and_one_fetch_serves_them(app, platform, do_launch):
    assert do_launch(platform, "member").status_code == 303
    platform.rotate_key()  # the platform signs with a new key that the tool has not seen
    SlowKeySetPlatform(platform, 0.6)
    browsers = [app.test_client() for _ in range(4)]
    forms = []
    for browser in browsers:
        response = browser.get("/lti/login", query_string=login_params(platform))
        form = platform.authorize(response.location)
        form.pop("action")
        forms.append(form)
    barrier = threading.Barrier(len(browsers))
    statuses = []

    def go(browser, form):
        barrier.wait()
        statuses.append(browser.post("/lti/launch", data=form).status_code)

    threads = [threading.Thread(target=go, args=pair) for pair in zip(browsers, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [303] * len(browsers)
    assert platform.jwks_fetches == 2


@pytest.mark.rate_limits
def test_refused_launches_are_rate_limited_per_address_with_a_clear_page(app, client, platform, do_launch):
    app.config["RATELIMIT_REFUSED_LAUNCHES_PER_ADDRESS"] = "5 per minute"
    # Successful launches do not count: a room of members behind one address is never slowed.
    for _ in range(6):
        assert do_launch(platform, "member").status_code == 303
    for _ in range(5):
        assert _post(client, "garbage", "x").status_code == 400
    refused = _post(client, "garbage", "x")
    assert refused.status_code == 429
    assert "Too many launches from your network were refused" in page(refused)
    assert "Wait a minute" in page(refused)
    # Another address is not affected.
    other = app.test_client()
    assert other.post("/lti/launch", data={"id_token": "garbage"},
                      environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 400


@pytest.mark.rate_limits
def test_refused_launches_are_rate_limited_per_issuer(app, platform, make_platform, do_launch):
    app.config["RATELIMIT_REFUSED_LAUNCHES_PER_PLATFORM"] = "4 per minute"
    other_lms = make_platform(client_id="other-client", issuer="https://other-lms.example.edu")
    forged = platform.sign(_claims(platform, "n"), key=KeyPair.generate(kid="forged"))
    for number in range(4):
        response = app.test_client().post("/lti/launch", data={"id_token": forged, "state": "s"},
                                          environ_base={"REMOTE_ADDR": f"10.0.1.{number}"})
        assert response.status_code == 401
    blocked = app.test_client().post("/lti/launch", data={"id_token": forged, "state": "s"},
                                     environ_base={"REMOTE_ADDR": "10.0.1.99"})
    assert blocked.status_code == 429
    assert "Too many launches for your learning platform were refused" in page(blocked)
    # Another platform's launches go on.
    assert do_launch(other_lms, "member").status_code == 303


# -- 8.12: launches planted in the browser's session --

def test_a_launch_for_another_account_drops_launches_planted_in_the_session(app, client, platform, do_launch,
                                                                             member_launch):
    from flask.testing import FlaskClient

    from tests.platform import User
    from tests.test_workshops import _make_code, make_workshop, open_as_instructor, place

    platform.users["mallory"] = User("user-mallory", "Mallory", "mallory@example.org", [MEMBER_ROLE])
    public_id = make_workshop(app, platform, "bargaining-foundations")
    place(platform, public_id, "bargaining-foundations")
    attacker = FlaskClient(app, use_cookies=True)
    attacker_home = member_launch(platform, "mallory", browser=attacker)
    # The attacker plants their session (with their launch in the workshop's course) in the victim's browser.
    victim = FlaskClient(app, use_cookies=True)
    victim.set_cookie("lti_tool_session", attacker.get_cookie("lti_tool_session").value)
    assert victim.get(attacker_home).status_code == 302  # the planted launch opens its workshop
    # The victim launches the tool from another course of theirs.
    platform.context_id, platform.resource_link_id, platform.claim_overrides = "course-202", "link-202", {}
    victim_home = member_launch(platform, "member", browser=victim)
    assert victim.get(victim_home).status_code == 200
    assert victim.get(attacker_home).status_code == 401
    # The room's QR code for the workshop in the attacker's course never checks the victim in as the attacker.
    platform.context_id = "course-101"
    place(platform, public_id, "bargaining-foundations")
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    response = victim.get(f"/check-in/{code}")
    assert response.status_code == 200 and "open your course in your LMS" in page(response)


def test_launches_of_one_account_in_several_courses_stay_usable_together(client, platform, member_launch):
    first = member_launch(platform)
    platform.context_id = "course-202"
    second = member_launch(platform)
    assert client.get(first).status_code == 200 and client.get(second).status_code == 200


# -- issue 11: the replay race, over real HTTP --

def test_the_same_id_token_posted_twice_at_once_succeeds_exactly_once(app, platform, live_server):
    import requests

    launch_url = live_server + "/lti/launch"
    for _ in range(4):
        browser = requests.Session()
        login = browser.get(live_server + "/lti/login", allow_redirects=False,
                            params=login_params(platform, target_link_uri=launch_url))
        assert login.status_code == 302, login.text
        form = platform.authorize(login.headers["Location"])
        assert form.pop("action") == launch_url
        barrier = threading.Barrier(2)
        answers = []

        def post(browser, form, barrier, answers):
            barrier.wait()
            answers.append(browser.post(launch_url, data=form, allow_redirects=False, timeout=30))

        threads = [threading.Thread(target=post, args=(browser, form, barrier, answers)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [303, 401], [a.text[:300] for a in answers]
        assert "This launch link was already used" in next(a.text for a in answers if a.status_code == 401)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Launch)) == 4


def test_a_refusal_is_logged_on_one_line_whatever_the_request_carried(client, platform, caplog):
    response = client.get("/lti/login", query_string=login_params(
        platform, iss="https://lms.example.edu\nrefused POST /lti/launch: platform=forged reason=ok", client_id=None))
    assert response.status_code == 400
    [record] = [r for r in caplog.records if r.getMessage().startswith("refused GET /lti/login")]
    assert "\n" not in record.getMessage() and "platform=https://lms.example.edu refused" in record.getMessage()
