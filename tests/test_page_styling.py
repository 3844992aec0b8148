"""What a newcomer notices on every page: a favicon, inputs that look alike, a pager inside the reading column,
and the demo course's title."""
import re

import pytest

from tests.test_accessibility import register_in_browser_page


@pytest.mark.parametrize("path", ["/", "/demo/", "/demo/gradebook", "/lti/login?iss=https://unknown.example.edu"])
def test_every_page_links_a_favicon_that_is_served(client, path):
    page = client.get(path).get_data(as_text=True)
    href = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page).group(1)
    with client.get(href) as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml" and b"<svg" in icon.data


def test_the_demo_course_title_is_said_once(client):
    page = client.get("/demo/").get_data(as_text=True)
    assert re.search(r"<h1>([^<]+)</h1>", page).group(1) == "Demo Local: Bargaining Certificate"
    title = re.search(r"<title>([^<]+)</title>", page).group(1)
    assert title == "BARG-101 course page · Demo LMS · Bargaining Certificate"
    assert "Demo LMS: Demo Local" not in page


STYLE = ["borderTopWidth", "borderTopStyle", "borderTopColor", "borderRadius", "paddingTop", "paddingLeft",
         "fontSize", "fontFamily", "backgroundColor"]


def _style(page, selector: str) -> dict:
    return page.eval_on_selector(selector, "(e, names) => { const s = getComputedStyle(e); "
                                           "return Object.fromEntries(names.map(n => [n, s[n]])); }", STYLE)


@pytest.mark.browser
def test_email_and_date_inputs_look_like_the_text_inputs(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    page.wait_for_url("**/registration?first=1")
    text = _style(page, "#reg-name")
    assert _style(page, "input[type=email]") == text
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Deep link as instructor").click()
    page.wait_for_url("**/deep-link")
    # a workshop's fields show once its group is open and "Graded workshop" is ticked
    page.locator("#pick-foundations summary").click()
    page.locator("#module-bargaining-foundations").get_by_label("Graded workshop").check()
    assert _style(page, "input[type=date]") == _style(page, "input[id^=venue-]") == text


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 800, 375])
def test_the_sections_next_button_stays_inside_the_text_column(app, live_server, browser_page, width):
    from lti_tool.catalog import current_catalog

    with app.app_context():
        # the section whose "Next: <title>" is longest
        _, module, section = max(((len(m.sections[i + 1].title), m, m.sections[i])
                                  for m in current_catalog().modules for i in range(len(m.sections) - 1)),
                                 key=lambda found: found[0])
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    register_in_browser_page(page)
    page.wait_for_url("**/l/*/")
    page.goto(page.url + f"modules/{module.slug}/sections/{section.slug}")
    text_column = page.locator("article.reading").bounding_box()
    for button in page.locator("nav.pager a").all():
        box = button.bounding_box()
        assert box["x"] >= text_column["x"] - 0.5
        assert box["x"] + box["width"] <= text_column["x"] + text_column["width"] + 0.5, button.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
