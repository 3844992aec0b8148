"""The login finds out whether a framed browser keeps the tool's cookie before it sends the browser to the platform,
because Moodle spends its one-time login hint there; otherwise it carries the untouched login into a new window."""
import html
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.platform import MoodleEmulator, login_params

FRAMED = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
NEW_WINDOW = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
              "Sec-Fetch-User": "?1"}
FROM_THE_PLATFORM = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


@pytest.fixture
def moodle(make_platform):
    """A registered Moodle-like platform that spends its login hint on first use."""
    return make_platform(emulator_class=MoodleEmulator)


def _text(response) -> str:
    return response.get_data(as_text=True)


def _check_config(response) -> dict:
    found = re.search(r'<script type="application/json" id="login-check">(.*?)</script>', _text(response), re.DOTALL)
    return json.loads(html.unescape(found.group(1)))


def _new_window_url(response) -> str:
    return html.unescape(re.search(r'id="new-window" class="button" href="([^"]+)"', _text(response)).group(1))


def _launch(browser, emulator, location, headers=None):
    form = emulator.authorize(location)
    form.pop("action")
    return browser.post("/lti/launch", data=form, headers=headers or {})


def test_moodle_emulator_spends_its_login_hint_on_first_use(client, moodle):
    params = login_params(moodle)
    first = client.post("/lti/login", data=params)
    assert _launch(client, moodle, first.location).status_code == 303
    # The same login again (what a "new window" link replaying it would do): Moodle answers invalid_request.
    again = client.post("/lti/login", data=params)
    refused = _launch(client, moodle, again.location)
    assert refused.status_code == 400 and "The platform refused the launch: invalid_request" in _text(refused)
    assert moodle.refused_hints == 1


def test_framed_login_on_another_site_checks_the_cookie_before_going_to_the_platform(app, client, moodle):
    params = login_params(moodle)
    hint = params["lti_message_hint"]
    response = client.post("/lti/login", data=params, headers=FRAMED)
    assert response.status_code == 200 and response.location is None  # not sent to the platform yet
    assert hint in moodle.open_hints  # so Moodle's hint is still unused
    config = _check_config(response)
    assert config["authUrl"].startswith(moodle.authorize_url)
    assert response.headers["Cache-Control"] == "no-store"
    # The new window carries the platform's login request untouched: every parameter, the hint included.
    carried = parse_qs(urlparse(_new_window_url(response)).query)
    assert {k: v[0] for k, v in carried.items()} == params


def test_the_new_window_gets_in_with_the_hint_the_frame_left_unused(app, client, moodle):
    framed = client.post("/lti/login", data=login_params(moodle), headers=FRAMED)
    window = app.test_client()  # in the new window the tool's cookie is first-party
    login = window.get(_new_window_url(framed), headers=NEW_WINDOW)
    assert login.status_code == 302
    launched = _launch(window, moodle, login.location, headers={"Sec-Fetch-Site": "same-origin"})
    assert launched.status_code == 303 and "/l/" in launched.location
    assert moodle.refused_hints == 0


def test_the_cookie_check_says_whether_this_browser_sent_the_state_cookie_back(app, client, moodle):
    response = client.post("/lti/login", data=login_params(moodle), headers=FRAMED)
    config = _check_config(response)
    assert client.get(config["checkUrl"]).get_json() == {"kept": True}
    cookieless = app.test_client()
    assert cookieless.get(config["checkUrl"]).get_json() == {"kept": False}
    # After the browser grants storage access, the page sets the cookie again: only with the value it was given.
    assert cookieless.post(config["checkUrl"], data={"binding": "guess"}).status_code == 403
    assert cookieless.get(config["checkUrl"]).get_json() == {"kept": False}
    assert cookieless.post(config["checkUrl"], data={"binding": config["binding"]}).status_code == 200
    assert cookieless.get(config["checkUrl"]).get_json() == {"kept": True}


@pytest.mark.parametrize("headers", [
    {},                                                                # no Fetch Metadata: as before
    {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"},    # a new window or tab
    {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "same-site"},       # framed by a page of the same site
])
def test_logins_where_the_cookie_is_first_party_go_straight_to_the_platform(client, moodle, headers):
    response = client.post("/lti/login", data=login_params(moodle), headers=headers)
    assert response.status_code == 302 and response.location.startswith(moodle.authorize_url)


def test_plain_http_across_sites_names_the_real_cause(client, moodle):
    text = _text(client.post("/lti/login", data=login_params(moodle), headers=FRAMED))
    assert "served over plain <code>http</code>" in text and "must be <code>Secure</code>" in text
    assert "serve the tool over https" in text and "<strong>New window</strong>" in text


def test_over_https_the_page_offers_storage_access_and_a_new_window(app, moodle):
    base = "https://certificate.example.org"
    app.config.update(PUBLIC_BASE_URL=base, SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="None",
                      SESSION_COOKIE_PARTITIONED=True)
    client = app.test_client()
    response = client.post("/lti/login", base_url=base, headers=FRAMED,
                           data=login_params(moodle, target_link_uri=base + "/lti/launch"))
    text = _text(response)
    assert "plain <code>http</code>" not in text
    assert "Let the tool use its cookies here" in text and "Open the tool in a new window" in text
    assert _check_config(response)["secure"] is True


def test_a_cross_site_launch_post_without_the_cookie_is_posted_again_from_the_tools_page(app, client, moodle):
    login = client.post("/lti/login", data=login_params(moodle), headers=NEW_WINDOW)
    form = moodle.authorize(login.location)
    form.pop("action")
    # SameSite=Lax (plain http) holds the cookie back from the platform's cross-site POST: nothing is spent yet.
    first = app.test_client().post("/lti/launch", data=form, headers=FROM_THE_PLATFORM)
    assert first.status_code == 200 and 'name="lti_resubmitted" value="1"' in _text(first)
    # another browser resubmitting gets nothing
    stranger = app.test_client().post("/lti/launch", data={**form, "lti_resubmitted": "1"},
                                      headers={"Sec-Fetch-Site": "same-origin"})
    assert stranger.status_code == 401
    # the member's browser, posting from the tool's own page, sends its cookie and gets in
    again = client.post("/lti/launch", data={**form, "lti_resubmitted": "1"}, headers={"Sec-Fetch-Site": "same-origin"})
    assert again.status_code == 303 and "/l/" in again.location


def test_a_cross_site_launch_post_with_the_cookie_goes_straight_in(client, moodle):
    login = client.post("/lti/login", data=login_params(moodle))
    assert _launch(client, moodle, login.location, headers=FROM_THE_PLATFORM).status_code == 303
