"""The tool inside an LMS iframe on another site, where the browser does not send the tool's cookies:
the launch is confirmed through the platform's postMessage storage and continues in a new window."""
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.browser


def _course_page(app, lms, live_server, **extra):
    site = lms.base_url.replace("127.0.0.1", "localhost")
    # The LMS's registration names 127.0.0.1: allow its other name to frame the tool, as an operator would.
    app.config["FRAME_ANCESTORS"] = site
    app.extensions.pop("platform_origins", None)
    login = live_server + "/lti/login?" + urlencode({
        "iss": lms.issuer, "login_hint": "member", "target_link_uri": live_server + "/lti/launch",
        "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id, **extra})
    # The course page is on "localhost", the tool on "127.0.0.1": another site, so the frame is third-party.
    return site + "/course?" + urlencode({"tool_login": login})


def test_framed_launch_without_cookies_uses_platform_storage_then_a_new_window(app, live_server, make_platform,
                                                                              browser_page):
    lms = make_platform()
    page = browser_page
    page.goto(_course_page(app, lms, live_server, lti_storage_target="post_message_forwarding"))
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_role("heading", name="Open Bargaining Certificate in a new window").wait_for()
    # the tool kept its proof in the platform's storage frame (on the platform's origin) and read it back
    storage = page.frame(name="post_message_forwarding")
    assert storage.evaluate("window.putCount") == 1 and storage.evaluate("window.getCount") == 1
    with page.context.expect_page() as new_window:
        frame.get_by_role("link", name="Open in a new window").click()
    window = new_window.value
    window.wait_for_load_state()
    # first-party now: the member's first launch asks for the program's registration
    assert "/registration" in window.url
    assert window.get_by_role("heading", level=1).inner_text() == "Register for the Bargaining Certificate"


def test_messages_sent_before_the_platforms_storage_frame_has_loaded_are_sent_again(app, live_server,
                                                                                   make_platform, browser_page):
    """The tool's first message can leave before the LMS's storage frame exists; it is sent again until answered."""
    lms = make_platform()
    lms.storage_frame_delay = 1.2  # the tool's login page is ready well before the storage frame arrives
    page = browser_page
    page.goto(_course_page(app, lms, live_server, lti_storage_target="post_message_forwarding"))
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_role("heading", name="Open Bargaining Certificate in a new window").wait_for()
    storage = page.frame(name="post_message_forwarding")
    assert storage.evaluate("window.putCount") == 1 and storage.evaluate("window.getCount") == 1


def test_the_tool_sends_its_storage_messages_to_the_platforms_origin_only(app, live_server, make_platform,
                                                                          browser_page):
    lms = make_platform()
    page = browser_page
    # a storage frame of the same name served from another origin than the platform's authorization endpoint
    elsewhere = lms.base_url.replace("127.0.0.1", "localhost")
    page.goto(_course_page(app, lms, live_server, lti_storage_target="post_message_forwarding") + "&"
              + urlencode({"storage_origin": elsewhere}))
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_role("link", name="Open the tool in a new window").wait_for()
    assert page.frame(name="post_message_forwarding").evaluate("window.putCount") == 0  # it never got the proof


def test_framed_launch_without_cookies_or_storage_offers_to_start_again_in_a_new_window(app, live_server, make_platform,
                                                                                       browser_page):
    lms = make_platform()
    page = browser_page
    page.goto(_course_page(app, lms, live_server))
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_text("served over plain").wait_for()
    with page.context.expect_page() as new_window:
        frame.get_by_role("link", name="Open the tool in a new window").click()
    window = new_window.value
    window.wait_for_url("**/registration?first=1")
    assert window.get_by_role("heading", level=1).inner_text() == "Register for the Bargaining Certificate"
