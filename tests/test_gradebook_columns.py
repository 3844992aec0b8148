"""The gradebook as teachers read it: the progress column only by choice and once per course, a workshop's column
in hours or as a score out of 100, columns named by their label, workshop hours dated by the session."""
import re
from datetime import date

import sqlalchemy as sa

from lti_tool import grades_worker
from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import (
    Account,
    Course,
    LedgerEntry,
    LineItem,
    OutboxScore,
    ProgressColumn,
    Workshop,
)
from lti_tool.services import passback
from tests.platform import LTI
from tests.test_deep_linking import WORKSHOP, open_picker, page, read_response, submit
from tests.test_passback import complete_module
from tests.test_workshops import (
    GRADE_COLUMN,
    account_id,
    enrol_maria,
    make_workshop,
    open_as_instructor,
    place,
    post_grades,
    rows,
)

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
PROGRESS_TAG = "bargaining-certificate-progress"


def send(app) -> grades_worker.SendReport:
    with app.app_context():
        return grades_worker.send_all_due()


def progress_columns(lms) -> list[dict]:
    return [item for item in lms.line_items.values() if item.get("tag") == PROGRESS_TAG]


def course_id(app, context_id="course-101") -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Course.id).where(Course.context_id == context_id))


# -- the "Bargaining Certificate progress" column -----------------------------------------------------------------

def test_no_progress_column_unless_the_instructor_chooses_it(app, client, platform, do_launch, member_launch):
    home = member_launch(platform)
    with app.app_context():
        module = current_catalog().module("esp-bargaining")
    complete_module(client, home, module)
    send(app)
    assert progress_columns(platform) == []  # launching and earning hours make no course-total column
    picker = page(client.get(open_picker(client, do_launch, platform)))
    box = re.search(r'<input type="checkbox" name="progress_column" value="1"[^>]*>', picker).group(0)
    assert "checked" not in box  # offered, off by default
    assert "set its weight to 0" in picker and "Do not count this assignment towards the final grade" in picker


def test_choosing_the_progress_column_fills_it_once_for_the_course(app, client, platform, do_launch,
                                                                   member_launch):
    member_browser = app.test_client()
    home = member_launch(platform, browser=member_browser)
    with app.app_context():
        module = current_catalog().module("esp-bargaining")
    complete_module(member_browser, home, module)
    send(app)
    assert progress_columns(platform) == []

    # The instructor ticks it alone (no module): the LMS gets no content item, the course gets the column.
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, [], progress_column="1")
    _, _, claims = read_response(client, response, audience=platform.issuer)
    assert claims[DL + "content_items"] == []
    assert "Bargaining Certificate progress" in claims[DL + "msg"]
    assert "“Bargaining Certificate progress” gradebook column" in page(response)
    send(app)  # the member's hours so far reach it at once
    [column] = progress_columns(platform)
    assert (column["label"], column["scoreMaximum"]) == ("Bargaining Certificate progress", 24.0)
    assert [(s["userId"], s["scoreGiven"]) for s in platform.scores if s["lineItem"] == column["id"]] == [
        ("user-member-1", 3.0)]

    # Never a second one: the picker says the course has it, and a forged second request changes nothing.
    again = open_picker(client, do_launch, platform)
    assert "already has the “Bargaining Certificate progress” column" in page(client.get(again))
    assert 'name="progress_column"' not in page(client.get(again))
    read_response(client, submit(client, again, ["power-mapping:self_paced"], progress_column="1"),
                  audience=platform.issuer)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ProgressColumn)) == 1
        # Hours queued later go to the same column, found in the LMS even with the tool's cache gone.
        db.session.execute(sa.delete(LineItem))
        person_id = db.session.scalar(sa.select(Account.person_id).where(Account.sub == "user-member-1"))
        passback.queue_certificate_progress(person_id, course_id(app))
        db.session.commit()
    send(app)
    assert len(progress_columns(platform)) == 1


def test_the_progress_column_needs_a_course(app, client, platform, do_launch):
    platform.claim_overrides = {LTI + "context": None}
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, [], progress_column="1")
    assert response.status_code == 422 and "belongs to a course" in page(response)


# -- a workshop's column: hours or a score out of 100 ----------------------------------------------------------

