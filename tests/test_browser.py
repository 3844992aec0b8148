"""Real headless Chromium through the demo LMS and the tool's real endpoints."""
import pytest

pytestmark = pytest.mark.browser


def register_in_browser(page, name="Dana Rivera"):
    """Fill in the program's registration form that a member's first launch shows."""
    page.wait_for_url("**/registration?first=1")
    assert page.get_by_role("heading", level=1).inner_text() == "Register for the Bargaining Certificate"
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Local association").fill("Worcester Education Association")
    page.get_by_label("Education support professional").check()
    page.get_by_label("PreK-12").check()
    page.get_by_label("None yet").check()
    page.get_by_role("button", name="Register").click()


@pytest.mark.parametrize("button, name, role", [
    ("Launch as member", "Dana Rivera", "member"),
    ("Launch as instructor", "Sam Okafor", "instructor"),
])
def test_demo_launch_in_chromium(live_server, browser_page, button, name, role):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name=button).click()
    if role == "member":
        register_in_browser(page)
        page.wait_for_url("**/l/*/")
        assert page.get_by_role("heading", level=1).inner_text() == "Bargaining Certificate"
    else:  # an instructor's course link opens the course home
        page.wait_for_url("**/l/*/course")
        assert page.get_by_role("heading", level=1).inner_text() == \
            "Course home: Demo Local: Bargaining Certificate"
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
    assert page.get_by_role("heading", level=1).inner_text() == \
        "Add Bargaining Certificate content to Demo Local: Bargaining Certificate"


def test_reloading_the_launch_does_not_replay_it(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    register_in_browser(page)
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
    register_in_browser(page)
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
            assert page.locator(f"#activity-{activity.slug}").locator("textarea, input[type=text]").first \
                .input_value().startswith("In our local:")
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


def test_member_progress_page_in_chromium(app, live_server, browser_page):
    import sqlalchemy as sa

    from lti_tool.extensions import db
    from lti_tool.models import Account
    from lti_tool.services import certificates, ledger

    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    register_in_browser(page, name="Dana R. Rivera")
    page.wait_for_url("**/l/*/")
    with app.app_context():
        account = db.session.scalars(sa.select(Account).where(Account.sub == "demo-member")).one()
        for slug in ("bargaining-foundations", "democratized-bargaining", "contract-costing", "power-mapping",
                     "impact-bargaining"):
            hours = 6 if slug.startswith(("bargaining", "democratized")) else 3
            ledger.record_hours(account_id=account.id, module_slug=slug, hours=hours, source="workshop_grade",
                                source_ref=f"browser:{slug}", details={"venue": "Union Skills Winter Conference"})
        certificates.evaluate(account.person_id)
        db.session.commit()
    page.get_by_role("link", name="My certificate progress").click()
    assert page.get_by_role("heading", level=1).inner_text() == "My certificate progress"
    assert "21 of 24 hours" in page.locator(".result").inner_text()
    assert "1 more Specialized Topics elective" in page.locator(".result").inner_text()
    specialized = page.get_by_role("region", name="Specialized Topics")
    assert specialized.locator("progress").get_attribute("value") == "75"
    assert "Union Skills Winter Conference" in specialized.inner_text()
    assert page.get_by_role("link", name="Download the certificate (PDF)").count() == 0

    with app.app_context():
        account = db.session.scalars(sa.select(Account).where(Account.sub == "demo-member")).one()
        ledger.record_hours(account_id=account.id, module_slug="esp-bargaining", hours=3, source="workshop_grade",
                            source_ref="browser:esp")
        certificate = certificates.evaluate(account.person_id)
        db.session.commit()
    page.reload()
    assert f"Certificate {certificate.number}" in page.locator(".certificate-card").inner_text()
    assert "Dana R. Rivera" in page.locator(".certificate-card").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the certificate (PDF)").click()
    assert download.value.suggested_filename == f"bargaining-certificate-{certificate.number}.pdf"
    page.get_by_role("link", name="Public verification page").click()
    assert "Valid." in page.locator(".certificate-card").inner_text()
