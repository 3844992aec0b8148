"""The instructor's home for a course, through real launches: placed workshops with attendance and grades, the
members from the LMS roster with their certificate progress, gradebook sync counts, guides, and who may see it."""
import re

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Course, OutboxScore, Platform
from lti_tool.services import ledger
from tests.test_workshops import (
    FOUNDATIONS,
    POWER_MAPPING,
    account_id,
    enrol_maria,
    make_workshop,
    open_as_instructor,
    place,
    post_grades,
    text,
)


def _instructor_home(client, do_launch, emulator, user="instructor") -> str:
    """Launch the course link as an instructor; return the course home it lands on."""
    response = do_launch(emulator, user)
    assert response.status_code == 303
    landing = client.get(response.location)
    assert landing.status_code == 302 and landing.location.endswith("/course"), text(landing)
    return landing.location


def _row(html: str, table: str, name: str) -> str:
    """Return the text of the row of `table` that starts with `name`, tags removed."""
    body = html.split(f'id="{table}"')[1].split("</table>")[0]
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
        plain = " ".join(re.sub(r"<[^>]+>", " ", row).split())
        if plain.startswith(name):
            return plain
    raise AssertionError(f"no row for {name} in {table}")


def test_instructor_course_link_lands_on_the_course_home(app, client, platform, do_launch):
    url = _instructor_home(client, do_launch, platform)
    html = text(client.get(url))
    assert "Course home: Course course-101" in html
    assert "signed in as <strong>instructor</strong>" in html
    assert "No graded workshop is placed in this course yet" in html
    # How to place content where the LMS starts the picker, in both LMSs.
    assert "Canvas" in html and "Moodle" in html and "Select content" in html
    # Every facilitator guide is one click away.
    assert html.count("/facilitator-guide") >= 14


def test_admin_course_link_lands_on_the_course_home_too(client, platform, do_launch):
    url = _instructor_home(client, do_launch, platform, user="admin")
    assert "signed in as <strong>admin</strong>" in text(client.get(url))


def test_course_home_shows_workshops_members_progress_and_gradebook(app, client, platform, do_launch,
                                                                     member_launch):
    # Two roster members who never opened the tool, and Maria, who did and has hours of her own.
    platform.add_members(2)
    enrol_maria(platform)
    member_launch(platform)
    with app.app_context():
        ledger.record_hours(account_id=account_id(app, "user-member-1"), module_slug=POWER_MAPPING, hours=3,
                            source="admin_adjustment", source_ref="test:maria", reason="Power mapping at another local")
        db.session.commit()
    public_id = make_workshop(app, platform)
    # Grade Maria and one roster member in the workshop, from its placed link.
    place(platform, public_id, lineitem=True)
    grading = open_as_instructor(client, do_launch, platform)
    maria, roster_1 = account_id(app, "user-member-1"), None
    client.get(grading)  # reads the roster
    roster_1 = account_id(app, "roster-1")
    response = post_grades(client, grading, {
        maria: {"present": "1", "hours": "6", "result": "complete"},
        roster_1: {"present": "1", "hours": "2", "result": "incomplete"}})
    assert response.status_code == 303

    # Back to the course link (no placement) as the instructor.
    platform.resource_link_id = "course-link"
    platform.claim_overrides.pop("https://purl.imsglobal.org/spec/lti/claim/custom")
    platform.claim_overrides.pop("https://purl.imsglobal.org/spec/lti-ags/claim/endpoint")
    html = text(client.get(_instructor_home(client, do_launch, platform)))

    row = _row(html, "workshops", "Bargaining Foundations")
    assert "Summer Conference 2026, Worcester, Room 4" in row and "Jul 14, 2026" in row
    assert " 2 2 of 3 " in row + " "  # two present, two graded of the three members
    assert f"/workshops/{public_id}\"" in html and f"/workshops/{public_id}/check-in-code" in html

    assert "Maria Member 9 " in _row(html, "members", "Maria Member") + " "  # 6 from the workshop, 3 adjusted
    never = _row(html, "members", "Roster Member 2")
    assert "Has not opened the tool yet" in never and " 0 " in never
    assert "2 more hours of Bargaining Foundations" not in never and "6 more hours of Bargaining Foundations" in never
    assert "Has not opened the tool yet" not in _row(html, "members", "Maria Member")
    assert "from the LMS roster" in html

    with app.app_context():
        queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxScore)
                                   .where(OutboxScore.status == "pending"))
    assert queued >= 2
    assert f"0 scores sent to the LMS gradebook, {queued} waiting to be sent, 0 refused by the LMS" in html
    # The workshop's module is listed first among the guides.
    guides = html.split('id="guides"')[1]
    assert guides.index(FOUNDATIONS) < guides.index("democratized-bargaining")


def test_course_home_shows_only_its_own_course(app, client, platform, do_launch, member_launch):
    make_workshop(app, platform, event="Course 101 training")
    platform.add_members(1)
    _instructor_home(client, do_launch, platform)
    # The same instructor in another course of the same LMS: no workshop, no member of course-101.
    platform.context_id = "course-202"
    platform.members.clear()
    html = text(client.get(_instructor_home(client, do_launch, platform)))
    assert "Course home: Course course-202" in html
    assert "Course 101 training" not in html and "Roster Member 1" not in html
    assert "No graded workshop is placed in this course yet" in html


def test_course_home_counts_failed_scores_of_this_course_only(app, client, platform, do_launch):
    url = _instructor_home(client, do_launch, platform)
    with app.app_context():
        course = db.session.scalars(sa.select(Course)).one()
        other = Course(lms_id=course.lms_id, context_id="course-999", title="Other")
        db.session.add(other)
        db.session.flush()
        platform_id = db.session.scalars(sa.select(Platform.id)).one()
        for n, (course_id, status) in enumerate([(course.id, "failed"), (course.id, "sent"), (other.id, "failed"),
                                                 (other.id, "failed")]):
            db.session.add(OutboxScore(platform_id=platform_id, course_id=course_id, line_item_url=f"x#{n}",
                                       user_id=f"u{n}", payload={}, status=status))
        db.session.commit()
    html = text(client.get(url))
    assert "1 score sent to the LMS gradebook, 0 waiting to be sent, 1 refused by the LMS" in html
    assert "See what went wrong and retry them" in html


def test_members_cannot_open_the_course_home(client, platform, member_launch):
    home = member_launch(platform)
    assert client.get(home).status_code == 200  # members land on the catalog
    response = client.get(home + "course")
    assert response.status_code == 403
    assert "This page is for instructors" in text(response)


def test_another_browser_cannot_open_the_course_home(app, client, platform, do_launch):
    url = _instructor_home(client, do_launch, platform)
    assert app.test_client().get(url).status_code == 401


def test_instructor_placed_module_link_still_opens_the_module(client, platform, do_launch):
    platform.claim_overrides["https://purl.imsglobal.org/spec/lti/claim/custom"] = {
        "module": FOUNDATIONS, "mode": "self_paced"}
    response = do_launch(platform, "instructor")
    landing = client.get(response.location)
    assert landing.status_code == 302 and landing.location.endswith(f"/modules/{FOUNDATIONS}")
    # ... and the course home lists it as a self-paced module placed here.
    html = text(client.get(response.location + "course"))
    assert 'id="self-paced"' in html and "Bargaining Foundations" in html.split('id="self-paced"')[1]
