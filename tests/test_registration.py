"""How platforms learn about the tool: the JWKS, Canvas's JSON, and LTI Dynamic Registration with Moodle and Canvas
emulators that behave as their source does (tokens, update, pending tools, deployments)."""
import html
import json
import re
import time
from urllib.parse import urlsplit

import jwt
import pytest
import sqlalchemy as sa
from jwt.algorithms import RSAAlgorithm

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.registration import check_origins
from lti_tool.models import Deployment, Platform, RegistrationInvitation
from lti_tool.services import invitations, platforms
from tests.platform import CanvasEmulator, KeyPair, MoodleEmulator, state_and_nonce

TOOL = "http://localhost:5000"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


def test_jwks_publishes_the_active_key_and_verifies_what_the_tool_signs(app, client):
    published = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert len(published) == 1 and published[0]["alg"] == "RS256" and published[0]["use"] == "sig"
    assert "d" not in published[0]  # never the private part
    with app.app_context():
        signing = keys.signing_key()
    token = jwt.encode({"hello": "world"}, signing.private_key_pem, algorithm="RS256", headers={"kid": signing.kid})
    jwk = next(k for k in published if k["kid"] == jwt.get_unverified_header(token)["kid"])
    assert jwt.decode(token, RSAAlgorithm.from_jwk(json.dumps(jwk)), algorithms=["RS256"]) == {"hello": "world"}


def test_keys_rotate_publishes_new_and_previous_key_only(client, runner):
    first = client.get("/.well-known/jwks.json").get_json()["keys"][0]["kid"]
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "New active key" in result.output
    second_set = [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]]
    assert len(second_set) == 2 and first in second_set
    runner.invoke(args=["keys", "rotate"])
    third_set = [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]]
    assert len(third_set) == 2 and first not in third_set and second_set[0] in third_set


def test_canvas_json_configuration(client):
    config = client.get("/lti/config/canvas.json").get_json()
    assert config["oidc_initiation_url"] == "http://localhost:5000/lti/login"
    assert config["target_link_uri"] == "http://localhost:5000/lti/launch"
    assert config["public_jwk_url"] == "http://localhost:5000/.well-known/jwks.json"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in config["scopes"]
    assert "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" in config["scopes"]
    canvas = config["extensions"][0]
    assert canvas["platform"] == "canvas.instructure.com" and canvas["privacy_level"] == "public"
    placements = {p["placement"]: p for p in canvas["settings"]["placements"]}
    assert placements["course_navigation"]["message_type"] == "LtiResourceLinkRequest"
    for name in ("link_selection", "assignment_selection"):
        assert placements[name]["message_type"] == "LtiDeepLinkingRequest"


def test_front_page_gives_admins_the_tools_addresses(client):
    page = client.get("/").get_data(as_text=True)
    for address in ("http://localhost:5000/lti/login", "http://localhost:5000/lti/launch",
                    "http://localhost:5000/.well-known/jwks.json", "http://localhost:5000/lti/config/canvas.json",
                    "http://localhost:5000/lti/register?invitation="):
        assert address in page


# -- helpers: an operator's invitation, the LMS's redirect, the admin's click --------------------------------------

def invite(app, name="Springfield University", lifetime=None) -> str:
    with app.app_context():
        made = invitations.create(name, app.config["PUBLIC_BASE_URL"],
                                  lifetime or invitations.DEFAULT_LIFETIME)
        db.session.commit()
        return made.url


def open_page(client, url: str):
    """Follow the LMS's redirect to the tool's registration URL (the browser's GET)."""
    parts = urlsplit(url)
    return client.get(parts.path + "?" + parts.query)


def text_of(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def hidden_fields(page: str) -> dict:
    return {name: html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def confirm(client, page_response, origin: str | None = TOOL, **extra):
    """Click the page's submit button (the browser sends the tool's own Origin)."""
    page = page_response.get_data(as_text=True)
    assert page_response.status_code == 200, page
    headers = {"Origin": origin} if origin else {}
    return client.post("/lti/register", data={**hidden_fields(page), **extra}, headers=headers)


def platform_rows(app) -> list[Platform]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Platform).order_by(Platform.id)))


