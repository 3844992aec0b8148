"""Browsers that block the tool's cookies in the LMS iframe: postMessage storage, then a new window."""
import html
import json
import re

import pytest

from lti_tool.lti.claims import Role, ToolRole, tool_role
from tests.conftest import register
from tests.platform import login_params, state_and_nonce


def _login_with_storage(client, emulator):
    """Start a Canvas-like login; return state, nonce and what the login page keeps in the platform's storage."""
    response = client.get("/lti/login",
                          query_string=login_params(emulator, lti_storage_target="post_message_forwarding"))
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "lti.put_data" not in text  # the protocol lives in the static script
    config = json.loads(html.unescape(re.search(r'<script type="application/json" id="login-check">(.*?)</script>',
                                                text, re.DOTALL).group(1)))
    assert config["storageTarget"] == "post_message_forwarding"
    assert config["platformOrigin"] == emulator.base_url  # messages go to the platform's origin only
    location = re.search(r'id="continue" class="button" href="([^"]+)"', text).group(1).replace("&amp;", "&")
    state, nonce = state_and_nonce(location)
    assert config["storageKey"] == "state_" + state
    return state, nonce, config["storageProof"]


def test_launch_without_cookie_is_confirmed_through_platform_storage_then_opens_in_a_new_window(app, client,
                                                                                                 platform):
    state, nonce, stored_proof = _login_with_storage(client, platform)
    token = platform.sign(platform.claims_for("member", nonce))
    iframe = app.test_client()  # the iframe's requests carry none of the tool's cookies
    check = iframe.post("/lti/launch", data={"id_token": token, "state": state})
    assert check.status_code == 200
    page = check.get_data(as_text=True)
    assert "Checking your launch" in page and 'name="lti_storage_proof"' in page
    assert stored_proof not in page  # the proof comes only from the platform's storage

    verified = iframe.post("/lti/launch", data={"id_token": token, "state": state, "lti_storage_proof": stored_proof})
    assert verified.status_code == 200
    handoff = re.search(r'href="(/lti/resume/[^"]+)"', verified.get_data(as_text=True)).group(1)

    new_window = app.test_client()
    landed = new_window.get(handoff)
    assert landed.status_code == 303
    register(new_window, landed.location)
    assert "Maria Member" in new_window.get(landed.location).get_data(as_text=True)
    assert app.test_client().get(handoff).status_code == 401  # the hand-off works once
    # and the id_token itself is spent
    again = iframe.post("/lti/launch", data={"id_token": token, "state": state, "lti_storage_proof": stored_proof})
    assert again.status_code == 401


@pytest.mark.parametrize("claimed", [
    {"lti_storage_verified": "1"},          # what the page used to post
    {"lti_storage_proof": "1"},
    {"lti_storage_proof": ""},
    {"lti_storage_proof": "state"},         # replaced below by the state itself
])
def test_another_browser_with_a_captured_token_and_state_gets_no_session(app, client, platform, claimed):
    state, nonce, _ = _login_with_storage(client, platform)
    token = platform.sign(platform.claims_for("member", nonce))
    attacker = app.test_client()  # a separate browser: none of the first one's cookies, no access to its LMS page
    if claimed.get("lti_storage_proof") == "state":
        claimed = {"lti_storage_proof": state}
    response = attacker.post("/lti/launch", data={"id_token": token, "state": state, **claimed})
    text = response.get_data(as_text=True)
    assert "/lti/resume/" not in text and "/l/" not in (response.location or "")
    if "lti_storage_proof" in claimed:
        assert response.status_code == 401 and "did not confirm" in text
    else:
        assert response.status_code == 200 and "Checking your launch" in text  # asked to prove it, nothing more
    # nothing was spent: the member's own browser still gets in
    assert client.post("/lti/launch", data={"id_token": token, "state": state}).status_code == 303


def test_handoff_link_cannot_be_forged(client):
    response = client.get("/lti/resume/not-a-real-token")
    assert response.status_code == 401 and "not valid" in response.get_data(as_text=True)


@pytest.mark.parametrize("roles, expected", [
    ([Role.LEARNER], ToolRole.MEMBER),
    (["Learner"], ToolRole.MEMBER),
    ([Role.INSTRUCTOR], ToolRole.INSTRUCTOR),
    ([Role.TEACHING_ASSISTANT], ToolRole.INSTRUCTOR),
    ([Role.CONTENT_DEVELOPER], ToolRole.INSTRUCTOR),
    ([Role.LEARNER, Role.INSTITUTION_ADMIN], ToolRole.ADMIN),
    ([Role.SYSTEM_ADMIN], ToolRole.ADMIN),
    (["http://purl.imsglobal.org/vocab/lis/v2/system/person#User"], None),
    ([], None),
])
def test_lti_roles_map_to_tool_roles(roles, expected):
    assert tool_role([str(r) for r in roles]) == expected


def test_cookies_are_samesite_none_secure_partitioned_over_https(app, platform, do_launch):
    from tests.platform import login_params

    app.config.update(PUBLIC_BASE_URL="https://certificate.example.org", SESSION_COOKIE_SECURE=True,
                      SESSION_COOKIE_SAMESITE="None", SESSION_COOKIE_PARTITIONED=True)
    client = app.test_client()
    response = client.get("/lti/login", base_url="https://certificate.example.org",
                          query_string=login_params(platform, target_link_uri="https://certificate.example.org/lti/launch"))
    state_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("lti_state_"))
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in state_cookie
    form = platform.authorize(response.location)
    form.pop("action")
    launched = client.post("/lti/launch", base_url="https://certificate.example.org", data=form)
    assert launched.status_code == 303
    session_cookie = next(c for c in launched.headers.getlist("Set-Cookie") if c.startswith("lti_tool_session="))
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Partitioned"):
        assert attribute in session_cookie
