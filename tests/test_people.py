"""One person across courses and platforms: registration, linking by one-time code, merging and splitting."""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, AuditEvent, LinkCode, Person, Registration
from lti_tool.models.base import utcnow
from lti_tool.services import ledger, people


def text(response):
    return response.get_data(as_text=True)


def csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_first_launch_asks_for_registration_once_and_it_is_editable(app, client, platform, do_launch):
    home = do_launch(platform, "member").location
    first = client.get(home)
    assert first.status_code == 302 and "registration" in first.location
    form = text(client.get(first.location))
    assert "Register for the Bargaining Certificate" in form and 'value="Maria Member"' in form
    invalid = client.post(home + "registration", data={"csrf_token": csrf(form), "name": "", "email": "nope"})
    assert invalid.status_code == 422
    html = text(invalid)
    for message in ("Enter your name as it should appear", "Not a valid email address", "Choose your job category",
                    "Choose PreK-12 or higher education", "Enter your local association"):
        assert message in html
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 0
    data = {"csrf_token": csrf(form), "name": "María José Ortiz", "email": "mj@example.org",
            "local_association": "Holyoke Teachers Association", "job_category": "esp", "sector": "prek12",
            "bargaining_experience": "none"}
    assert client.post(home + "registration", data=data).status_code == 303
    assert client.get(home).status_code == 200  # asked once
    edit = text(client.get(home + "registration"))
    assert "Your registration" in edit and 'value="Holyoke Teachers Association"' in edit
    client.post(home + "registration", data={**data, "sector": "higher_ed"})
    with app.app_context():
        registration = db.session.scalars(sa.select(Registration)).one()
        assert (registration.name, registration.sector) == ("María José Ortiz", "higher_ed")


def test_instructors_are_not_asked_to_register(client, platform, do_launch):
    home = do_launch(platform, "instructor").location
    landing = client.get(home)  # straight to the course home, no registration form
    assert landing.status_code == 302 and landing.location.endswith("/course")
    assert client.get(landing.location).status_code == 200


def test_linking_accounts_across_two_lms_by_one_time_code(app, make_platform, member_launch):
    canvas = make_platform(issuer="https://canvas.instructure.com", client_id="100001", product="canvas")
    moodle = make_platform(product="moodle")
    in_canvas, in_moodle = app.test_client(), app.test_client()
    canvas_home = member_launch(canvas, browser=in_canvas)
    moodle_home = member_launch(moodle, browser=in_moodle)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 2

    page = text(in_canvas.get(canvas_home + "link-accounts"))
    made = text(in_canvas.post(canvas_home + "link-accounts", data={"csrf_token": csrf(page), "action": "make"}))
    code = re.search(r'<p class="code"[^>]*>([A-Z0-9-]+)</p>', made).group(1)
    page = text(in_moodle.get(moodle_home + "link-accounts"))
    linked = in_moodle.post(moodle_home + "link-accounts",
                            data={"csrf_token": csrf(page), "action": "redeem", "code": code.lower()})
    assert linked.status_code == 303
    with app.app_context():
        persons = db.session.scalars(sa.select(Account.person_id)).all()
        assert len(set(persons)) == 1 and db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 1
        with pytest.raises(people.PeopleError, match="already used"):
            people.redeem_link_code(code, db.session.scalars(sa.select(Account.id)).first())
    progress = text(in_moodle.get(moodle_home + "progress"))
    assert "are linked" in progress


@pytest.mark.parametrize("case, message", [
    ("wrong", "not valid"),
    ("expired", "expired"),
    ("same platform", "same LMS"),
    ("same account", "already linked"),
])
def test_bad_link_codes_are_refused(app, make_account, case, message):
    maker, _ = make_account("https://canvas.example.edu")
    other, _ = make_account("https://moodle.example.edu" if case != "same platform" else "https://canvas.example.edu")
    with app.app_context():
        code = people.create_link_code(maker)
        if case == "expired":
            db.session.execute(sa.update(LinkCode).values(expires_at=utcnow() - timedelta(minutes=1)))
        with pytest.raises(people.PeopleError, match=message):
            people.redeem_link_code("ZZZZ-ZZZZ" if case == "wrong" else code,
                                    maker if case == "same account" else other)


def test_email_alone_never_links(app, make_account):
    make_account("https://canvas.example.edu", email="same@example.org")
    make_account("https://moodle.example.edu", email="same@example.org")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 2


def test_admin_merge_and_split_keep_the_ledger_and_are_audited(app, make_account):
    first_account, first = make_account("https://canvas.example.edu", name="Lee Chen")
    second_account, second = make_account("https://moodle.example.edu", name="Lee Chen")
    with app.app_context():
        ledger.record_hours(account_id=first_account, module_slug="power-mapping", hours=3, source="workshop_grade",
                            source_ref="g1")
        ledger.record_hours(account_id=second_account, module_slug="contract-costing", hours=3,
                            source="workshop_grade", source_ref="g2")
        with pytest.raises(people.PeopleError, match="needs a reason"):
            people.admin_merge(first, second, reason="", actor_account_id=first_account)
        people.admin_merge(first, second, reason="Same member, two LMSs", actor_account_id=first_account)
        assert ledger.person_progress(first).total_hours == 6
        new_person = people.split_account(second_account, reason="Linked by mistake", actor_account_id=first_account)
        assert ledger.person_progress(first).total_hours == 3
        assert ledger.person_progress(new_person.id).total_hours == 3
        actions = db.session.scalars(sa.select(AuditEvent.action)).all()
        assert "people.merge" in actions and "people.split" in actions


@pytest.mark.parametrize(("claims", "expected_name"), [
    ({"name": "Maria Member"}, "Maria Member"),
    ({"name": None, "given_name": "Maria", "family_name": "Lopez"}, "Maria Lopez"),  # a platform that sends parts
    ({"name": None}, "maria@example.org"),  # no name at all: the email stands in
])
def test_a_first_launch_gives_the_member_one_person_named_as_the_platform_named_them(app, platform, do_launch,
                                                                                    claims, expected_name):
    platform.claim_overrides.update(claims)
    assert do_launch(platform, "member").status_code == 303
    assert do_launch(platform, "member").status_code == 303  # a returning launch keeps that person
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        person = db.session.get(Person, account.person_id)
        assert (person.name, person.email) == (expected_name, "maria@example.org")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 1


def test_two_first_launches_of_one_account_at_once_share_one_person(app, platform, do_launch):
    # The launch that gives the account its person second finds it given: it drops its own and uses that one.
    assert do_launch(platform, "member").status_code == 303
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        given = account.person_id
        db.session.expunge_all()
        assert people.give_new_account_its_person(account.id, "Maria Member", "maria@example.org") == given
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 1
