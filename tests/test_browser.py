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


def test_member_completes_a_whole_module_in_chromium(app, live_server, browser_page):
    from lti_tool.catalog import current_catalog

    with app.app_context():
        module = current_catalog().module("esp-bargaining")
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    page.wait_for_url("**/l/*/")
    page.get_by_role("link", name=module.title).click()
    assert page.get_by_role("heading", level=1).inner_text() == module.title
    page.get_by_role("link", name=f"Start: {module.sections[0].title}").click()

    for number, section in enumerate(module.sections, start=1):
        assert page.get_by_role("heading", level=1).inner_text() == section.title
        assert f"Section {number} of {len(module.sections)}" in page.locator("nav.breadcrumbs").inner_text()
        for activity in (a for a in module.activities if a.section == section.slug):
            form = page.locator(f"#activity-{activity.slug}")
            for field in activity.fields:
                form.get_by_label(field.label, exact=False).first.fill(f"In our local: {field.label[:40]}")
            form.get_by_role("button", name="Save my answers").click()
            page.wait_for_load_state()
            assert f"Your answers to “{activity.title}” are saved." in page.locator(".flashes").inner_text()
            # the answers stay visible to the member
            assert page.locator(f"#activity-{activity.slug}").locator("textarea, input[type=text]").first.input_value() \
                .startswith("In our local:")
        if number < len(module.sections):
            page.get_by_role("link", name=f"Next: {module.sections[number].title} →").click()
        else:
            page.get_by_role("link", name="Next: the knowledge check →").click()

    page.wait_for_url("**/check")
    for index, question in enumerate(module.knowledge_check.questions, start=1):
        group = page.locator("fieldset.question").nth(index - 1)
        for choice_index, choice in enumerate(question.choices):
            if choice.correct:
                group.locator(f"input[value='{choice_index}']").check()
    page.get_by_role("button", name="Check my answers").click()
    page.wait_for_load_state()
    result = page.locator(".result").inner_text()
    assert "You scored 100%" in result and f"You completed {module.title}" in result
    page.get_by_role("link", name="Back to the module").click()
    assert page.locator("#module-progress").get_attribute("value") == "100"
