"""How platforms learn about the tool: the JWKS, Canvas's JSON, and LTI Dynamic Registration."""
import json

import jwt
import sqlalchemy as sa
from jwt.algorithms import RSAAlgorithm

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import Deployment, Platform


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


def _register(client, emulator, **extra):
    params = {"openid_configuration": emulator.base_url + "/.well-known/openid-configuration",
              "registration_token": emulator.registration_token}
    params.update(extra)
    return client.get("/lti/register", query_string=params)


def test_dynamic_registration_with_moodle_stores_platform_and_deployment_and_closes(app, client, make_platform,
                                                                                    do_launch):
    moodle = make_platform(register=False, product="moodle", client_id="moodle-abc123xyz")
    response = _register(client, moodle)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "org.imsglobal.lti.close" in text and "pending" in text
    sent = moodle.registrations[0]
    assert sent["initiate_login_uri"] == "http://localhost:5000/lti/login"
    assert sent["jwks_uri"] == "http://localhost:5000/.well-known/jwks.json"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"].split()
    tool_config = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert {m["type"] for m in tool_config["messages"]} == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
    with app.app_context():
        platform = db.session.scalars(sa.select(Platform)).one()
        assert (platform.issuer, platform.client_id, platform.registered_by) == (moodle.issuer, "moodle-abc123xyz",
                                                                                 "dynamic")
        assert [d.deployment_id for d in platform.deployments] == [moodle.deployment_id]
        assert not platform.accept_new_deployments
    assert do_launch(moodle, "member").status_code == 303


def test_dynamic_registration_with_canvas_accepts_deployments_at_first_launch(app, client, make_platform, do_launch):
    canvas = make_platform(register=False, product="canvas", client_id="10000000000042")
    assert _register(client, canvas).status_code == 200
    with app.app_context():
        platform = db.session.scalars(sa.select(Platform)).one()
        assert platform.accept_new_deployments and platform.deployments == []
    assert do_launch(canvas, "member").status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Deployment.deployment_id)).all() == [canvas.deployment_id]


def test_dynamic_registration_reused_token_says_start_again(app, client, make_platform):
    moodle = make_platform(register=False)
    assert _register(client, moodle).status_code == 200
    again = _register(client, moodle)
    assert again.status_code == 400
    assert "start the registration again from the platform" in again.get_data(as_text=True)


def test_dynamic_registration_errors_are_clear_and_store_nothing(app, client, make_platform):
    moodle = make_platform(register=False)
    missing = client.get("/lti/register")
    assert missing.status_code == 400 and "openid_configuration" in missing.get_data(as_text=True)
    wrong_token = _register(client, moodle, registration_token="wrong")
    assert wrong_token.status_code == 400 and "HTTP 401" in wrong_token.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Platform)) == 0


def test_dynamic_registration_needs_the_key_when_one_is_set(app, client, make_platform):
    app.config["REGISTRATION_KEY"] = "s3cret-key"
    moodle = make_platform(register=False)
    refused = _register(client, moodle)
    assert refused.status_code == 403 and "registration key" in refused.get_data(as_text=True)
    assert _register(client, moodle, key="s3cret-key").status_code == 200


def test_dynamic_registration_is_off_in_production_without_a_key(app, client, make_platform):
    app.config["REGISTRATION_KEY"] = None
    response = _register(client, make_platform(register=False))
    assert response.status_code == 403 and "LTI_REGISTRATION_KEY" in response.get_data(as_text=True)


def test_front_page_gives_admins_the_tools_addresses(client):
    html = client.get("/").get_data(as_text=True)
    for address in ("http://localhost:5000/lti/login", "http://localhost:5000/lti/launch",
                    "http://localhost:5000/.well-known/jwks.json", "http://localhost:5000/lti/config/canvas.json",
                    "http://localhost:5000/lti/register"):
        assert address in html
