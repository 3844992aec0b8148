"""One LMS is one LMS: accounts and courses are the LMS's (issuer + `sub`, issuer + context id), not one
registration's, so registering the same Moodle twice does not split its members, hours or gradebook columns; where
Canvas cloud's issuer is shared between customers, the client id still tells them apart."""
import html

import sqlalchemy as sa

from lti_tool import grades_worker
from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Course, Launch, LedgerEntry, Person, Platform
from lti_tool.services import ledger, passback, platforms, roster
from tests.platform import CanvasEmulator, MoodleEmulator, User
from tests.test_passback import complete_module
from tests.test_registration import TOOL, confirm, open_page

PROGRESS_TAG = "bargaining-certificate-progress"
FIRST_MODULE, SECOND_MODULE = "esp-bargaining", "contract-costing"


def text_of(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def two_registrations_of_one_moodle(app, client, make_platform, runner) -> tuple[MoodleEmulator, int, int]:
    """Register one Moodle twice, as its admins did: Dynamic Registration (activated), then a tool added by hand."""
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(TOOL + "/lti/register"))).status_code == 200
    [dynamic] = moodle.tool_types
    moodle.activate(dynamic)
    by_hand = moodle.add_tool_by_hand()
    result = runner.invoke(args=[
        "platform", "add", "--name", "Moodle (by hand)", "--issuer", moodle.issuer,
        "--client-id", moodle.tool_types[by_hand]["clientid"], "--auth-login-url", moodle.authorize_url,
        "--auth-token-url", moodle.token_url, "--key-set-url", moodle.jwks_url, "--deployment-id", str(by_hand)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Platform)) == 2
    assert "(the same LMS as registration 1)" in runner.invoke(args=["platform", "list"]).output
    return moodle, dynamic, by_hand


def progress_columns(moodle) -> list[dict]:
    return [item for item in moodle.line_items.values() if item["tag"] == PROGRESS_TAG]


def test_two_registrations_of_one_moodle_share_the_member_her_hours_and_one_progress_column(
        app, client, make_platform, runner, member_launch, do_launch):
    moodle, dynamic, by_hand = two_registrations_of_one_moodle(app, client, make_platform, runner)
    with app.app_context():
        first, second = (current_catalog().module(FIRST_MODULE), current_catalog().module(SECOND_MODULE))

    moodle.use_tool(dynamic)
    home = member_launch(moodle)  # her first launch asks her to register
    with app.app_context():  # the instructor chose the progress column for this course (it is off by default)
        passback.add_progress_column(db.session.scalars(sa.select(Course.id)).one(), None)
        db.session.commit()
    complete_module(client, home, first)
    with app.app_context():
        assert grades_worker.send_all_due().failed == 0
    [column] = progress_columns(moodle)

    moodle.use_tool(by_hand)  # an activity of the tool added by hand, in the same course
    launched = do_launch(moodle, "member")
    assert launched.status_code == 303
    home = launched.location
    page = client.get(home)
    assert page.status_code == 200, "the member was asked to register again"
    complete_module(client, home, second)
    with app.app_context():
        report = grades_worker.send_all_due()
        assert report.failed == 0, report.errors

        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 1
        [account] = db.session.scalars(sa.select(Account)).all()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Course)) == 1
        total = ledger.person_progress(account.person_id).total_hours
    assert float(total) == float(first.credit_hours) + float(second.credit_hours)
    assert f"{passback._hours(total)} of 24 hours" in text_of(client.get(home + "progress"))

    # One progress column for the course, written through the registration that made it, showing both modules.
    assert progress_columns(moodle) == [column]
    latest = [s for s in moodle.scores if s["lineItem"] == column["id"]][-1]
    assert (latest["userId"], latest["scoreGiven"]) == (moodle.users["member"].sub, float(total))
    assert moodle.line_item_clients[column["id"]] == moodle.tool_types[dynamic]["clientid"]