def invitation_rows(app) -> list[RegistrationInvitation]:
    with app.app_context():
        return list(db.session.scalars(sa.select(RegistrationInvitation).order_by(RegistrationInvitation.id)))


@pytest.fixture
def production_registration(app):
    """Registration as in production: only with an operator's invitation."""
    app.config["REGISTRATION_WITHOUT_INVITATION"] = False


# -- Moodle ---------------------------------------------------------------------------------------------------

def test_moodle_registration_shows_what_it_registers_and_only_the_confirmation_registers(
        app, client, make_platform, do_launch, production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    page = open_page(client, moodle.start_registration(invite(app)))
    text = text_of(page)
    assert page.status_code == 200
    host = urlsplit(moodle.base_url).netloc
    for shown in (f"Moodle at {host}", moodle.issuer, moodle.authorize_url, moodle.token_url, moodle.jwks_url,
                  moodle.base_url + "/mod/lti/openid-registration.php", "send scores to its columns",
                  "read course rosters", "Springfield University"):
        assert shown in text, shown
    assert "<script>" not in text and "onclick" not in text  # scripts come from static files (CSP script-src 'self')
    # Looking changes nothing, here or in Moodle.
    assert platform_rows(app) == [] and moodle.tool_types == {} and invitation_rows(app)[0].used_at is None

    done = confirm(client, page)
    text = text_of(done)
    assert done.status_code == 200, text
    assert "pending" in text and "Activate" in text and "Show in activity chooser" in text
    assert 'src="/static/registration.js"' in text and "data-lti-close" in text
    [type_id] = moodle.tool_types
    assert moodle.tool_types[type_id]["state"] == "pending"
    [platform] = platform_rows(app)
    assert (platform.issuer, platform.client_id, platform.registered_by) == (moodle.issuer,
                                                                             moodle.tool_types[type_id]["clientid"],
                                                                             "dynamic")
    assert (platform.auth_login_url, platform.auth_token_url, platform.key_set_url) == (
        moodle.authorize_url, moodle.token_url, moodle.jwks_url)
    with app.app_context():
        assert [d.deployment_id for d in db.session.get(Platform, platform.id).deployments] == [str(type_id)]
    assert not platform.accept_new_deployments
    [invitation] = invitation_rows(app)
    assert invitation.used_at is not None and invitation.platform_id == platform.id
    assert invitation.outcome == "registered"
    sent = moodle.registrations[0]
    assert sent["initiate_login_uri"] == TOOL + "/lti/login" and sent["jwks_uri"] == TOOL + "/.well-known/jwks.json"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    assert {m["type"] for m in sent[TOOL_CONFIGURATION]["messages"]} == {"LtiResourceLinkRequest",
                                                                        "LtiDeepLinkingRequest"}
    moodle.activate(type_id)
    assert do_launch(moodle, "member").status_code == 303


def test_the_invitation_is_spent_once_and_a_used_link_says_what_to_do(app, client, make_platform,
                                                                     production_registration):
    url = invite(app)
    first = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, first.start_registration(url))).status_code == 200
    second = make_platform(register=False, emulator_class=MoodleEmulator)
    again = open_page(client, second.start_registration(url))
    text = text_of(again)
    assert again.status_code == 403
    assert "already used" in text and "Ask the tool's operator for a new registration link" in text
    assert second.registrations == [] and len(platform_rows(app)) == 1


