"""The deep-linking picker in real headless Chromium: groups that open and filter, a workshop's fields shown as
soon as "Graded workshop" is ticked, a sticky bar that says what is chosen, and every field there without
JavaScript."""
import pytest

from tests.test_accessibility import violations

pytestmark = pytest.mark.browser


def _open_picker(page, live_server):
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Deep link as instructor").click()
    page.wait_for_url("**/deep-link")


def test_picker_is_scannable_and_says_what_is_chosen(live_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 1000, "height": 800})
    _open_picker(page, live_server)
    # The groups start closed: the whole catalog fits on one screen, with the action bar in sight.
    assert page.evaluate("document.documentElement.scrollHeight") < 1600
    assert page.locator("#module-contract-costing").is_hidden()
    assert page.locator("#chosen-summary").inner_text() == "Nothing chosen yet."
    assert violations(page) == [], "picker, closed"

    # Find a module by its title: its group opens, the others stay out of the way.
    page.get_by_label("Find a module").fill("costing")
    assert page.locator("#filter-status").inner_text() == "1 module matches."
    assert page.locator("#module-contract-costing").is_visible()
    assert page.locator("#module-educator-compensation").is_hidden()
    assert page.locator("#pick-foundations").is_hidden()

    item = page.locator("#module-contract-costing")
    date = item.get_by_label("Date of the workshop")
    assert date.is_hidden()  # no workshop fields before the workshop is chosen
    item.get_by_label("Graded workshop").check()
    assert date.is_visible() and item.get_by_label("Venue").is_visible()
    assert item.get_by_label("Conference or training").is_visible()
    assert page.locator("#chosen-summary").inner_text() == \
        "Chosen: Contract Costing and Economic Indicators (graded workshop)"
    assert page.locator("#pick-specialized .group-chosen").inner_text() == "1 chosen"

    # Clearing the search brings every group back; the chosen one stays open, the bar stays in sight.
    page.get_by_label("Find a module").fill("")
    assert page.locator("#pick-foundations").is_visible() and not page.locator("#pick-foundations").evaluate(
        "d => d.open")
    for group in ("foundations", "democratized"):
        page.locator(f"#pick-{group} summary").click()
    page.locator("#module-bargaining-foundations").get_by_label("Self-paced module").check()
    assert "Bargaining Foundations (self-paced module)" in page.locator("#chosen-summary").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    button = page.get_by_role("button", name="Add to the course").bounding_box()
    assert button["y"] + button["height"] <= 800, "the action bar sticks to the bottom of the screen"
    item.get_by_label("Graded workshop").uncheck()
    assert date.is_hidden()
    assert violations(page) == [], "picker, open with a choice"


def test_picker_without_javascript_shows_every_field(live_server, browser_page):
    # The demo LMS posts its launch with a script: launch there, then open the same picker without JavaScript.
    _open_picker(browser_page, live_server)
    context = browser_page.context.browser.new_context(java_script_enabled=False)
    context.add_cookies(browser_page.context.cookies())
    page = context.new_page()
    try:
        page.goto(browser_page.url)
        page.locator("#pick-specialized summary").click()
        item = page.locator("#module-contract-costing")
        assert item.get_by_label("Date of the workshop").is_visible()
        assert page.get_by_label("Find a module").is_hidden()  # the filter needs the script
        item.get_by_label("Graded workshop").check()
        page.get_by_role("button", name="Add to the course").click()
        # The server says what is missing, the group is open and the fields are there to fill in.
        assert "Enter the date of the workshop." in page.locator("#module-contract-costing").inner_text()
        assert page.locator("#module-contract-costing").get_by_label("Date of the workshop").is_visible()
        assert page.locator("#chosen-summary").inner_text() == \
            "Chosen: Contract Costing and Economic Indicators (graded workshop)"
    finally:
        context.close()
