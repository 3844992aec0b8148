"""A section that states law, in real Chromium: cards included, Source notes as links, shorthand read aloud, axe \
clean."""
import pytest

from tests.test_accessibility import violations
from tests.test_browser import register_in_browser

pytestmark = pytest.mark.browser


def test_a_section_with_cards_and_source_notes_in_chromium(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as member").click()
    register_in_browser(page)
    page.wait_for_url("**/l/*/")
    page.goto(page.url + "modules/bargaining-foundations/sections/law-and-process")
    article = page.locator("article.reading")
    # The strike-ban and funding cards are part of the page, with their sources as real links.
    assert ("The strike ban." in article.inner_text()
            and "How the money for a contract is found." in article.inner_text())
    strike = article.get_by_role("link", name="M.G.L. c. 150E, § 9A").first
    assert strike.get_attribute("href") == ("https://malegislature.gov/Laws/GeneralLaws/PartI/TitleXXI/Chapter150E/"
                                            "Section9A")
    assert article.get_by_role("link", name="M.G.L. c. 71, § 34").count() == 1
    assert article.get_by_role("link", name="School Committee of Newton v. Labor Relations Commission, 388 Mass. 557 "
                                            "(1983)").count() >= 1
    assert "{{" not in article.inner_text()
    # The first statute shorthand on the page is written out for a listener.
    assert "(chapter 150E, section 8)" in article.inner_text()
    assert violations(page) == [], "section with cards and Source notes"
