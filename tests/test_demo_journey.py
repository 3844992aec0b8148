"""A newcomer's whole loop in real headless Chromium: the instructor's course home, the demo LMS places a workshop,
the instructor grades it, the scores arrive in the demo LMS's gradebook (through the tool's real token, NRPS and
AGS calls), the course home counts them, and a graded member's catalog and progress page say what is next."""
import re

import pytest

from tests.test_accessibility import violations
from tests.test_browser import register_in_browser

pytestmark = pytest.mark.browser

MODULE = "democratized-bargaining"
TITLE = "Democratized Bargaining — workshop, Union Skills Winter Conference, 23 January 2027"


def _gradebook_rows(page) -> dict[str, list[str]]:
    rows = {}
    for row in page.locator("table.gradebook tbody tr").all():
        name = row.locator("th").inner_text().strip()
        rows[name] = [" ".join(cell.inner_text().split()) for cell in row.locator("td").all()]
    return rows


def _course_home(page, live_server):
    """Launch the demo course link as its instructor: the tool's course home."""
    page.goto(live_server + "/demo/")
    page.get_by_role("button", name="Launch as instructor").click()
    page.wait_for_url("**/l/*/course")
    assert page.get_by_role("heading", level=1).inner_text() == "Course home: Demo Local: Bargaining Certificate"


def _row(page, table: str, name: str) -> str:
    return " ".join(page.locator(f"#{table} tbody tr", has_text=name).inner_text().split())


