"""Dynamic Registration in real Chromium, framed as Moodle and Canvas frame it (on another site than the tool):
the admin sees what will be registered, confirms, and the LMS gets its close message."""
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Platform
from tests.platform import CanvasEmulator, MoodleEmulator

pytestmark = pytest.mark.browser


def _platforms(app) -> list[Platform]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Platform)))


def _click_finish(page, frame) -> None:
    """Click Finish with the page's mouse, as the admin does. Moodle removes the registration's frame when it gets
    the close message, and a click aimed at the frame can then wait on a frame that is gone."""
    finish = frame.get_by_role("button", name="Finish")
    finish.scroll_into_view_if_needed()
    box = finish.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_moodle_add_lti_advantage_in_its_iframe(app, live_server, make_platform, browser_page):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    # Moodle's admin page is on "localhost", the tool on "127.0.0.1": another site, as in a real install.
    manage = moodle.base_url.replace("127.0.0.1", "localhost") + "/mod/lti/toolconfigure.php?" + urlencode(
        {"url": live_server + "/lti/register"})
    page = browser_page
    page.goto(manage)
    frame = page.frame_locator("iframe[title='Tool registration']")
    frame.get_by_role("heading", level=1).filter(has_text="Register Bargaining Certificate with Moodle").wait_for()
    assert _platforms(app) == []
    frame.get_by_role("button", name="Register").click()
    frame.get_by_role("heading", name="Bargaining Certificate is registered").wait_for()
    assert "pending" in frame.locator("main").inner_text()
    _click_finish(page, frame)
    page.wait_for_function("window.closedWith === 'org.imsglobal.lti.close'")
    [platform] = _platforms(app)
    assert platform.issuer == moodle.issuer and list(moodle.tool_types) == [1]


def test_canvas_lti_registration_in_its_nested_frames(app, live_server, make_platform, browser_page):
    canvas = make_platform(register=False, emulator_class=CanvasEmulator)
    keys_page = canvas.base_url.replace("127.0.0.1", "localhost") + "/accounts/1/developer_keys?" + urlencode(
        {"registration_url": live_server + "/lti/register"})
    page = browser_page
    page.goto(keys_page)
    frame = page.frame_locator("iframe[title='Install app']").frame_locator("iframe[title='Tool registration']")
    frame.get_by_text("Springfield Public Schools (Canvas)").first.wait_for()
    frame.get_by_role("button", name="Register").click()
    frame.get_by_role("heading", name="Bargaining Certificate is registered").wait_for()
    _click_finish(page, frame)
    # Canvas's dr_iframe forwards the message only when it comes from the tool's origin.
    page.wait_for_function("window.closedWith === 'org.imsglobal.lti.close'")
    [platform] = _platforms(app)
    assert platform.client_id == canvas.client_id and platform.accept_new_deployments


def test_registration_pages_pass_axe(app, live_server, make_platform, browser_page):
    from tests.test_accessibility import violations

    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    page = browser_page
    page.goto(moodle.start_registration(live_server + "/lti/register"))
    assert violations(page) == [], "confirmation"
    page.get_by_role("button", name="Register").click()
    page.get_by_role("heading", name="Bargaining Certificate is registered").wait_for()
    assert violations(page) == [], "registered"
    page.goto(moodle.start_registration(live_server + "/lti/register"))
    page.get_by_text("is already registered with this tool").wait_for()
    assert violations(page) == [], "already registered"


def test_moodle_update_chosen_on_moodles_page_leaves_the_registration_as_it_was(app, live_server, make_platform,
                                                                               browser_page):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    manage = moodle.base_url.replace("127.0.0.1", "localhost") + "/mod/lti/toolconfigure.php?" + urlencode(
        {"url": live_server + "/lti/register"})
    page = browser_page
    page.goto(manage)
    frame = page.frame_locator("iframe[title='Tool registration']")
    frame.get_by_role("button", name="Register").click()
    frame.get_by_role("heading", name="Bargaining Certificate is registered").wait_for()
    moodle.activate(1)
    [before] = _platforms(app)
    page.goto(manage)  # the admin adds the tool's URL again: Moodle offers to update the tool it has
    frame.get_by_role("link", name="Update").click()
    frame.get_by_role("button", name="Confirm the update").click()
    frame.get_by_role("heading", name="The registration is up to date").wait_for()
    assert "pending" not in frame.locator("main").inner_text().lower()
    _click_finish(page, frame)
    page.wait_for_function("window.closedWith === 'org.imsglobal.lti.close'")
    [after] = _platforms(app)
    assert (after.id, after.client_id, after.key_set_url) == (before.id, before.client_id, before.key_set_url)
    assert moodle.tool_types[1]["state"] == "configured"
