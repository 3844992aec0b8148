"""The tool inside an LMS iframe on another site, where the browser does not send the tool's cookies:
the launch is confirmed through the platform's postMessage storage and continues in a new window."""
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.browser


def _course_site(app, lms) -> str:
    """The course page's origin: "localhost", where the tool is "127.0.0.1", so the frame is third-party."""
    site = lms.base_url.replace("127.0.0.1", "localhost")
    # The LMS's registration names 127.0.0.1: allow its other name to frame the tool, as an operator would.
    app.config["FRAME_ANCESTORS"] = site
    app.extensions.pop("platform_origins", None)
    return site


def test_framed_launch_without_cookies_uses_platform_storage_then_a_new_window(app, live_server, make_platform,
                                                                              browser_page):
    lms = make_platform()
    login = live_server + "/lti/login?" + urlencode({
        "iss": lms.issuer, "login_hint": "member", "target_link_uri": live_server + "/lti/launch",
        "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id, "lti_storage_target": "_parent"})
    course = _course_site(app, lms) + "/course?" + urlencode({"tool_login": login})
    page = browser_page
    page.goto(course)
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_role("heading", name="Open Bargaining Certificate in a new window").wait_for()
    # the tool stored state and nonce with the platform at login, and read them back at launch
    assert page.evaluate("window.putCount") == 2 and page.evaluate("window.getCount") == 2
    with page.context.expect_page() as new_window:
        frame.get_by_role("link", name="Open in a new window").click()
    window = new_window.value
    window.wait_for_load_state()
    # first-party now: the member's first launch asks for the program's registration
    assert "/registration" in window.url
    assert window.get_by_role("heading", level=1).inner_text() == "Register for the Bargaining Certificate"


def test_framed_launch_without_cookies_or_storage_offers_to_start_again_in_a_new_window(app, live_server,
                                                                                       make_platform, browser_page):
    lms = make_platform()
    login = live_server + "/lti/login?" + urlencode({
        "iss": lms.issuer, "login_hint": "member", "target_link_uri": live_server + "/lti/launch",
        "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id})
    course = _course_site(app, lms) + "/course?" + urlencode({"tool_login": login})
    page = browser_page
    page.goto(course)
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_text("Your browser did not keep this tool's cookie").wait_for()
    with page.context.expect_page() as new_window:
        frame.get_by_role("link", name="Open the tool in a new window").click()
    window = new_window.value
    window.wait_for_url("**/registration?first=1")
    assert window.get_by_role("heading", level=1).inner_text() == "Register for the Bargaining Certificate"