def test_place_a_workshop_grade_two_members_and_see_the_scores_arrive(live_server, browser_page):
    page = browser_page
    page.goto(live_server + "/demo/")
    assert page.get_by_role("heading", level=1).inner_text() == "Demo Local: Bargaining Certificate"
    assert "Nothing is placed yet" in page.locator("main").inner_text()
    assert violations(page) == [], "demo course page"

    # 0. The instructor's course home: no workshop yet, the roster from the LMS, how to place content.
    _course_home(page, live_server)
    assert "No graded workshop is placed in this course yet" in page.locator("main").inner_text()
    assert "Has not opened the tool yet" in _row(page, "members", "Aisha Bello")
    assert violations(page) == [], "course home"
    page.get_by_role("link", name="Back to the demo course").click()
    page.wait_for_url("**/demo/")

    # 1. The instructor deep links: a graded workshop, from the tool's picker.
    page.get_by_role("button", name="Deep link as instructor").click()
    page.wait_for_url("**/deep-link")
    page.locator("#pick-democratized summary").click()  # the picker's groups start closed
    item = page.locator(f"#module-{MODULE}")
    date = item.get_by_label("Date of the workshop")
    assert date.is_hidden()
    item.get_by_label("Graded workshop").check()
    assert date.is_visible()  # the workshop's fields open as soon as it is chosen
    date.fill("2027-01-23")
    item.get_by_label("Venue").fill("Union hall, Worcester")
    item.get_by_label("Conference or training").fill("Union Skills Winter Conference")
    # The course's certificate progress column is the instructor's choice (off by default).
    page.get_by_label(re.compile(r"column to this course's gradebook")).check()
    page.get_by_role("button", name="Add to the course").click()

    # 2. The demo LMS keeps the placed link and offers to launch it.
    page.wait_for_url("**/demo/deep-link-return")
    assert page.get_by_role("heading", level=1).inner_text() == "Demo LMS received 1 item"
    placed = page.locator("li.placed-link")
    assert TITLE in placed.inner_text() and "mode=workshop" in placed.inner_text()
    assert "gradebook column" in placed.inner_text()
    assert violations(page) == [], "deep-link receipt"
    page.get_by_role("link", name="Back to the demo course").click()
    assert page.locator("li.placed-link h3").all_inner_texts() == [TITLE]

    # 3. Launch it as the instructor: the workshop's grading page, with the demo course's roster (NRPS).
    page.get_by_label("Open as").select_option(label="Sam Okafor (instructor)")
    page.get_by_role("button", name=f"Open {TITLE}").click()
    page.wait_for_url(re.compile(r".*/workshops/[0-9a-f-]+$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Workshop: Democratized Bargaining"
    roster = page.locator("#roster").inner_text()
    for name in ("Dana Rivera", "Luis Ortega", "Mei Chen", "Aisha Bello"):
        assert name in roster
    assert "from the LMS roster" in roster

    # 4. Grade two members.
    for name, hours in (("Luis Ortega", "6"), ("Mei Chen", "4.5")):
        page.get_by_label(f"{name} was present").check()
        page.get_by_label(f"Hours attended by {name}").fill(hours)
        page.get_by_label(f"Result for {name}").select_option("complete")
    page.get_by_role("button", name="Save grades").click()
    page.wait_for_load_state()
    assert "2 grades saved" in page.locator(".flashes").inner_text()

    # 5. The demo gradebook: send the queued scores (the background sender is off in tests) and see both.
    page.goto(live_server + "/demo/gradebook")
    page.get_by_role("button", name="Send queued grades now").click()
    page.wait_for_url("**/demo/gradebook")
    assert "0 failed" in page.locator(".flashes").inner_text()
    headers = page.locator("table.gradebook thead th").all_inner_texts()
    assert any(TITLE in h for h in headers) and any("Bargaining Certificate progress" in h for h in headers)
    rows = _gradebook_rows(page)
    workshop_column = next(i for i, h in enumerate(headers[1:]) if TITLE in h)
    assert rows["Luis Ortega"][workshop_column] == "6 of 6"
    assert rows["Mei Chen"][workshop_column] == "4.5 of 6"
    assert rows["Dana Rivera"][workshop_column] == "–" and rows["Aisha Bello"][workshop_column] == "–"
    assert violations(page) == [], "demo gradebook"

    # 6. The roster the demo LMS served.
    page.get_by_role("link", name="People").click()
    assert page.get_by_role("heading", level=1).inner_text() == "People"
    assert "Aisha Bello" in page.locator("table").inner_text()
    assert violations(page) == [], "demo people"

    # 7. The course home counts what happened: the workshop graded, the members' hours, the scores sent.
    _course_home(page, live_server)
    row = _row(page, "workshops", "Democratized Bargaining")
    assert "Union Skills Winter Conference, Union hall, Worcester" in row and "Jan 23, 2027" in row
    assert " 2 2 of 4 " in f" {row} "
    # name (graded without opening the tool), hours so far, what is left
    assert _row(page, "members", "Luis Ortega") == ("Luis Ortega Has not opened the tool yet 6 6 more hours of "
                                                    "Bargaining Foundations; 4 more Specialized Topics electives")
    assert "Mei Chen Has not opened the tool yet 4.5 " in _row(page, "members", "Mei Chen")
    assert "1.5 more hours of Democratized Bargaining" in _row(page, "members", "Mei Chen")
    assert re.match(r"\d+ scores sent to the LMS gradebook, 0 waiting to be sent, 0 refused by the LMS",
                    page.locator("#gradebook-status").inner_text())
    assert violations(page) == [], "course home with a graded workshop"

    # 8. Luis opens the course link: his catalog starts with his hours and the next module, his progress page
    #    links the next step of each requirement not yet met.
    page.goto(live_server + "/demo/")
    page.get_by_label("Or open the course link as").select_option(label="Luis Ortega (member)")
    page.get_by_role("button", name="Open the course link").click()
    register_in_browser(page, name="Luis Ortega")
    page.wait_for_url("**/l/*/")
    summary = page.locator("#next-steps")
    assert "6 of 24 hours so far" in summary.inner_text()
    assert "Start here: Bargaining Foundations" in summary.inner_text()
    assert violations(page) == [], "catalog with the next step"
    summary.get_by_role("link", name="Bargaining Foundations").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Bargaining Foundations"
    page.get_by_role("link", name="My certificate progress").click()
    assert page.locator("#g-democratized-next").inner_text() == "This requirement is met."
    assert page.locator("#g-foundations-next").inner_text().startswith("Next: Start Bargaining Foundations")
    assert violations(page) == [], "progress page with next steps"