def test_production_registration_needs_an_invitation(app, client, make_platform, production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    for url in (moodle.start_registration(TOOL + "/lti/register"),
                moodle.start_registration(TOOL + "/lti/register?invitation=made-up")):
        refused = open_page(client, url)
        assert refused.status_code == 403
        assert "registration link the tool's operator made for your institution" in text_of(refused)
    assert platform_rows(app) == [] and moodle.registrations == []


def test_an_expired_or_revoked_invitation_is_refused_with_its_reason(app, client, make_platform, runner,
                                                                    production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    expired = invite(app, lifetime=invitations.parse_lifetime("1m"))
    with app.app_context():
        db.session.execute(sa.update(RegistrationInvitation).values(expires_at=invitations.utcnow()))
        db.session.commit()
    text = text_of(open_page(client, moodle.start_registration(expired)))
    assert "expired on" in text
    revoked = invite(app)
    [_, newest] = invitation_rows(app)
    assert runner.invoke(args=["registration", "revoke", "--id", str(newest.id)]).exit_code == 0
    text = text_of(open_page(client, moodle.start_registration(revoked)))
    assert "withdrawn by the tool's operator" in text
    assert platform_rows(app) == []


def test_a_refused_registration_gives_the_invitation_back(app, client, make_platform, production_registration):
    url = invite(app)
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    page = open_page(client, moodle.start_registration(url))
    moodle.keys = [KeyPair.generate()]  # Moodle can no longer verify the token it issued: it refuses the POST
    refused = confirm(client, page)
    assert refused.status_code == 502
    text = text_of(refused)
    assert "Moodle refused the registration (HTTP 500)" in text and "start the registration again" in text
    assert "Traceback" not in text and "Signature" not in text  # nothing of the platform's answer in the page
    [invitation] = invitation_rows(app)
    assert invitation.used_at is None and platform_rows(app) == []
    # A fresh start from Moodle (a token signed with its current key) works with the same link.
    assert confirm(client, open_page(client, moodle.start_registration(url))).status_code == 200


def test_two_claims_of_one_invitation_get_one(app):
    url = invite(app)
    token = url.split("invitation=")[1]
    with app.app_context():
        first = invitations.claim(token)
        with pytest.raises(invitations.InvitationError, match="already used"):
            invitations.claim(token)
        invitations.release(first)
        invitations.claim(token)


def test_moodles_update_of_its_registration_changes_nothing_and_is_not_pending(app, client, make_platform, do_launch,
                                                                             production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(invite(app)))).status_code == 200
    [type_id] = moodle.tool_types
    moodle.activate(type_id)
    [before] = platform_rows(app)

    page = open_page(client, moodle.start_registration(invite(app, "Springfield again"), update_type=type_id))
    text = text_of(page)
    assert "Update the registration" in text and "already registered" not in text
    done = confirm(client, page)
    text = text_of(done)
    assert done.status_code == 200, text
    assert "The registration is up to date" in text and "pending" not in text.lower()
    assert "Show in activity chooser and as a preconfigured tool" in text  # Moodle's Update reset that setting
    [after] = platform_rows(app)
    columns = ("id", "issuer", "client_id", "auth_login_url", "auth_token_url", "key_set_url",
               "accept_new_deployments", "name", "created_at")
    assert [getattr(after, c) for c in columns] == [getattr(before, c) for c in columns]
    assert moodle.tool_types[type_id]["state"] == "configured" and len(moodle.registrations) == 2
    assert invitation_rows(app)[1].outcome == "unchanged"
    assert do_launch(moodle, "member").status_code == 303


def test_moodles_update_naming_other_endpoints_is_refused_and_the_registration_kept(
        app, client, make_platform, production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(invite(app)))).status_code == 200
    [type_id] = moodle.tool_types
    with app.app_context():  # the tool has Moodle's old token endpoint on record (Moodle moved since)
        db.session.execute(sa.update(Platform).values(auth_token_url="https://old.example.edu/mod/lti/token.php"))
        db.session.commit()
    second_invitation = invite(app)
    refused = confirm(client, open_page(client, moodle.start_registration(second_invitation, update_type=type_id)))
    text = text_of(refused)
    assert refused.status_code == 409
    assert f"token endpoint: https://old.example.edu/mod/lti/token.php → {moodle.token_url}" in text
    assert "never changes an existing registration" in text
    [platform] = platform_rows(app)
    assert platform.auth_token_url == "https://old.example.edu/mod/lti/token.php"
    assert invitation_rows(app)[1].used_at is None  # nothing registered: the link still works


