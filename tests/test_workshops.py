"""Workshops through real launches: the instructor's roster and grades, ledger and gradebook in one transaction,
regrading, bulk actions, sign-in sheets, and in-person check-in codes."""
import re
import uuid
from datetime import date, timedelta
from io import BytesIO

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import (
    Account,
    CheckInCode,
    Course,
    LedgerEntry,
    OutboxScore,
    Platform,
    Workshop,
    WorkshopRecord,
)
from lti_tool.models.base import utcnow
from tests.platform import LTI

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
          "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
          "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
FOUNDATIONS = "bargaining-foundations"  # 6 hours
POWER_MAPPING = "power-mapping"  # 3 hours


# -- helpers (test_roster.py uses them too) --------------------------------------------------------------------

def text(response) -> str:
    return response.get_data(as_text=True)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def make_workshop(app, emulator, slug=FOUNDATIONS, event="Summer Conference 2026", venue="Worcester, Room 4",
                  day=date(2026, 7, 14), context_id=None, column="hours") -> str:
    """Create a workshop in the emulator's course (the course made if no launch made it yet); return its public id."""
    with app.app_context():
        platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == emulator.issuer,
                                                                Platform.client_id == emulator.client_id)).one()
        context = context_id or emulator.context_id
        course = db.session.scalars(sa.select(Course).where(
            Course.lms_id == platform.lms_id, Course.context_id == context)).first()
        if course is None:
            course = Course(lms_id=platform.lms_id, context_id=context, title=f"Course {context}")
            db.session.add(course)
            db.session.flush()
        workshop = Workshop(public_id=str(uuid.uuid4()), course_id=course.id, module_slug=slug, event_name=event,
                            venue=venue, session_date=day, gradebook_column=column)
        db.session.add(workshop)
        db.session.commit()
        return workshop.public_id


def place(emulator, public_id, slug=FOUNDATIONS, link="workshop-link-1", lineitem=False):
    """Make the emulator's next launches come from the placed workshop link (and its line item, if any)."""
    emulator.resource_link_id = link
    emulator.claim_overrides[LTI + "custom"] = {"module": slug, "mode": "workshop", "workshop": public_id}
    if lineitem:
        url = emulator.add_line_item(label="Workshop", score_maximum=6, resource_link_id=link)
        emulator.claim_overrides[AGS] = {"scope": SCOPES, "lineitems": emulator.lineitems_url, "lineitem": url}
        return url
    return None


