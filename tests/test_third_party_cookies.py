"""Every browser gets in from a Moodle course page on another site, with Moodle's one-time login hint.

Chromium with third-party cookies blocked stands in for Safari (ITP), Firefox with strict tracking protection and
Chrome with third-party cookies blocked: the tool (127.0.0.1) is framed by a Moodle-like course page ("localhost", \
another
site) whose auth.php spends the login hint on first use, as Moodle's does.
"""

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.platform import MoodleEmulator
from tests.test_accessibility import violations

pytestmark = pytest.mark.browser

REGISTRATION_HEADING = "Register for the Bargaining Certificate"


@pytest.fixture
def chromium(playwright_driver):
    """Open pages in real headless Chromium with third-party cookies blocked; yield a page opener."""
    # One renderer process for the course page and the tool's frame: under load, Playwright sometimes loses track
    # of a cross-site frame that moves to a process of its own mid-navigation, and then waits forever on its
    # content. Cookies, storage and postMessage follow the sites, not the processes, so what is tested is the same.
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=[
        *CHROMIUM_ARGS, "--test-third-party-cookie-phaseout", "--disable-site-isolation-trials",
        "--disable-features=IsolateOrigins,site-per-process"])
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30000)  # generous: a loaded CI machine is slow, a broken page still fails
    yield page
    context.close()
    browser.close()


@pytest.fixture
def moodle(app, live_server, make_platform):
    """A Moodle-like LMS on another site than the tool, with the tool placed in a course (launch container: Embed)."""
    lms = make_platform(emulator_class=MoodleEmulator, host="localhost")
    lms.tool_login_url = live_server + "/lti/login"
    lms.tool_launch_url = live_server + "/lti/launch"
    return lms


def _cookies_as_over_https(app, partitioned: bool) -> None:
    # What PUBLIC_BASE_URL=https://... sets; Chromium keeps Secure cookies from http://127.0.0.1 too.
    app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="None",
                      SESSION_COOKIE_PARTITIONED=partitioned)


def test_blocked_cookies_the_member_gets_in_through_a_new_window_with_the_unused_hint(app, moodle, chromium):
    # Unpartitioned SameSite=None; Secure cookies, as Safari treats every third-party cookie: not kept in the frame.
    _cookies_as_over_https(app, partitioned=False)
    page = chromium
    page.goto(moodle.base_url + "/mod/lti/view.php")
    frame = page.frame_locator("#contentframe")
    frame.get_by_text("does not let this tool keep its cookie").wait_for()
    # the tool found out before sending the browser to Moodle: the hint launch.php issued is still unused
    assert len(moodle.open_hints) == 1 and moodle.refused_hints == 0
    assert frame.get_by_role("button", name="Let the tool use its cookies here").is_visible()
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="Open the tool in a new window").click()
    window = opened.value
    window.wait_for_url("**/registration?first=1")
    assert window.get_by_role("heading", level=1).inner_text() == REGISTRATION_HEADING
    assert moodle.open_hints == {} and moodle.refused_hints == 0  # Moodle's hint, used once, by the new window
    frame.get_by_text("The tool opened in a new window").wait_for()


def test_plain_http_across_sites_says_why_and_the_new_window_still_gets_in(app, moodle, chromium):
    page = chromium  # the tool's own settings for http://: SameSite=Lax cookies, never kept in another site's frame
    page.goto(moodle.base_url + "/mod/lti/view.php")
    frame = page.frame_locator("#contentframe")
    frame.get_by_text("served over plain").wait_for()
    text = frame.locator("#blocked").inner_text()
    assert "no browser setting lets the tool sign you in inside the course page" in text
    assert "serve the tool over https" in text and "New window" in text
    assert not frame.get_by_role("button", name="Let the tool use its cookies here").is_visible()
    assert violations(page.frame(name="contentframe")) == [], "the page that offers the new window"
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="Open the tool in a new window").click()
    window = opened.value
    # Moodle's POST back is cross-site, so the Lax cookie stays behind; the tool posts it again from its own page.
    window.wait_for_url("**/registration?first=1")
    assert window.get_by_role("heading", level=1).inner_text() == REGISTRATION_HEADING
    assert moodle.refused_hints == 0


def test_where_the_browser_keeps_the_cookie_the_tool_opens_in_the_frame_without_a_detour(app, moodle, chromium):
    # The tool's https cookies are Partitioned (CHIPS): Chrome keeps them in the frame even with third-party
    # cookies blocked.
    _cookies_as_over_https(app, partitioned=True)
    page = chromium
    page.goto(moodle.base_url + "/mod/lti/view.php")
    frame = page.frame_locator("#contentframe")
    frame.get_by_role("heading", level=1, name=REGISTRATION_HEADING).wait_for()
    assert len(page.context.pages) == 1  # no new window
    assert "/registration?first=1" in page.frame(name="contentframe").url
    assert moodle.open_hints == {} and moodle.refused_hints == 0


def test_with_storage_access_the_member_stays_in_the_frame(app, moodle, chromium):
    _cookies_as_over_https(app, partitioned=False)
    page = chromium
    # Stands in for the member accepting the browser's storage-access prompt.
    page.context.grant_permissions(["storage-access"])
    page.goto(moodle.base_url + "/mod/lti/view.php")
    frame = page.frame_locator("#contentframe")
    frame.get_by_text("does not let this tool keep its cookie").wait_for()
    assert moodle.refused_hints == 0 and len(moodle.open_hints) == 1
    frame.get_by_role("button", name="Let the tool use its cookies here").click()
    frame.get_by_role("heading", level=1, name=REGISTRATION_HEADING).wait_for()
    # the session holds inside the frame: the registration form goes through and the catalog follows
    frame.get_by_label("Your name").fill("Maria Member")
    frame.get_by_label("Email").fill("maria@example.org")
    frame.get_by_label("Local association").fill("Springfield Education Association")
    for choice in ("Teacher", "PreK-12", "None yet"):
        frame.get_by_label(choice).check()
    frame.get_by_role("button", name="Register").click()
    frame.get_by_text("Thank you for registering.").wait_for()
    assert len(page.context.pages) == 1 and moodle.open_hints == {} and moodle.refused_hints == 0


def test_canvas_with_blocked_cookies_confirms_through_its_storage_then_opens_a_new_window(app, live_server,
                                                                                         make_platform, chromium):
    from urllib.parse import urlencode

    from tests.platform import CanvasEmulator, login_params

    _cookies_as_over_https(app, partitioned=False)
    canvas = make_platform(emulator_class=CanvasEmulator, host="localhost")
    login = live_server + "/lti/login?" + urlencode(login_params(canvas, target_link_uri=live_server + "/lti/launch"))
    page = chromium
    page.goto(canvas.base_url + "/course?" + urlencode({"tool_login": login}))
    frame = page.frame_locator("iframe[name=tool]")
    frame.get_by_role("heading", name="Open Bargaining Certificate in a new window").wait_for()
    storage = page.frame(name="post_message_forwarding")  # on Canvas's authorization origin
    assert storage.evaluate("window.putCount") == 1 and storage.evaluate("window.getCount") == 1
    with page.context.expect_page() as opened:
        frame.get_by_role("link", name="Open in a new window").click()
    window = opened.value
    window.wait_for_url("**/registration?first=1")
    assert window.get_by_role("heading", level=1).inner_text() == REGISTRATION_HEADING