def test_a_workshop_placed_with_a_score_column_asks_for_100_and_gets_the_score(app, client, platform, do_launch,
                                                                              member_launch):
    url = open_picker(client, do_launch, platform)
    picker = page(client.get(url))
    assert 'name="column-bargaining-foundations" value="hours" checked' in picker  # hours unless chosen
    response = submit(client, url, ["bargaining-foundations:workshop"],
                      **WORKSHOP, **{"column-bargaining-foundations": "score"})
    _, _, claims = read_response(client, response, audience=platform.issuer)
    [item] = claims[DL + "content_items"]
    assert item["lineItem"]["scoreMaximum"] == 100
    with app.app_context():
        workshop = db.session.scalars(sa.select(Workshop)).one()
        assert workshop.gradebook_column == "score"
        public_id = workshop.public_id

    # Graded from its own link (with the column the LMS made from that line item).
    line_item = place(platform, public_id, lineitem=True)
    platform.line_items[line_item]["scoreMaximum"] = 100
    platform.add_members(1)
    enrol_maria(platform)
    member_launch(platform)
    grading = open_as_instructor(client, do_launch, platform)
    shown = page(client.get(grading))
    assert "shows the <strong>score</strong> you give, out of 100" in shown
    maria, other = account_id(app, "user-member-1"), account_id(app, "roster-1")
    post_grades(client, grading, {maria: {"present": "1", "hours": "6", "result": "complete", "score": "92"},
                                  other: {"present": "1", "hours": "2", "result": "incomplete"}})
    by_user = {s.user_id: s.payload for s in rows(app, OutboxScore, GRADE_COLUMN)}
    assert (by_user["user-member-1"]["scoreGiven"], by_user["user-member-1"]["scoreMaximum"]) == (92, 100)
    # No score given: an empty cell, not hours read as a score out of 100.
    assert "scoreGiven" not in by_user["roster-1"] and by_user["roster-1"]["gradingProgress"] == "Pending"
    send(app)
    assert {s["userId"]: s.get("scoreGiven") for s in platform.scores} == {"user-member-1": 92.0,
                                                                           "roster-1": None}


def test_a_workshop_placed_for_hours_asks_for_the_modules_hours(app, client, platform, do_launch):
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["bargaining-foundations:workshop"], **WORKSHOP)
    _, _, claims = read_response(client, response, audience=platform.issuer)
    assert claims[DL + "content_items"][0]["lineItem"]["scoreMaximum"] == 6
    with app.app_context():
        assert db.session.scalars(sa.select(Workshop.gradebook_column)).one() == "hours"


# -- what the Gradebook sync page and the progress page say -------------------------------------------------------

def test_the_sync_page_names_a_refused_workshop_score_by_its_column(app, client, platform, do_launch,
                                                                    member_launch):
    public_id = make_workshop(app, platform, event="Summer Conference 2026", day=date(2026, 7, 14))
    place(platform, public_id, lineitem=True)  # the launch's own `lineitem` URL: the tool knows no label for it
    enrol_maria(platform)
    member_launch(platform)
    grading = open_as_instructor(client, do_launch, platform)
    post_grades(client, grading, {account_id(app, "user-member-1"): {"present": "1", "hours": "6",
                                                                     "result": "complete"}})
    platform.score_failures = [422]
    send(app)
    home = grading.split("workshops/")[0]
    failed = page(client.get(home + "grades/failed"))
    assert "Bargaining Foundations — workshop, Summer Conference 2026, 14 July 2026" in failed
    assert platform.lineitems_url not in failed  # never the raw URL
    assert "Check their enrolment in the LMS" in failed and "injected" not in failed


def test_the_progress_page_dates_workshop_hours_by_the_session(app, client, platform, do_launch, member_launch):
    public_id = make_workshop(app, platform, day=date(2026, 3, 9))
    place(platform, public_id, lineitem=True)
    enrol_maria(platform)
    member_browser = app.test_client()
    home = member_launch(platform, browser=member_browser)
    grading = open_as_instructor(client, do_launch, platform)
    post_grades(client, grading, {account_id(app, "user-member-1"): {"present": "1", "hours": "6",
                                                                     "result": "complete"}})
    [entry] = rows(app, LedgerEntry)
    assert entry.recorded_at.date() != date(2026, 3, 9)  # graded today, long after the session
    progress = page(member_browser.get(home + "progress"))
    assert "Mar 9, 2026" in progress
    assert entry.recorded_at.strftime("%b %-d, %Y") not in progress


def test_a_role_reads_with_the_right_article(app, client, platform, do_launch):
    home = do_launch(platform, "instructor").location
    refused = client.get(home + "admin/")
    assert refused.status_code == 403
    assert "you launched the tool as an instructor" in page(refused)
    assert "as a instructor" not in page(refused)