def enrol_maria(emulator):
    """Put the emulator's member (who launches the tool) on its NRPS roster too."""
    emulator.members.append({"status": "Active", "user_id": "user-member-1", "name": "Maria Member",
                             "email": "maria@example.org",
                             "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]})


def open_as_instructor(client, do_launch, emulator, user="instructor") -> str:
    """Launch the placed link as an instructor; return the workshop page it lands on."""
    response = do_launch(emulator, user)
    assert response.status_code == 303, text(response)
    landing = client.get(response.location)
    assert landing.status_code == 302, text(landing)
    assert "/workshops/" in landing.location
    return landing.location


def account_id(app, sub: str) -> int:
    with app.app_context():
        return db.session.scalars(sa.select(Account.id).where(Account.sub == sub)).one()


#: The workshop's own gradebook column, as opposed to the course's certificate-progress column.
GRADE_COLUMN = ~OutboxScore.line_item_url.contains("bargaining-certificate-progress")


def rows(app, model, *where):
    with app.app_context():
        return list(db.session.scalars(sa.select(model).where(*where).order_by(model.id)))


def post_grades(client, url, grades: dict, action="save", extra=None, **kwargs):
    """Post the grading form as the page rendered it, with some members' fields changed."""
    html = text(client.get(url))
    data = _form_fields(html)
    for member, fields in grades.items():
        for name, value in fields.items():
            key = f"{name}-{member}"
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
    data.update(extra or {})
    data["action"] = action
    return client.post(url, data=data, **kwargs)


def _form_fields(html: str) -> dict:
    """Read the grading form's current values (inputs, checked boxes, selected options)."""
    form = html.split('enctype="multipart/form-data"')[1].split("</form>")[0]
    data = {"csrf_token": csrf(html)}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        kind = re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or (kind and kind.group(1) == "file"):
            continue
        if kind and kind.group(1) == "checkbox" and " checked" not in tag:
            continue
        data[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.DOTALL):
        chosen = re.search(r'<option value="([^"]*)" selected', body) or re.search(r'<option value="([^"]*)"', body)
        data[name] = chosen.group(1) if chosen else ""
    return data


@pytest.fixture
def workshop(app, platform):
    """A Foundations workshop in the platform's course, placed with a line item; return (public id, line item)."""
    public_id = make_workshop(app, platform)
    line_item = place(platform, public_id, lineitem=True)
    return public_id, line_item


@pytest.fixture
def graded_page(app, client, platform, do_launch, member_launch, workshop):
    """A member who launched, two roster members who never did, and the instructor's workshop page."""
    platform.add_members(2)
    enrol_maria(platform)
    member_launch(platform)
    url = open_as_instructor(client, do_launch, platform)
    assert client.get(url).status_code == 200  # reads the roster from the LMS
    return url


# -- access ------------------------------------------------------------------------------------------------------

def test_launching_a_workshop_link_opens_grading_for_instructors_and_check_in_for_members(
        app, client, platform, do_launch, member_launch, workshop):
    public_id, _ = workshop
    home = member_launch(platform)
    landing = client.get(home)
    assert landing.status_code == 302 and landing.location.endswith(f"/workshops/{public_id}/attend")
    html = text(client.get(landing.location))
    assert "Summer Conference 2026" in html and "Worcester, Room 4" in html and "Check-in code" in html
    url = open_as_instructor(client, do_launch, platform)
    assert url.endswith(f"/workshops/{public_id}")
    html = text(client.get(url))
    assert "Workshop: Bargaining Foundations" in html and "Tuesday, July 14, 2026" in html
    with app.app_context():
        workshop_row = db.session.scalars(sa.select(Workshop).where(Workshop.public_id == public_id)).one()
        assert workshop_row.resource_link_id is not None


def test_member_cannot_open_the_grading_page(client, platform, member_launch, workshop):
    public_id, _ = workshop
    home = member_launch(platform)
    response = client.get(home + f"workshops/{public_id}")
    assert response.status_code == 403


def test_instructor_of_another_course_gets_404(app, client, platform, do_launch, workshop):
    public_id, _ = workshop
    platform.context_id = "course-202"
    platform.claim_overrides.pop(LTI + "custom")
    home = do_launch(platform, "instructor").location
    assert client.get(home + f"workshops/{public_id}").status_code == 404
    assert client.get(home + f"workshops/{public_id}/check-in-code").status_code == 404


def test_instructor_of_another_platform_gets_404(app, client, make_platform, platform, do_launch, workshop):
    public_id, _ = workshop
    other = make_platform(client_id="other-client")
    home = do_launch(other, "instructor").location
    assert client.get(home + f"workshops/{public_id}").status_code == 404
    token = csrf(text(client.get(home + "registration")))  # a valid token: the workshop check is what refuses
    response = client.post(home + f"workshops/{public_id}/check-in-code", data={"csrf_token": token})
    assert response.status_code == 404
    assert rows(app, CheckInCode) == []


def test_member_cannot_make_a_check_in_code(app, client, platform, member_launch, workshop):
    public_id, _ = workshop
    home = member_launch(platform)
    token = csrf(text(client.get(home + "registration")))  # a valid token: the role check is what refuses
    response = client.post(home + f"workshops/{public_id}/check-in-code", data={"csrf_token": token})
    assert response.status_code == 403
    assert "This page is for instructors" in text(response)
    assert rows(app, CheckInCode) == []


def test_unknown_workshop_is_404(client, platform, do_launch):
    home = do_launch(platform, "instructor").location
    assert client.get(home + f"workshops/{uuid.uuid4()}").status_code == 404


# -- grading -----------------------------------------------------------------------------------------------------

def test_grading_writes_the_ledger_entry_and_queues_the_score(app, client, platform, graded_page, workshop):
    public_id, line_item = workshop
    maria = account_id(app, "user-member-1")
    response = post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete",
                                                        "comment": "Great work on the bargaining survey"}})
    assert response.status_code == 303, text(response)
    assert "1 grade saved" in text(client.get(response.location))
    entries = rows(app, LedgerEntry, LedgerEntry.account_id == maria)
    assert [(e.source, float(e.hours)) for e in entries] == [("workshop_grade", 6.0)]
    record = rows(app, WorkshopRecord, WorkshopRecord.account_id == maria)[0]
    assert entries[0].source_ref == f"workshop_grade:{record.id}:1"
    assert entries[0].details["workshop_id"] == public_id and entries[0].details["venue"] == "Worcester, Room 4"
    assert entries[0].details["date"] == "2026-07-14" and entries[0].details["event"] == "Summer Conference 2026"
    assert entries[0].recorded_by_account_id == account_id(app, "user-instructor-1")
    assert record.ledger_entry_id == entries[0].id and record.result == "complete" and record.attended
    assert record.graded_by_account_id == account_id(app, "user-instructor-1") and record.graded_at is not None
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    assert score.line_item_url == line_item and score.user_id == "user-member-1" and score.status == "pending"
    assert score.payload["scoreGiven"] == 6 and score.payload["scoreMaximum"] == 6
    assert score.payload["activityProgress"] == "Completed" and score.payload["gradingProgress"] == "FullyGraded"
    assert score.payload["comment"] == "Great work on the bargaining survey"
    assert "Waiting to reach the LMS gradebook" in text(client.get(graded_page))
    # The course's "Bargaining Certificate progress" column is the instructor's choice: none was chosen here
    # (test_gradebook_columns.py has the course that chose it).
    assert rows(app, OutboxScore, ~GRADE_COLUMN) == []