def test_canvas_cloud_customers_whose_subs_collide_stay_two_people(app, make_platform, member_launch, client):
    shared = "https://canvas.instructure.com"
    springfield = make_platform(emulator_class=CanvasEmulator, issuer=shared, client_id="10000000000042",
                                account_name="Springfield")
    shelbyville = make_platform(emulator_class=CanvasEmulator, issuer=shared, client_id="10000000000077",
                                account_name="Shelbyville")
    # Both Canvas instances call their member "user-member-1" and their course "course-101".
    assert springfield.users["member"].sub == shelbyville.users["member"].sub
    assert springfield.context_id == shelbyville.context_id
    member_launch(springfield, name="Maria of Springfield")
    other = app.test_client()  # another person's browser
    home = member_launch(shelbyville, browser=other, name="Marta of Shelbyville")
    assert "Marta of Shelbyville" in text_of(other.get(home + "registration"))
    with app.app_context():
        accounts = db.session.scalars(sa.select(Account).order_by(Account.id)).all()
        assert len(accounts) == 2 and accounts[0].lms_id != accounts[1].lms_id
        assert accounts[0].person_id != accounts[1].person_id
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Course)) == 2
        names = {p.name for p in db.session.scalars(sa.select(Person))}
    assert names == {"Maria of Springfield", "Marta of Shelbyville"}


def test_a_self_hosted_canvas_registered_twice_is_one_lms(app, make_platform):
    canvas = make_platform(emulator_class=CanvasEmulator)  # issuer = its own address, as a self-hosted Canvas
    with app.app_context():
        second = platforms.add_platform({**canvas.registration, "client_id": "10000000000099", "name": "Again"})
        first = db.session.scalars(sa.select(Platform).order_by(Platform.id)).first()
        assert second.lms_id == first.lms_id


def test_an_issuer_typed_with_a_trailing_slash_is_the_same_lms(app, make_platform):
    moodle = make_platform()
    with app.app_context():
        second = platforms.add_platform({**moodle.registration, "issuer": moodle.issuer + "/", "client_id": "by-hand"})
        assert second.lms_id == db.session.scalars(sa.select(Platform).order_by(Platform.id)).first().lms_id


def test_the_roster_through_one_registration_is_the_members_who_launched_through_the_other(
        app, client, make_platform, runner, member_launch, do_launch):
    moodle, dynamic, by_hand = two_registrations_of_one_moodle(app, client, make_platform, runner)
    moodle.use_tool(dynamic)
    member_launch(moodle)
    moodle.members.append({"status": "Active", "user_id": moodle.users["member"].sub, "name": "Maria Member",
                           "email": "maria@example.org", "roles": [nrps_role("Learner")]})
    moodle.add_members(1)  # someone who has not opened the tool yet

    moodle.use_tool(by_hand)
    assert do_launch(moodle, "instructor", browser=app.test_client()).status_code == 303
    with app.app_context():
        launch = db.session.scalars(sa.select(Launch).where(Launch.role == "instructor")).one()
        listed = roster.load_roster(launch)
        db.session.commit()
        assert listed.source == "lms"
        maria = db.session.scalars(sa.select(Account).where(Account.sub == moodle.users["member"].sub)).one()
        assert maria.id in {a.id for a in listed.learners}
        newcomer = db.session.scalars(sa.select(Account).where(Account.sub == "roster-2")).one()
        people_before = db.session.scalar(sa.select(sa.func.count()).select_from(Person))

    # The newcomer, read from the roster through one registration, launches through the other: the same account.
    moodle.users["newcomer"] = User("roster-2", "Roster Member 2", "roster2@example.org", [nrps_role("Learner")])
    moodle.use_tool(dynamic)
    assert do_launch(moodle, "newcomer", browser=app.test_client()).status_code == 303
    with app.app_context():
        assert db.session.scalars(sa.select(Account.id).where(Account.sub == "roster-2")).all() == [newcomer.id]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == people_before


def nrps_role(name: str) -> str:
    return "http://purl.imsglobal.org/vocab/lis/v2/membership#" + name


def test_removing_one_of_two_registrations_keeps_the_lms_members_and_their_hours(app, make_platform, member_launch,
                                                                                 runner):
    moodle = make_platform()
    member_launch(moodle)
    with app.app_context():
        platforms.add_platform({**moodle.registration, "client_id": "by-hand", "name": "Again"})
        account = db.session.scalars(sa.select(Account)).one()
        ledger.record_hours(account_id=account.id, module_slug=FIRST_MODULE, hours=3, source="workshop_grade",
                            source_ref="test:kept")
        db.session.commit()
    removed = runner.invoke(args=["platform", "remove", "--issuer", moodle.issuer, "--client-id", moodle.client_id,
                                  "--yes"])
    assert removed.exit_code == 0, removed.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 1
        assert db.session.scalars(sa.select(Account)).one().id == account.id
    # The last registration of the LMS cannot go while its members have hours.
    refused = runner.invoke(args=["platform", "remove", "--issuer", moodle.issuer, "--client-id", "by-hand", "--yes"])
    assert refused.exit_code != 0 and "ledger entries" in refused.output