def test_registering_the_same_moodle_again_says_so_and_points_to_update(app, client, make_platform,
                                                                        production_registration):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(invite(app)))).status_code == 200
    [first] = platform_rows(app)
    page = open_page(client, moodle.start_registration(invite(app)))
    text = text_of(page)
    assert page.status_code == 200
    assert "already registered with this tool" in text and first.client_id in text
    assert "choose <strong>Update</strong> next to the existing tool" in text
    assert "Register a second tool anyway" in text
    # The plain Register button is not offered: a POST without the explicit choice sends nothing to Moodle.
    fields = hidden_fields(text)
    refused = client.post("/lti/register", data=fields, headers={"Origin": TOOL})
    assert refused.status_code == 409 and "use Update" not in text_of(refused)
    assert "choose Update next to the existing tool" in text_of(refused)
    assert len(moodle.registrations) == 1 and len(platform_rows(app)) == 1
    # The admin can still choose a second tool deliberately.
    second = client.post("/lti/register", data={**fields, "confirm_duplicate": "1"}, headers={"Origin": TOOL})
    assert second.status_code == 200 and len(platform_rows(app)) == 2


# -- takeover and conflicts (issue 8.1) ------------------------------------------------------------------------

def _forged_admin_launch(client, victim, attacker_key: KeyPair):
    """A launch for the victim's issuer and client id, signed with the attacker's key."""
    login = client.get("/lti/login", query_string={"iss": victim.issuer, "login_hint": "admin",
                                                   "target_link_uri": TOOL + "/lti/launch",
                                                   "client_id": victim.client_id,
                                                   "lti_deployment_id": victim.deployment_id})
    assert login.status_code == 302
    state, nonce = state_and_nonce(login.location)
    claims = victim.claims_for("admin", nonce)
    return client.post("/lti/launch", data={"id_token": victim.sign(claims, key=attacker_key), "state": state})


def test_a_configuration_claiming_another_platforms_issuer_cannot_take_it_over(app, client, make_platform):
    victim = make_platform()  # registered by hand: its issuer, client id and key set
    [before] = platform_rows(app)
    attacker = make_platform(register=False, issuer=victim.issuer, client_id=victim.client_id)
    url = invite(app, "An invitation the attacker holds")
    start = (f"{url}&openid_configuration={attacker.base_url}/.well-known/openid-configuration"
             f"&registration_token={attacker.registration_token}")
    refused = open_page(client, start)
    text = text_of(refused)
    assert refused.status_code == 400
    assert "names its issuer at" in text and "on another site" in text
    assert attacker.registrations == []
    [after] = platform_rows(app)
    assert (after.key_set_url, after.auth_login_url, after.accept_new_deployments) == (
        before.key_set_url, before.auth_login_url, False)
    assert invitation_rows(app)[0].used_at is None
    forged = _forged_admin_launch(client, victim, attacker.active_key)
    assert forged.status_code == 401 and "unknown_kid" in text_of(forged)


def test_a_registration_answer_naming_an_existing_client_with_other_endpoints_changes_nothing(app, client,
                                                                                             make_platform):
    platform = make_platform(register=False)  # the same site: the origin check passes, the stored row must hold
    with app.app_context():
        platforms.add_platform({**platform.registration, "key_set_url": platform.base_url + "/keys-on-record"})
        db.session.commit()
    [before] = platform_rows(app)
    start = (f"{TOOL}/lti/register?openid_configuration={platform.base_url}/.well-known/openid-configuration"
             f"&registration_token={platform.registration_token}")
    # Even when the admin insists on registering again, an answer naming a client id the tool has changes nothing.
    refused = confirm(client, open_page(client, start), confirm_duplicate="1")
    text = text_of(refused)
    assert refused.status_code == 409
    assert f"key set: {platform.base_url}/keys-on-record → {platform.base_url}/jwks" in text
    [after] = platform_rows(app)
    assert after.key_set_url == before.key_set_url and not after.accept_new_deployments


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null"])
def test_the_registration_post_must_come_from_the_tools_own_page(app, client, make_platform, origin):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    page = open_page(client, moodle.start_registration(TOOL + "/lti/register"))
    refused = confirm(client, page, origin=origin)
    assert refused.status_code == 403 and "not submitted from the tool's own page" in text_of(refused)
    assert moodle.registrations == [] and platform_rows(app) == []