def test_members_who_never_launched_are_graded_from_the_roster(app, client, graded_page):
    roster_member = account_id(app, "roster-1")
    response = post_grades(client, graded_page, {roster_member: {"present": "1", "hours": "1.5",
                                                                "result": "incomplete"}})
    assert response.status_code == 303, text(response)
    (entry,) = rows(app, LedgerEntry, LedgerEntry.account_id == roster_member)
    assert float(entry.hours) == 1.5
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    assert score.user_id == "roster-1" and score.payload["scoreGiven"] == 1.5
    assert score.payload["gradingProgress"] == "FullyGraded"


def test_an_hours_column_gets_the_hours_even_when_a_score_is_given(app, client, graded_page):
    maria = account_id(app, "user-member-1")
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "5", "result": "complete", "score": "92"}})
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    # Not 92 out of 100 into a column out of 6, which Moodle shows as 5.52/6.
    assert score.payload["scoreGiven"] == 5 and score.payload["scoreMaximum"] == 6
    page = text(client.get(graded_page))
    assert "shows the <strong>hours attended</strong>, out of 6" in page
    (entry,) = rows(app, LedgerEntry)
    assert float(entry.hours) == 5


def test_without_a_lineitem_claim_the_score_names_a_line_item_to_find_or_create(app, client, platform, do_launch,
                                                                               member_launch):
    public_id = make_workshop(app, platform, POWER_MAPPING, event="Western regional training")
    place(platform, public_id, POWER_MAPPING, link="placed-link-7")
    enrol_maria(platform)
    member_launch(platform)
    url = open_as_instructor(client, do_launch, platform)
    maria = account_id(app, "user-member-1")
    post_grades(client, url, {maria: {"present": "1", "hours": "3", "result": "complete"}})
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    spec = dict(score.line_item_spec)
    assert spec.pop("label") == "Power Mapping — workshop, Western regional training, 14 July 2026"
    assert spec == {"lineitems": platform.lineitems_url, "resourceLinkId": "placed-link-7", "scoreMaximum": 3.0,
                    "resourceId": public_id, "tag": "bargaining-certificate"}
    assert score.line_item_label == "Power Mapping — workshop, Western regional training, 14 July 2026"
    assert score.payload["scoreMaximum"] == 3


def test_a_failure_between_ledger_and_outbox_leaves_neither(app, client, graded_page, monkeypatch):
    from lti_tool.services import passback

    def broken(**kwargs):
        raise RuntimeError("the outbox is unavailable")

    monkeypatch.setattr(passback, "queue_score", broken)
    maria = account_id(app, "user-member-1")
    response = post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    assert response.status_code == 500
    assert rows(app, LedgerEntry) == [] and rows(app, OutboxScore, GRADE_COLUMN) == []
    assert all(r.result is None for r in rows(app, WorkshopRecord))
    monkeypatch.undo()
    response = post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    assert response.status_code == 303
    assert len(rows(app, LedgerEntry)) == 1 and len(rows(app, OutboxScore, GRADE_COLUMN)) == 1


def test_a_changed_grade_reverses_and_records_anew_and_an_unchanged_one_writes_nothing(app, client, graded_page):
    maria = account_id(app, "user-member-1")
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    response = post_grades(client, graded_page, {maria: {"hours": "4.5", "result": "incomplete"}})
    assert response.status_code == 303
    entries = rows(app, LedgerEntry)
    assert [(e.source, float(e.hours)) for e in entries] == [("workshop_grade", 6), ("reversal", -6),
                                                            ("workshop_grade", 4.5)]
    assert entries[1].reverses_entry_id == entries[0].id and entries[1].reason == "Grade changed by Ivan Instructor"
    assert entries[2].source_ref.endswith(":2")
    record = rows(app, WorkshopRecord, WorkshopRecord.account_id == maria)[0]
    assert record.ledger_entry_id == entries[2].id
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    assert score.payload["scoreGiven"] == 4.5 and score.version == 2

    response = post_grades(client, graded_page, {})
    assert "Nothing had changed" in text(client.get(response.location))
    assert len(rows(app, LedgerEntry)) == 3 and rows(app, OutboxScore, GRADE_COLUMN)[0].version == 2

    # A new comment alone re-sends the score; the hours stand, so the ledger is untouched.
    post_grades(client, graded_page, {maria: {"comment": "Left after lunch"}})
    assert len(rows(app, LedgerEntry)) == 3
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    assert score.version == 3 and score.payload["comment"] == "Left after lunch"


def test_incomplete_with_no_hours_records_none_and_takes_earlier_hours_back(app, client, graded_page):
    maria, other = account_id(app, "user-member-1"), account_id(app, "roster-2")
    post_grades(client, graded_page, {other: {"result": "incomplete"}})
    assert rows(app, LedgerEntry) == []
    (score,) = rows(app, OutboxScore, GRADE_COLUMN)
    assert score.user_id == "roster-2" and score.payload["scoreGiven"] == 0
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    post_grades(client, graded_page, {maria: {"present": None, "hours": "0", "result": "incomplete"}})
    entries = rows(app, LedgerEntry, LedgerEntry.account_id == maria)
    assert [float(e.hours) for e in entries] == [6, -6]
    record = rows(app, WorkshopRecord, WorkshopRecord.account_id == maria)[0]
    assert record.ledger_entry_id is None and not record.attended


