"""WCAG 2.1 A and AA checks by axe-core in real headless Chromium, on the pages people use."""
import pytest

pytestmark = pytest.mark.browser

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"]}


def violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG)
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes: {v['nodes'][0]['target']})"
            for v in results.response["violations"]]


def test_member_pages_pass_axe(app, live_server, browser_page):
    from lti_tool.catalog import current_catalog

    with app.app_context():
        module = current_catalog().module("contract-costing")
    page = browser_page
    page.goto(live_server + "/demo/")
    assert violations(page) == []
    page.get_by_role("button", name="Launch as member").click()
    page.wait_for_url("**/registration?first=1")
    assert violations(page) == [], "registration form"
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state()
    assert violations(page) == [], "registration form with errors"
    register_in_browser_page(page)
    page.wait_for_url("**/l/*/")
    home = page.url
    assert violations(page) == [], "catalog"
    page.goto(home + f"modules/{module.slug}")
    assert violations(page) == [], "module overview"
    activity = module.activities[0]
    page.goto(home + f"modules/{module.slug}/sections/{activity.section}")
    assert violations(page) == [], "section with a worksheet"
    page.locator(f"#activity-{activity.slug}").get_by_role("button", name="Save my answers").click()
    page.wait_for_load_state()
    assert violations(page) == [], "worksheet with errors"
    page.goto(home + f"modules/{module.slug}/check")
    assert violations(page) == [], "knowledge check"
    page.get_by_role("button", name="Check my answers").click()
    page.wait_for_load_state()
    assert violations(page) == [], "knowledge check errors"
    for path, what in (("progress", "progress page"), ("link-accounts", "link accounts")):
        page.goto(home + path)
        assert violations(page) == [], what
    page.goto(live_server + "/verify/BC-2026-NOPE22")
    assert violations(page) == [], "verification page"


def register_in_browser_page(page):
    page.get_by_label("Your name").fill("Dana Rivera")
    page.get_by_label("Local association").fill("Worcester Education Association")
    page.get_by_label("Teacher").check()
    page.get_by_label("PreK-12").check()
    page.get_by_label("None yet").check()
    page.get_by_role("button", name="Register").click()


def test_error_page_passes_axe(live_server, browser_page):
    browser_page.goto(live_server + "/lti/login?iss=https://unknown.example.edu")
    assert browser_page.get_by_role("alert").inner_text().startswith("The login request has no 'login_hint'")
    assert violations(browser_page) == []


def test_pages_work_on_a_phone_sized_screen(live_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    register_in_browser_page(page)
    page.wait_for_url("**/l/*/")
    # nothing wider than the screen: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_instructor_pages_pass_axe_and_fit_a_phone(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as instructor").click()
    page.wait_for_url("**/l/*/course")
    assert violations(page) == [], "course home"
    page.set_viewport_size({"width": 375, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "course home on a phone"
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Deep link as instructor").click()
    page.wait_for_url("**/deep-link")
    page.locator("#pick-specialized summary").click()
    page.locator("#module-contract-costing").get_by_label("Graded workshop").check()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "picker on a phone"
    assert violations(page) == [], "picker on a phone"