def test_the_registration_post_needs_the_form_the_tool_made_for_these_parameters(app, client, make_platform):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    page = open_page(client, moodle.start_registration(TOOL + "/lti/register")).get_data(as_text=True)
    fields = hidden_fields(page)
    other = make_platform(register=False, emulator_class=MoodleEmulator)
    swapped = {**fields, "openid_configuration": other.openid_configuration_url}
    for data in ({k: v for k, v in fields.items() if k != "form_token"}, swapped):
        refused = client.post("/lti/register", data=data, headers={"Origin": TOOL})
        assert refused.status_code == 400
    assert moodle.registrations == other.registrations == [] and platform_rows(app) == []


# -- Canvas (issue 10.5) ----------------------------------------------------------------------------------------

def test_canvas_registration_reads_the_top_level_deployment_and_accepts_new_installations(
        app, client, make_platform, do_launch, production_registration):
    canvas = make_platform(register=False, emulator_class=CanvasEmulator)
    page = open_page(client, canvas.start_registration(invite(app, "Springfield Public Schools")))
    assert "Springfield Public Schools (Canvas)" in text_of(page)
    done = confirm(client, page)
    text = text_of(done)
    assert done.status_code == 200, text
    assert "turn the new key <strong>On</strong>" in text and "pending" not in text
    sent = canvas.registrations[0]
    tool_configuration = sent[TOOL_CONFIGURATION]
    placements = [p for m in tool_configuration["messages"] for p in m["placements"]]
    assert "ContentArea" not in placements  # older Canvas schemas refuse the whole registration for it (422)
    navigation = next(m for m in tool_configuration["messages"] if m["type"] == "LtiResourceLinkRequest")
    assert navigation["placements"] == ["course_navigation"]
    assert navigation["https://canvas.instructure.com/lti/visibility"] == "members"
    canvas_json = client.get("/lti/config/canvas.json").get_json()
    assert tool_configuration["https://canvas.instructure.com/lti/tool_id"] == canvas_json["extensions"][0]["tool_id"]
    assert tool_configuration["custom_parameters"] == canvas_json["custom_fields"]
    assert tool_configuration["https://canvas.instructure.com/lti/privacy_level"] == "public"
    [platform] = platform_rows(app)
    assert platform.client_id == canvas.client_id and platform.accept_new_deployments
    assert platform.name == "Springfield Public Schools (Canvas)"
    with app.app_context():
        assert [d.deployment_id for d in db.session.get(Platform, platform.id).deployments] == [canvas.deployment_id]
    assert re.fullmatch(r"\d+:[0-9a-f]{40}", canvas.deployment_id)
    assert do_launch(canvas, "member").status_code == 303
    course = canvas.install(4242, "course-101")  # installed again in a course: a new deployment
    assert do_launch(canvas, "member").status_code == 303
    with app.app_context():
        assert course in db.session.scalars(sa.select(Deployment.deployment_id)).all()