@pytest.mark.parametrize("hours, message", [
    ("7", "Hours must be at most 6, the module&#39;s credit hours."),
    ("-1", "Hours cannot be negative."),
    ("abc", "Hours must be a number, like 1.5."),
    ("NaN", "Hours must be a number, like 1.5."),
])
def test_invalid_hours_get_a_message_per_row_and_nothing_is_saved(app, client, graded_page, hours, message):
    maria, other = account_id(app, "user-member-1"), account_id(app, "roster-1")
    response = post_grades(client, graded_page, {
        maria: {"present": "1", "hours": hours, "result": "complete"},
        other: {"present": "1", "hours": "6", "result": "complete"}})
    html = text(response)
    assert response.status_code == 422
    assert f"Maria Member: {message}" in html and 'role="alert"' in html
    assert f'id="hours-{maria}" name="hours-{maria}" value="{hours}" aria-invalid="true"' in html
    assert (rows(app, LedgerEntry) == [] and rows(app, OutboxScore, GRADE_COLUMN) == []
            and rows(app, WorkshopRecord) == [])


@pytest.mark.parametrize("fields, message", [
    ({"hours": "3", "result": "incomplete"}, "Mark the member present to give them hours attended."),
    ({"present": "1", "result": "complete"}, "Enter the hours attended for a complete result."),
    ({"present": "1", "hours": "6", "result": "complete", "score": "140"}, "The score must be between 0 and 100."),
    ({"present": "1", "score": "50"}, "Choose a result to give a score."),
])
def test_inconsistent_rows_are_refused(app, client, graded_page, fields, message):
    maria = account_id(app, "user-member-1")
    response = post_grades(client, graded_page, {maria: fields})
    assert response.status_code == 422 and message in text(response)
    assert rows(app, WorkshopRecord) == []


def test_a_saved_grade_cannot_be_removed_only_changed(app, client, graded_page):
    maria = account_id(app, "user-member-1")
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    response = post_grades(client, graded_page, {maria: {"result": ""}})
    assert response.status_code == 422 and "can be changed but not removed" in text(response)


def test_mark_all_present_then_complete_all_present(app, client, graded_page):
    response = post_grades(client, graded_page, {}, action="mark_all_present")
    assert response.status_code == 303
    records = rows(app, WorkshopRecord)
    assert len(records) == 3 and all(r.attended and r.attendance_source == "instructor" for r in records)
    assert all(r.result is None for r in records) and rows(app, LedgerEntry) == []

    absent = account_id(app, "roster-2")
    response = post_grades(client, graded_page, {absent: {"present": None}}, action="complete_all_present")
    assert response.status_code == 303, text(response)
    by_account = {r.account_id: r for r in rows(app, WorkshopRecord)}
    assert not by_account[absent].attended and by_account[absent].result is None
    graded = [r for r in by_account.values() if r.result]
    assert len(graded) == 2 and all(r.result == "complete" and float(r.hours_attended) == 6 for r in graded)
    assert sorted(float(e.hours) for e in rows(app, LedgerEntry)) == [6, 6]
    assert len(rows(app, OutboxScore, GRADE_COLUMN)) == 2


def test_grading_counts_toward_the_members_progress(app, client, platform, graded_page, member_launch):
    maria = account_id(app, "user-member-1")
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete",
                                              "comment": "Well done"}})
    from flask.testing import FlaskClient  # a second browser for the member

    member_browser = FlaskClient(app, use_cookies=True)
    home = member_launch(platform, browser=member_browser)
    attend = member_browser.get(home).location
    html = text(member_browser.get(attend))
    assert "Result: <strong>Complete</strong>, 6 of 6 hours attended." in html and "Well done" in html
    progress = text(member_browser.get(home + "progress"))
    assert "Workshop" in progress and "Worcester, Room 4" in progress


# -- sign-in sheets ----------------------------------------------------------------------------------------------

def import_sheet(client, url, content: bytes, filename="sign-in.csv"):
    html = text(client.get(url))
    data = _form_fields(html)
    data.update(action="import", sheet=(BytesIO(content), filename))
    return client.post(url, data=data, content_type="multipart/form-data")