def test_the_registration_page_for_a_second_moodle_registration_says_members_stay_one(app, client, make_platform):
    moodle = make_platform(register=False, emulator_class=MoodleEmulator)
    assert confirm(client, open_page(client, moodle.start_registration(TOOL + "/lti/register"))).status_code == 200
    page = text_of(open_page(client, moodle.start_registration(TOOL + "/lti/register")))
    assert "already registered with this tool" in page
    assert "its members, courses and hours stay one" in page


# -- the migration: existing duplicates become one, the ledger untouched ------------------------------------------

def _insert(conn, table: str, **values) -> None:
    json_columns = {"claims", "login_params", "details", "hours_by_group"}
    columns = [sa.column(k, sa.JSON) if k in json_columns else sa.column(k) for k in values]
    conn.execute(sa.table(table, *columns).insert().values(**values))


def test_the_migration_makes_one_lms_of_two_registrations_and_keeps_every_ledger_entry(app):
    from flask_migrate import downgrade, upgrade

    from lti_tool.models import Base
    from lti_tool.models.base import utcnow

    now = utcnow()
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                Base.metadata.drop_all(conn)
        upgrade(revision="0005_registration_invitations")
        moodle, canvas = "https://moodle.example.edu", "https://canvas.instructure.com"
        with db.engine.begin() as conn:
            for pk, issuer, client_id in ((1, moodle, "dynamic"), (2, moodle + "/", "by-hand"), (3, canvas, "100"),
                                          (4, canvas, "200")):
                _insert(conn, "platforms", id=pk, name=f"Registration {pk}", issuer=issuer, client_id=client_id,
                        auth_login_url=issuer + "/auth", auth_token_url=issuer + "/token",
                        accept_new_deployments=False, registered_by="manual", created_at=now)
                _insert(conn, "deployments", id=pk, platform_id=pk, deployment_id=str(pk), created_at=now)
                _insert(conn, "people", id=pk, name=f"Person {pk}", program_admin=pk == 2, created_at=now)
                sub = "7" if pk <= 2 else "u1"  # the same Moodle user twice; two Canvas customers' users
                _insert(conn, "accounts", id=pk, platform_id=pk, sub=sub, person_id=pk, created_at=now)
                context = "42" if pk <= 2 else "course-1"
                _insert(conn, "courses", id=pk, platform_id=pk, deployment_id=pk, context_id=context, created_at=now)
                _insert(conn, "enrolments", account_id=pk, course_id=pk, lti_roles="", role="member", updated_at=now)
                _insert(conn, "resource_links", id=pk, course_id=pk, resource_link_id=f"activity-{pk}",
                        created_at=now)
                _insert(conn, "launches", id=f"launch-{pk}", platform_id=pk, account_id=pk, course_id=pk,
                        resource_link_id=pk, message_type="LtiResourceLinkRequest", role="member", claims={},
                        created_at=now)
            for pk, hours in ((1, 5), (2, 3)):
                _insert(conn, "ledger_entries", id=pk, account_id=pk, module_slug=f"module-{pk}", group_id="g",
                        hours=hours, source="workshop_grade", source_ref=f"workshop_grade:{pk}", recorded_at=now)
                _insert(conn, "registrations", person_id=pk, name="Maria Member", email="maria@example.org",
                        local_association="SEA", job_category="teacher", sector="prek12",
                        bargaining_experience="some", created_at=now, updated_at=now)
            _insert(conn, "audit_events", action="ledger.adjust", person_id=2, created_at=now)
            # Another Moodle user with an account, a person and a certificate through each registration.
            for pk, platform in ((5, 1), (6, 2)):
                _insert(conn, "people", id=pk, name="Certified", program_admin=False, created_at=now)
                _insert(conn, "accounts", id=pk, platform_id=platform, sub="8", person_id=pk, created_at=now)
                _insert(conn, "certificates", person_id=pk, number=f"BC-2026-TEST{pk}", holder_name="Certified",
                        issued_at=now, hours_by_group={}, total_hours=24, status="issued")
        upgrade()

        with db.engine.connect() as conn:
            def rows(query):
                return [tuple(r) for r in conn.execute(sa.text(query))]

            assert rows("SELECT issuer, client_id FROM lms_identities ORDER BY id") == [
                (moodle, ""), (canvas, "100"), (canvas, "200")]
            assert rows("SELECT id, lms_id FROM platforms ORDER BY id") == [(1, 1), (2, 1), (3, 2), (4, 3)]
            # The Moodle user's second account stands behind the first, under one person; Canvas's stay apart.
            assert rows("SELECT id, lms_id, merged_into_id, person_id FROM accounts ORDER BY id") == [
                (1, 1, None, 1), (2, None, 1, 1), (3, 2, None, 3), (4, 3, None, 4),
                # Two certificates: the accounts become one, the people wait for an admin to revoke one.
                (5, 1, None, 5), (6, None, 5, 6)]
            assert rows("SELECT id FROM people ORDER BY id") == [(1,), (3,), (4,), (5,), (6,)]
            assert rows("SELECT program_admin FROM people WHERE id = 1") in ([(True,)], [(1,)])
            assert rows("SELECT person_id FROM registrations") == [(1,)]
            # Every ledger entry as it was, and the person's hours together.
            assert rows("SELECT id, account_id, CAST(hours AS INTEGER) FROM ledger_entries ORDER BY id") == [
                (1, 1, 5), (2, 2, 3)]
            assert rows("SELECT CAST(SUM(e.hours) AS INTEGER) FROM ledger_entries e JOIN accounts a ON "
                        "a.id = e.account_id WHERE a.person_id = 1") == [(8,)]
            # One course for the Moodle course seen through both registrations, with both activities.
            assert rows("SELECT id, lms_id, context_id FROM courses ORDER BY id") == [
                (1, 1, "42"), (3, 2, "course-1"), (4, 3, "course-1")]
            assert rows("SELECT account_id, course_id FROM enrolments ORDER BY account_id") == [(1, 1), (3, 3), (4, 4)]
            assert rows("SELECT id, course_id FROM resource_links ORDER BY id") == [(1, 1), (2, 1), (3, 3), (4, 4)]
            assert rows("SELECT account_id, course_id FROM launches WHERE id = 'launch-2'") == [(1, 1)]
            assert rows("SELECT action, person_id FROM audit_events ORDER BY id") == [
                ("ledger.adjust", 1), ("people.merge", 1), ("people.merge_needed", 5)]

        # The merged person is whole for the tool too: one account per LMS user, hours together.
        account = db.session.scalars(sa.select(Account).where(Account.lms_id == 1, Account.sub == "7")).one()
        assert account.id == 1 and [a.id for a in account.person.accounts] == [1, 2]
        assert db.session.get(Account, 2).lms_name == "Registration 1"
        db.session.remove()

        # Going back gives each account and course a registration again (the merges stay: no hours move).
        downgrade(revision="0005_registration_invitations")
        with db.engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(sa.text(
                "SELECT id, platform_id, person_id FROM accounts WHERE id IN (1, 2) ORDER BY id"))] == [(1, 1, 1),
                                                                                                         (2, 1, 1)]
            assert conn.execute(sa.text("SELECT COUNT(*) FROM ledger_entries")).scalar_one() == 2


def test_people_whose_joined_hours_meet_the_rules_get_their_certificate_from_one_command(app, runner, make_account):
    account_id, person_id = make_account()
    with app.app_context():  # hours recorded without a certificate evaluation, as a migration's merge leaves them
        for module in current_catalog().modules:
            ledger.record_hours(account_id=account_id, module_slug=module.slug, hours=module.credit_hours,
                                source="workshop_grade", source_ref=f"test:{module.slug}")
        db.session.commit()
    first = runner.invoke(args=["certificates", "evaluate"])
    assert first.exit_code == 0 and "1 certificate(s) issued" in first.output and f"person {person_id}" in first.output
    again = runner.invoke(args=["certificates", "evaluate"])
    assert again.exit_code == 0 and "0 certificate(s) issued" in again.output