def test_canvas_registration_tokens_expire_in_an_hour(app, client, make_platform):
    canvas = make_platform(register=False, emulator_class=CanvasEmulator)
    start = canvas.start_registration(TOOL + "/lti/register")
    token = dict(re.findall(r"(\w+)=([^&]+)", urlsplit(start).query))["registration_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - time.time() == pytest.approx(3600, abs=5)
    expired = open_page(client, canvas.start_registration(TOOL + "/lti/register", lifetime=-1))
    text = text_of(expired)
    assert expired.status_code == 502 and "HTTP 401" in text and "start the registration again" in text
    assert "Invalid access token" not in text  # the platform's answer stays in the log


def test_canvas_login_carries_its_real_parameters(make_platform):
    canvas = make_platform(emulator_class=CanvasEmulator)
    extras = canvas.login_extras()
    assert extras == {"canvas_region": "us-east-1", "canvas_environment": "prod",
                      "lti_storage_target": "post_message_forwarding"}


# -- the origin rule, with Canvas cloud's real configuration -----------------------------------------------------

CLOUD = "https://canvas.instructure.com"
CLOUD_ENDPOINTS = {"authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
                   "token_endpoint": "https://sso.canvaslms.com/login/oauth2/token",
                   "jwks_uri": "https://sso.canvaslms.com/api/lti/security/jwks",
                   "registration_endpoint": "https://springfield.instructure.com/api/lti/registrations"}
CLOUD_CONFIGURATION = "https://canvas.instructure.com/api/lti/security/openid-configuration?registration_token=x"


@pytest.mark.parametrize("url, issuer, endpoints", [
    (CLOUD_CONFIGURATION, CLOUD, CLOUD_ENDPOINTS),
    ("https://springfield.instructure.com/api/lti/security/openid-configuration", CLOUD, CLOUD_ENDPOINTS),
    ("https://canvas.beta.instructure.com/api/lti/security/openid-configuration",
     "https://canvas.beta.instructure.com",
     {k: v.replace("sso.canvaslms.com", "sso.beta.canvaslms.com").replace("springfield.instructure.com",
                                                                          "springfield.beta.instructure.com")
      for k, v in CLOUD_ENDPOINTS.items()}),
    ("https://canvas.instructure.com/api/lti/security/openid-configuration", CLOUD,
     {**CLOUD_ENDPOINTS, "authorization_endpoint": "https://canvas.instructure.com/api/lti/authorize_redirect"}),
    ("https://moodle.example.edu/moodle/mod/lti/openid-configuration.php", "https://moodle.example.edu/moodle",
     {name: f"https://moodle.example.edu/moodle/mod/lti/{name}.php" for name in CLOUD_ENDPOINTS}),
], ids=["cloud", "cloud from the school's host", "beta", "cloud's old auth domain", "moodle in a folder"])
def test_real_platform_configurations_pass_the_origin_rule(url, issuer, endpoints):
    check_origins(url, issuer, endpoints)


@pytest.mark.parametrize("url, issuer, endpoints", [
    ("https://evil.example/openid", CLOUD, CLOUD_ENDPOINTS),
    ("https://canvas.instructure.com.evil.example/x", CLOUD, CLOUD_ENDPOINTS),
    ("https://instructure.com.evil.example/x", CLOUD, CLOUD_ENDPOINTS),
    ("http://canvas.instructure.com/x", CLOUD, CLOUD_ENDPOINTS),
    ("https://canvas.instructure.com:8443/x", CLOUD, CLOUD_ENDPOINTS),
    (CLOUD_CONFIGURATION, CLOUD, {**CLOUD_ENDPOINTS, "jwks_uri": "https://evil.example/jwks"}),
    (CLOUD_CONFIGURATION, CLOUD, {**CLOUD_ENDPOINTS, "jwks_uri": "https://sso.canvaslms.com.evil.example/jwks"}),
    (CLOUD_CONFIGURATION, CLOUD, {**CLOUD_ENDPOINTS, "jwks_uri": "https://sso.beta.canvaslms.com/jwks"}),
    (CLOUD_CONFIGURATION, CLOUD, {**CLOUD_ENDPOINTS, "token_endpoint": "https://a.b.instructure.com/token"}),
    (CLOUD_CONFIGURATION, CLOUD, {**CLOUD_ENDPOINTS, "registration_endpoint": "https://canvas.school.edu/api"}),
    ("https://canvas.beta.instructure.com/x", "https://canvas.beta.instructure.com", CLOUD_ENDPOINTS),
    ("https://moodle.example.edu/mod/lti/openid-configuration.php", "https://moodle.victim.edu",
     {name: f"https://moodle.example.edu/{name}" for name in CLOUD_ENDPOINTS}),
    ("https://moodle.example.edu/mod/lti/openid-configuration.php", "https://moodle.example.edu",
     {**{name: f"https://moodle.example.edu/{name}" for name in CLOUD_ENDPOINTS},
      "jwks_uri": "https://keys.example.net/jwks"}),
    ("https://moodle.example.edu/x", "https://moodle.example.edu",
     {name: f"http://moodle.example.edu/{name}" for name in CLOUD_ENDPOINTS}),
    ("https://moodle.example.edu/x", "https://moodle.example.edu",
     {name: f"https://moodle.example.edu:8443/{name}" for name in CLOUD_ENDPOINTS}),
], ids=["cloud issuer from another site", "look-alike host", "look-alike domain", "cloud over http",
        "cloud on another port", "key set elsewhere", "look-alike sso", "sso of another environment",
        "two labels under instructure.com", "vanity registration endpoint", "prod endpoints for beta",
        "another platform's issuer", "key set on another site", "endpoints over http", "endpoints on another port"])
def test_everything_else_fails_the_origin_rule(url, issuer, endpoints):
    with pytest.raises(LaunchError) as refused:
        check_origins(url, issuer, endpoints)
    assert refused.value.reason == "registration_origin"


# -- development mode and the operator's commands ------------------------------------------------------------------

def test_development_registers_without_an_invitation(app, client, make_platform):
    assert app.config["REGISTRATION_WITHOUT_INVITATION"]
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(TOOL + "/lti/register"))).status_code == 200
    assert len(platform_rows(app)) == 1 and invitation_rows(app) == []