def test_sheet_with_bom_quotes_blank_lines_and_extra_columns_marks_attendance_for_review(app, client, graded_page):
    sheet = ('\ufeffNAME,Local,E-Mail,Hours\r\n'
             '"Member, Roster 1",Worcester EA,ROSTER1@example.org,6\r\n'
             '\r\n'
             '"Maria   member","Springfield, MA",,"4.5"\r\n'
             ',,,\r\n').encode("utf-8")
    response = import_sheet(client, graded_page, sheet)
    html = text(response)
    assert response.status_code == 200, html
    assert "matched 2 members" in html and "Nothing is saved yet" in html
    maria, roster1 = account_id(app, "user-member-1"), account_id(app, "roster-1")
    fields = _form_fields(html)
    assert fields[f"present-{maria}"] == "1" and fields[f"hours-{maria}"] == "4.5"
    assert fields[f"present-{roster1}"] == "1" and fields[f"hours-{roster1}"] == "6"
    assert f"present-{account_id(app, 'roster-2')}" not in fields
    assert rows(app, WorkshopRecord) == []  # nothing saved before the instructor reviews
    response = client.post(graded_page, data=dict(fields, action="save"))
    assert response.status_code == 303, text(response)
    records = {r.account_id: r for r in rows(app, WorkshopRecord)}
    assert records[maria].attended and records[maria].attendance_source == "sign_in_sheet"
    assert float(records[maria].hours_attended) == 4.5 and records[maria].result is None
    assert rows(app, LedgerEntry) == []  # attendance is not a grade


