"""Real headless Chromium through the demo LMS and the tool's real endpoints."""
import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("button, name, role", [
    ("Launch as member", "Dana Rivera", "member"),
    ("Launch as instructor", "Sam Okafor", "instructor"),
])
def test_demo_launch_in_chromium(live_server, browser_page, button, name, role):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name=button).click()
    page.wait_for_url("**/l/*/")
    assert page.get_by_role("heading", level=1).inner_text() == "Bargaining Certificate"
    welcome = page.locator(".welcome").inner_text()
    assert name in welcome and f"signed in as {role}" in welcome
    assert "Demo Local: Bargaining Certificate" in welcome
    # Landmarks for screen readers, and a skip link that moves focus to the content.
    assert page.locator("main").count() == 1 and page.locator("header[role=banner]").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_deep_link_launch_in_chromium(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Deep link as instructor").click()
    page.wait_for_url("**/deep-link")
    assert "Adding content to the course" in page.content()


def test_reloading_the_launch_does_not_replay_it(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    page.wait_for_url("**/l/*/")
    page.reload()  # the launch answered with a redirect, so a reload is a plain GET
    assert "Dana Rivera" in page.locator(".welcome").inner_text()