def test_registration_without_its_parameters_says_where_it_starts(client):
    missing = client.get("/lti/register")
    assert missing.status_code == 400 and "Dynamic Registration starts in your LMS" in text_of(missing)


def test_operator_commands_create_list_and_revoke_invitations(app, runner):
    made = runner.invoke(args=["registration", "create", "--name", "Springfield University", "--expires-in", "2w"])
    assert made.exit_code == 0, made.output
    [url] = re.findall(r"http://localhost:5000/lti/register\?invitation=\S+", made.output)
    assert "cannot be shown again" in made.output
    [invitation] = invitation_rows(app)
    assert url.split("=")[1] not in json.dumps([invitation.token_hash, invitation.name])  # only a hash is kept
    assert (invitation.expires_at - invitation.created_at).days == 14
    listed = runner.invoke(args=["registration", "list"])
    assert f"{invitation.id}\topen\tSpringfield University" in listed.output
    assert url not in listed.output
    assert runner.invoke(args=["registration", "revoke", "--id", str(invitation.id)]).exit_code == 0
    assert "\trevoked\t" in runner.invoke(args=["registration", "list"]).output
    bad = runner.invoke(args=["registration", "create", "--name", "X", "--expires-in", "forever"])
    assert bad.exit_code != 0 and "like 30m, 12h, 7d or 2w" in bad.output
    assert runner.invoke(args=["registration", "revoke", "--id", "999"]).exit_code != 0


def test_a_moodle_registered_by_hand_is_recognised_before_registering_it_again(app, client, make_platform):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    with app.app_context():  # typed by an admin, with a trailing slash
        platforms.add_platform({**moodle.registration, "issuer": moodle.issuer + "/", "client_id": "by-hand"})
        db.session.commit()
    page = text_of(open_page(client, moodle.start_registration(TOOL + "/lti/register")))
    assert "is already registered with this tool" in page and "by-hand" in page