def test_duplicate_names_and_unknown_emails_are_listed_to_resolve(app, client, platform, do_launch, workshop):
    platform.members.extend([
        {"status": "Active", "user_id": "pat-1", "name": "Pat Lee", "email": "pat.lee@one.example",
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
        {"status": "Active", "user_id": "pat-2", "name": "Pat Lee", "email": "plee@two.example",
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]},
        {"status": "Active", "user_id": "sam-1", "name": "Sam Diaz", "email": "sam@example.org",
         "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]}])
    url = open_as_instructor(client, do_launch, platform)
    sheet = b"Name,Email\nPat Lee,\nNobody Known,nobody@example.org\nSam Diaz,SAM@example.org\n"
    response = import_sheet(client, url, sheet)
    html = text(response)
    assert "matched 1 member" in html and "2 rows need your choice" in html
    assert "Line 2: several people on the roster match (Pat Lee, Pat Lee)." in html
    assert "Line 3: no one on the course roster has this email or name." in html
    pat1, pat2, sam = account_id(app, "pat-1"), account_id(app, "pat-2"), account_id(app, "sam-1")
    fields = _form_fields(html)
    assert fields[f"present-{sam}"] == "1" and f"present-{pat1}" not in fields and f"present-{pat2}" not in fields
    assert fields["resolve-0"] == "" and fields["resolve-1"] == ""

    # Saving with rows still open is refused: nothing is dropped silently.
    response = client.post(url, data=dict(fields, action="save"))
    assert response.status_code == 422
    assert "Line 2: choose who this is, or ignore the row." in text(response)
    assert rows(app, WorkshopRecord) == []

    # The instructor chooses the second Pat and ignores the stranger; then saves.
    fields.update({"resolve-0": str(pat2), "resolve-1": "ignore"})
    response = client.post(url, data=dict(fields, action="apply"))
    html = text(response)
    assert response.status_code == 200 and "Sign-in sheet rows to resolve" not in html
    fields = _form_fields(html)
    assert fields[f"present-{pat2}"] == "1" and f"present-{pat1}" not in fields
    response = client.post(url, data=dict(fields, action="save"))
    assert response.status_code == 303
    assert sorted(r.account_id for r in rows(app, WorkshopRecord) if r.attended) == sorted([pat2, sam])


def test_resolving_with_someone_not_on_the_roster_is_refused(app, client, graded_page, make_account):
    outsider, _ = make_account(name="Not Here")
    response = import_sheet(client, graded_page, b"email\nstranger@example.org\n")
    fields = _form_fields(text(response))
    fields["resolve-0"] = str(outsider)
    response = client.post(graded_page, data=dict(fields, action="save"))
    assert response.status_code == 422 and "choose someone on the course roster" in text(response)
    assert rows(app, WorkshopRecord) == []


@pytest.mark.parametrize("content, message", [
    (b"Participant ID,Signature,Hours\n1,x,6\n",
     ("needs a column headed “name” or “email” (and optionally “hours”). The columns found are: Participant ID, "
      "Signature, Hours.")),
    (b"", "The file is empty."),
    (b"\n\n  \n", "The file is empty."),
    (b"\x00\x01PK\x03\x04", "not a CSV text file"),
])
def test_unreadable_sheets_get_a_clear_error(client, graded_page, content, message):
    response = import_sheet(client, graded_page, content)
    assert response.status_code == 422
    assert message in text(response).replace("&#34;", '"')


def test_sheet_rows_with_bad_hours_are_listed_not_guessed(app, client, graded_page):
    response = import_sheet(client, graded_page, b"email,hours\nmaria@example.org,7\nroster1@example.org,two\n")
    html = text(response)
    assert "Line 2: 7 hours is outside 0 to 6." in html
    assert "Line 3: the hours are not a number." in html
    assert "matched 0 members" in html


def test_read_sign_in_sheet_matches_by_email_before_name(app, platform, make_account):
    from lti_tool.catalog import current_catalog
    from lti_tool.services.workshops import read_sign_in_sheet

    first, _ = make_account(platform_issuer=platform.issuer, name="Alex Kim", email="alex@one.example")
    second, _ = make_account(platform_issuer=platform.issuer, name="Alex Kim", email="akim@two.example")
    with app.app_context():
        roster = [db.session.get(Account, first), db.session.get(Account, second)]
        result = read_sign_in_sheet(b"Full Name;E-mail\nalex kim;AKIM@two.example\n", roster,
                                    current_catalog().module(FOUNDATIONS))
    assert [(m.account_id, m.how) for m in result.matched] == [(second, "email")]
    assert result.problems == []


# -- in-person check-in ------------------------------------------------------------------------------------------

def _make_code(client, url) -> str:
    html = text(client.get(url))
    response = client.post(url + "/check-in-code", data={"csrf_token": csrf(html)})
    assert response.status_code == 303
    page = text(client.get(response.location))
    return re.search(r'id="check-in-code">([A-Z0-9]{6})<', page).group(1)


def _check_in(browser, attend_url, code):
    html = text(browser.get(attend_url))
    return browser.post(attend_url, data={"csrf_token": csrf(html), "code": code})


@pytest.fixture
def member_browser(app, platform, member_launch, workshop):
    """A member's own browser, launched from the workshop link; return (browser, attend URL)."""
    from flask.testing import FlaskClient

    browser = FlaskClient(app, use_cookies=True)
    home = member_launch(platform, browser=browser)
    return browser, browser.get(home).location


def test_code_page_shows_the_code_large_with_a_qr_code(app, client, platform, do_launch, workshop):
    url = open_as_instructor(client, do_launch, platform)
    code = _make_code(client, url)
    page = text(client.get(url + "/check-in-code"))
    assert len(code) == 6 and not set(code) & set("01OIL")
    assert '<svg role="img" aria-labelledby="qr-label"' in page and "<path" in page
    assert f"/check-in/{code}" in page and "Valid until" in page
    with app.app_context():
        (row,) = db.session.scalars(sa.select(CheckInCode)).all()
        assert timedelta(hours=2, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=3)


def test_valid_code_records_attendance_but_no_hours(app, client, platform, do_launch, workshop, member_browser):
    browser, attend = member_browser
    url = open_as_instructor(client, do_launch, platform)
    code = _make_code(client, url)
    response = _check_in(browser, attend, f" {code[:3].lower()}-{code[3:]} ")
    assert response.status_code == 303
    assert "You are checked in" in text(browser.get(response.location))
    (record,) = rows(app, WorkshopRecord)
    assert record.attended and record.attendance_source == "check_in" and record.result is None
    assert rows(app, LedgerEntry) == [] and rows(app, OutboxScore, GRADE_COLUMN) == []
    assert "Checked in" in text(client.get(url))
    # The instructor's page shows them present, ready to grade.
    assert f'name="present-{record.account_id}" value="1" checked' in text(client.get(url))


def test_expired_code_is_refused(app, client, platform, do_launch, workshop, member_browser):
    browser, attend = member_browser
    url = open_as_instructor(client, do_launch, platform)
    code = _make_code(client, url)
    with app.app_context():
        row = db.session.scalars(sa.select(CheckInCode)).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    response = _check_in(browser, attend, code)
    assert response.status_code == 422 and "That code has expired" in text(response)
    assert rows(app, WorkshopRecord) == []


def test_a_new_code_replaces_the_earlier_one(app, client, platform, do_launch, workshop, member_browser):
    browser, attend = member_browser
    url = open_as_instructor(client, do_launch, platform)
    first = _make_code(client, url)
    second = _make_code(client, url)
    assert first != second
    assert "That code has expired" in text(_check_in(browser, attend, first))
    assert _check_in(browser, attend, second).status_code == 303


@pytest.mark.parametrize("code, message", [
    ("ZZZZZZ", "That code does not work for this workshop."),
    ("12", "Enter the 6-character code shown in the room."),
    ("", "Enter the code shown in the room."),
])
def test_wrong_codes_are_refused(app, client, platform, do_launch, workshop, member_browser, code, message):
    browser, attend = member_browser
    _make_code(client, open_as_instructor(client, do_launch, platform))
    with app.app_context():  # make sure the wrong code is not, by chance, the real one
        row = db.session.scalars(sa.select(CheckInCode)).one()
        if row.code == code:
            row.code = "YYYYYY"
            db.session.commit()
    response = _check_in(browser, attend, code)
    assert response.status_code == 422 and message in text(response)
    assert rows(app, WorkshopRecord) == []


WRONG = "That code does not work for this workshop. Check the code shown in the room"


def test_code_of_another_workshop_in_the_course_is_refused(app, client, platform, do_launch, workshop,
                                                           member_browser):
    browser, attend = member_browser
    other = make_workshop(app, platform, POWER_MAPPING, event="Winter Conference 2027")
    place(platform, other, POWER_MAPPING, link="workshop-link-2")
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    response = _check_in(browser, attend, code)
    # The same words as for a code that exists nowhere: a guess learns nothing about other workshops.
    assert response.status_code == 422 and WRONG in text(response)
    assert "Winter Conference" not in text(response)
    assert rows(app, WorkshopRecord) == []


def test_code_of_a_workshop_in_another_course_is_refused(app, client, platform, do_launch, workshop,
                                                         member_browser):
    browser, attend = member_browser
    platform.context_id = "course-202"
    other = make_workshop(app, platform, FOUNDATIONS, event="Elsewhere")
    place(platform, other, FOUNDATIONS, link="workshop-link-3")
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    response = _check_in(browser, attend, code)
    assert response.status_code == 422 and WRONG in text(response) and "another course" not in text(response)
    assert rows(app, WorkshopRecord) == []


@pytest.mark.rate_limits
def test_wrong_codes_are_rate_limited_per_member(app, client, platform, do_launch, workshop, member_browser,
                                                 member_launch):
    from flask.testing import FlaskClient

    assert app.config["RATELIMIT_ENABLED"]
    browser, attend = member_browser
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    wrong = "YYYYYY" if code != "YYYYYY" else "ZZZZZZ"
    for _ in range(5):
        assert _check_in(browser, attend, wrong).status_code == 422
    blocked = _check_in(browser, attend, code)  # even the right code waits: the sixth try in a minute
    assert blocked.status_code == 429
    assert "Too many wrong codes: wait a few minutes" in text(blocked) and "ask the instructor" in text(blocked)
    assert rows(app, WorkshopRecord) == []
    assert browser.get(attend).status_code == 200  # the page itself stays readable
    # Another member in the same room (the same network address) is not held up by it.
    platform.users["member2"] = type(platform.users["member"])("user-member-2", "Omar Other", "omar@example.org",
                                                               platform.users["member"].roles)
    neighbour = FlaskClient(app, use_cookies=True)
    their_attend = neighbour.get(member_launch(platform, "member2", browser=neighbour)).location
    assert _check_in(neighbour, their_attend, code).status_code == 303
    assert [r.account_id for r in rows(app, WorkshopRecord)] == [account_id(app, "user-member-2")]


@pytest.mark.rate_limits
def test_the_check_in_address_is_rate_limited_per_network_address(app, client):
    from lti_tool.blueprints.workshops import CHECK_IN_LINKS

    allowed = int(CHECK_IN_LINKS.split()[0])
    for n in range(allowed):
        assert client.get(f"/check-in/GUESS{n % 10}").status_code == 200
    refused = client.get("/check-in/ANOTHER")
    assert refused.status_code == 429 and "wait a minute" in text(refused)


@pytest.mark.rate_limits
def test_right_codes_do_not_count_toward_the_limit(app, client, platform, do_launch, workshop, member_browser):
    browser, attend = member_browser
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    token = csrf(text(browser.get(attend)))
    for _ in range(8):  # already checked in: each answer is still a success, and none is counted
        assert browser.post(attend, data={"csrf_token": token, "code": code}).status_code == 303


def test_instructor_cannot_check_in(client, platform, do_launch, workshop):
    url = open_as_instructor(client, do_launch, platform)
    code = _make_code(client, url)
    assert "Check in</button>" not in text(client.get(url + "/attend"))
    token = csrf(text(client.get(url)))
    assert client.post(url + "/attend", data={"csrf_token": token, "code": code}).status_code == 403


def test_qr_address_opens_check_in_in_the_members_launch(app, client, platform, do_launch, workshop,
                                                         member_browser):
    browser, attend = member_browser
    code = _make_code(client, open_as_instructor(client, do_launch, platform))
    response = browser.get(f"/check-in/{code}")
    assert response.status_code == 302 and response.location.startswith(attend) and f"code={code}" in response.location
    assert f'value="{code}"' in text(browser.get(response.location))
    # Another browser (a phone with no launch) is told how to check in, and learns nothing about the workshop.
    from flask.testing import FlaskClient

    stranger = FlaskClient(app, use_cookies=True).get(f"/check-in/{code}")
    assert stranger.status_code == 200
    assert "open your course in your LMS" in text(stranger) and "Summer Conference" not in text(stranger)


# -- the whole flow in a real browser ------------------------------------------------------------------------------

@pytest.mark.browser
def test_instructor_grades_a_workshop_in_chromium(app, live_server, make_platform, browser_page):
    from urllib.parse import urlencode

    from tests.test_accessibility import violations

    lms = make_platform()
    lms.add_members(3)
    public_id = make_workshop(app, lms)
    line_item = place(lms, public_id, lineitem=True)
    page = browser_page
    page.goto(live_server + "/lti/login?" + urlencode({
        "iss": lms.issuer, "login_hint": "instructor", "target_link_uri": live_server + "/lti/launch",
        "client_id": lms.client_id, "lti_deployment_id": lms.deployment_id}))
    # The LMS answers with the id_token form; a real LMS submits it with a script.
    # The LMS posts the id_token form back to the tool; the launch lands on the workshop page.
    page.wait_for_url(f"**/workshops/{public_id}")
    assert page.get_by_role("heading", level=1).inner_text() == "Workshop: Bargaining Foundations"
    assert "3 members, from the LMS roster" in page.locator("#roster caption").inner_text()
    assert violations(page) == [], "grading page"

    page.get_by_label("Roster Member 1 was present").check()
    page.get_by_label("Roster Member 2 was present").check()
    page.get_by_role("button", name="Complete all present and save").click()
    page.wait_for_load_state()
    assert "2 grades saved" in page.locator(".flashes").inner_text()

    page.get_by_label("Hours attended by Roster Member 2").fill("2.5")
    page.get_by_label("Result for Roster Member 2").select_option("incomplete")
    page.get_by_label("Comment for Roster Member 2").fill("Left at the lunch break")
    page.get_by_role("button", name="Save grades", exact=True).click()
    page.wait_for_load_state()
    assert "1 grade saved" in page.locator(".flashes").inner_text()
    assert page.get_by_label("Hours attended by Roster Member 2").input_value() == "2.5"

    page.get_by_label("Hours attended by Roster Member 3").fill("9")
    page.get_by_label("Roster Member 3 was present").check()
    page.get_by_role("button", name="Save grades", exact=True).click()
    page.wait_for_load_state()
    assert "Roster Member 3: Hours must be at most 6" in page.get_by_role("alert").inner_text()
    assert violations(page) == [], "grading page with errors"
    page.get_by_role("button", name="Start check-in (make a code)").click()
    page.wait_for_url("**/check-in-code")
    assert len(page.locator("#check-in-code").inner_text()) == 6
    assert violations(page) == [], "check-in code page"

    with app.app_context():
        hours = sorted(float(e.hours) for e in db.session.scalars(sa.select(LedgerEntry)))
        scores = {s.user_id: s for s in db.session.scalars(sa.select(OutboxScore).where(GRADE_COLUMN))}
    assert hours == [-6, 2.5, 6, 6]
    assert scores["roster-1"].payload["scoreGiven"] == 6 and scores["roster-1"].line_item_url == line_item
    assert scores["roster-2"].payload["scoreGiven"] == 2.5
    assert scores["roster-2"].payload["comment"] == "Left at the lunch break"


def test_without_a_gradebook_service_grades_still_count_but_queue_no_score(app, client, platform, do_launch,
                                                                          member_launch):
    public_id = make_workshop(app, platform)
    place(platform, public_id)
    platform.claim_overrides[AGS] = None
    enrol_maria(platform)
    member_launch(platform)
    url = open_as_instructor(client, do_launch, platform)
    assert "does not offer its gradebook to this tool" in text(client.get(url))
    maria = account_id(app, "user-member-1")
    assert post_grades(client, url, {maria: {"present": "1", "hours": "6", "result": "complete"}}).status_code == 303
    assert len(rows(app, LedgerEntry)) == 1 and rows(app, OutboxScore, GRADE_COLUMN) == []


def test_grading_waits_until_the_workshop_is_opened_from_its_own_link(app, client, platform, do_launch,
                                                                     member_launch):
    public_id = make_workshop(app, platform)
    enrol_maria(platform)
    member_launch(platform)
    home = do_launch(platform, "instructor").location  # from another placement, not the workshop's link
    url = home + f"workshops/{public_id}"
    assert "Open this workshop from its link in the course first" in text(client.get(url))
    maria = account_id(app, "user-member-1")
    response = post_grades(client, url, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    assert response.status_code == 422 and rows(app, LedgerEntry) == [] and rows(app, WorkshopRecord) == []
    assert post_grades(client, url, {maria: {"present": "1"}}).status_code == 303
    (record,) = rows(app, WorkshopRecord)
    assert record.attended and record.result is None


def test_rows_for_people_not_on_the_roster_are_refused(app, client, graded_page, make_account):
    outsider, _ = make_account(name="Not Here")
    response = post_grades(client, graded_page, {outsider: {"present": "1", "hours": "6", "result": "complete"}})
    assert response.status_code == 422 and "no longer on the course roster" in text(response)
    assert rows(app, WorkshopRecord) == [] and rows(app, LedgerEntry) == []


def test_regrading_after_an_admin_reversed_the_entry_records_anew(app, client, graded_page):
    from lti_tool.services import ledger

    maria = account_id(app, "user-member-1")
    post_grades(client, graded_page, {maria: {"present": "1", "hours": "6", "result": "complete"}})
    with app.app_context():
        (entry,) = db.session.scalars(sa.select(LedgerEntry)).all()
        ledger.reverse_entry(entry.id, reason="Duplicate of a self-paced completion", actor_account_id=None)
        db.session.commit()
    response = post_grades(client, graded_page, {maria: {"hours": "5"}})
    assert response.status_code == 303
    assert [float(e.hours) for e in rows(app, LedgerEntry)] == [6, -6, 5]
