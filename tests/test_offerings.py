"""The public course offerings: the page, the printable PDF and the iCalendar feed; only published workshops."""
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from icalendar import Calendar
from pypdf import PdfReader

from lti_tool.extensions import db
from lti_tool.models import AuditEvent, Course, LmsIdentity, Workshop
from lti_tool.models.base import utcnow


@pytest.fixture
def workshop(app):
    """Place a workshop directly (as the picker does); return a factory giving its id."""
    counter = iter(range(1, 1000))

    def factory(*, days, public=True, event="Summer Conference 2026", venue="UMass Amherst",
                module="contract-costing"):
        with app.app_context():
            course = db.session.scalars(sa.select(Course)).first()
            if course is None:
                lms = LmsIdentity(issuer="https://lms.example.edu", client_id="", name="Example LMS")
                db.session.add(lms)
                db.session.flush()
                course = Course(lms_id=lms.id, context_id="c1", title="Local 12 training")
                db.session.add(course)
                db.session.flush()
            flag = {} if public is None else {"public": public}  # None: the default, as the picker places it
            row = Workshop(public_id=f"ws-{next(counter)}", course_id=course.id, module_slug=module,
                           event_name=event, venue=venue, **flag,
                           session_date=(utcnow() + timedelta(days=days)).date() if days is not None else None)
            db.session.add(row)
            db.session.commit()
            return row.id

    return factory


def test_offerings_page_lists_modules_by_group_and_published_workshops_soonest_first(client, workshop):
    workshop(days=30, event="Summer Conference 2026", venue="UMass Amherst")
    workshop(days=4, event="Worcester regional training", venue="Worcester Union Hall", module="power-mapping")
    workshop(days=2, public=False, event="Closed local training")
    workshop(days=-2, event="Held two days ago")
    workshop(days=None, event="Fall Leadership Summit", venue=None)
    response = client.get("/offerings")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for heading in ("Bargaining Foundations", "Democratized Bargaining", "Specialized Topics"):
        assert heading in page
    assert "Contract Costing and Economic Indicators (3 hours)" in page
    order = [page.index(name) for name in ("Worcester regional training", "Summer Conference 2026",
                                           "Fall Leadership Summit")]
    assert order == sorted(order) and "Date to be announced" in page
    assert "Closed local training" not in page and "Held two days ago" not in page
    assert "bargaining@massteacher.org" in page
    assert 'href="/offerings"' in client.get("/").get_data(as_text=True)  # reachable from the front page


def test_offerings_pdf_is_printable_and_lists_the_same(client, workshop):
    workshop(days=4, event="Worcester regional training", venue="Worcester Union Hall")
    workshop(days=2, public=False, event="Closed local training")
    response = client.get("/offerings.pdf")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    assert "course offerings" in reader.metadata.title
    assert "Worcester regional training" in text and "Worcester Union Hall" in text
    assert "Closed local training" not in text
    assert "Bargaining Foundations" in text and "Contract Costing" in text
    assert "http://localhost:5000/offerings" in text


def test_offerings_calendar_has_one_event_per_published_dated_workshop(client, workshop):
    soon = workshop(days=4, event="Worcester regional training", venue="Worcester Union Hall")
    workshop(days=2, public=False, event="Closed local training")
    workshop(days=None, event="Fall Leadership Summit")
    response = client.get("/offerings.ics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.data)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    [event] = events
    assert "Worcester regional training" in str(event["summary"]) and "3 hours" in str(event["summary"])
    assert str(event["location"]) == "Worcester Union Hall"
    assert event.decoded("dtstart") == (utcnow() + timedelta(days=4)).date()
    assert str(event["uid"]).startswith("workshop-ws-") and str(event["uid"]).endswith("@localhost:5000")
    assert soon


def test_workshops_are_unlisted_until_staff_publish_them_and_it_is_audited(app, client, workshop, runner):
    workshop_id = workshop(days=10, public=None, event="Springfield training")
    with app.app_context():
        assert db.session.get(Workshop, workshop_id).public is False  # the column's default is "not listed"
    assert "Springfield training" not in client.get("/offerings").get_data(as_text=True)
    listed = runner.invoke(args=["workshops", "list"])
    assert "Springfield training" in listed.output and "not listed" in listed.output
    result = runner.invoke(args=["workshops", "publish", str(workshop_id)])
    assert result.exit_code == 0 and "is listed on the public offerings" in result.output
    assert "Springfield training" in client.get("/offerings").get_data(as_text=True)
    result = runner.invoke(args=["workshops", "unpublish", str(workshop_id)])
    assert "taken off" in result.output
    assert "Springfield training" not in client.get("/offerings").get_data(as_text=True)
    missing = runner.invoke(args=["workshops", "publish", "9999"])
    assert missing.exit_code != 0 and "There is no workshop 9999" in missing.output
    with app.app_context():
        actions = list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["workshop.publish", "workshop.unpublish"]


@pytest.mark.browser
def test_offerings_and_dev_mail_pages_pass_axe(live_server, browser_page, workshop):
    from tests.test_accessibility import violations

    workshop(days=4, event="Worcester regional training")
    browser_page.goto(live_server + "/offerings")
    assert violations(browser_page) == []
    browser_page.goto(live_server + "/dev/mail")
    assert violations(browser_page) == []
