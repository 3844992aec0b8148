"""The course roster from the LMS (NRPS): every page, members who never launched, and what happens without it."""
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti import nrps
from lti_tool.models import Account, Enrolment, Platform
from tests.test_workshops import NRPS, make_workshop, open_as_instructor, place, text

FOUNDATIONS = "bargaining-foundations"


def _count_roster_requests(lms) -> list[str]:
    """Record the URLs the tool asks the emulator's memberships endpoint for."""
    seen = []
    original = lms._memberships

    def counting(request):
        seen.append(request.url)
        return original(request)

    lms._memberships = counting
    return seen


def test_roster_follows_every_page_with_capitals_in_next_urls(app, client, make_platform, do_launch):
    # The context id has capitals too: a next URL read lower-cased would miss the roster and fail the test.
    lms = make_platform(context_id="Course-ABC")
    lms.add_members(120)
    requests_seen = _count_roster_requests(lms)
    public_id = make_workshop(app, lms, FOUNDATIONS)
    place(lms, public_id, FOUNDATIONS)
    html = text(client.get(open_as_instructor(client, do_launch, lms)))
    assert len(requests_seen) == 3
    assert all("/Course-ABC/memberships" in url for url in requests_seen)
    assert sum("Sort=Name" in url for url in requests_seen) == 2
    assert "120 members, from the LMS roster" in html
    assert "Roster Member 1<" in html and "Roster Member 120<" in html and "roster120@example.org" in html


def test_fetch_memberships_reads_all_pages_as_memberships(app, make_platform):
    lms = make_platform()
    lms.members_page_size = 7
    lms.add_members(20)
    lms.add_members(1, role="Instructor", prefix="teacher")
    with app.app_context():
        platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == lms.issuer)).one()
        members = nrps.fetch_memberships(platform, f"{lms.base_url}/{lms.context_id}/memberships")
    assert len(members) == 21
    assert [m.user_id for m in members][:2] == ["roster-1", "roster-2"]
    assert sum(m.learner for m in members) == 20
    teacher = members[-1]
    assert not teacher.learner and teacher.tool_role == "instructor"


def test_members_who_never_launched_get_an_account_person_and_enrolment(app, client, platform, do_launch):
    platform.add_members(3)
    public_id = make_workshop(app, platform, FOUNDATIONS)
    place(platform, public_id, FOUNDATIONS)
    html = text(client.get(open_as_instructor(client, do_launch, platform)))
    assert html.count("Has not opened the tool yet") == 3
    with app.app_context():
        account = db.session.scalars(sa.select(Account).where(Account.sub == "roster-2")).one()
        assert (account.name, account.given_name, account.family_name, account.email) == (
            "Roster Member 2", "Roster", "Member 2", "roster2@example.org")
        assert account.person_id is not None and account.last_launch_at is None
        enrolment = db.session.scalars(sa.select(Enrolment).where(Enrolment.account_id == account.id)).one()
        assert enrolment.role == "member" and "Learner" in enrolment.lti_roles
    # Reading the roster again changes nothing and makes no second account.
    client.get(open_as_instructor(client, do_launch, platform))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)
                                 .where(Account.sub.like("roster-%"))) == 3


def test_only_active_learners_are_graded_and_instructors_are_listed_apart(app, client, platform, do_launch):
    platform.add_members(2)
    inactive = platform.add_members(1, prefix="gone")[0]
    inactive["status"] = "Inactive"
    platform.add_members(1, role="Instructor", prefix="coteacher")
    platform.add_members(1, role="Mentor", prefix="mentor")
    public_id = make_workshop(app, platform, FOUNDATIONS)
    place(platform, public_id, FOUNDATIONS)
    html = text(client.get(open_as_instructor(client, do_launch, platform)))
    table = html.split('id="roster"')[1].split("</table>")[0]
    assert "roster1@example.org" in table and "roster2@example.org" in table
    assert "gone3@example.org" not in table and "coteacher4@example.org" not in table
    assert "mentor5@example.org" not in table
    assert "2 members, from the LMS roster (1 inactive not shown)" in html
    assert "Instructors of this course" in html and "Roster Member 4" in html.split("Instructors of this course")[1]


def test_without_nrps_the_members_known_from_launches_are_listed_with_a_notice(app, client, platform, do_launch,
                                                                              member_launch):
    platform.add_members(5)
    platform.claim_overrides = {NRPS: None}
    member_launch(platform)
    public_id = make_workshop(app, platform, FOUNDATIONS)
    place(platform, public_id, FOUNDATIONS)
    response = client.get(open_as_instructor(client, do_launch, platform))
    html = text(response)
    assert response.status_code == 200
    assert "does not offer its course roster" in html
    assert "1 member, known from their launches of the tool" in html and "Maria Member" in html
    assert "Roster Member 1" not in html


def test_a_failing_roster_call_shows_known_members_and_a_notice(app, client, platform, do_launch, member_launch):
    member_launch(platform)
    platform.claim_overrides = {NRPS: {"context_memberships_url": platform.base_url + "/Nowhere/memberships",
                                       "service_versions": ["2.0"]}}
    public_id = make_workshop(app, platform, FOUNDATIONS)
    place(platform, public_id, FOUNDATIONS)
    response = client.get(open_as_instructor(client, do_launch, platform))
    html = text(response)
    assert response.status_code == 200
    assert "The LMS did not give its course roster (HTTP 404)" in html
    assert "Maria Member" in html


def test_roster_keeps_names_the_lms_hides_by_privacy(app, client, platform, do_launch, member_launch):
    member_launch(platform)
    platform.members.append({"user_id": "user-member-1", "status": "Active",
                             "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]})
    public_id = make_workshop(app, platform, FOUNDATIONS)
    place(platform, public_id, FOUNDATIONS)
    html = text(client.get(open_as_instructor(client, do_launch, platform)))
    assert "Maria Member" in html and "maria@example.org" in html
