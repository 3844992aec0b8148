"""`admins grant`: by person number or LMS identity; an email only lists candidates the LMSs vouch for."""
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, AuditEvent, Person, Platform
from tests.conftest import register


def admins(app):
    with app.app_context():
        return set(db.session.scalars(sa.select(Person.name).where(Person.program_admin.is_(True))))


def person_of(app, sub):
    with app.app_context():
        return db.session.scalar(sa.select(Account.person_id).where(Account.sub == sub))


def director_and_impostor(make_platform, do_launch, member_launch, app):
    """The director launches as an LMS admin of platform A; an LMS admin of platform B types her email."""
    a = make_platform()
    b = make_platform(issuer="https://b.example.edu", client_id="b-client")
    b.users["admin"].sub, b.users["admin"].name, b.users["admin"].email = "b-admin-7", "Mallory LMS", "mal@b.edu"
    do_launch(a, "admin", browser=app.test_client())
    browser = app.test_client()
    home = do_launch(b, "admin", browser=browser).location
    register(browser, home, name="Ada Admin", email="ada@example.org")
    with app.app_context():
        assert db.session.scalars(sa.select(Person).where(Person.email == "ada@example.org")).all()[-1] \
            .accounts[0].sub == "b-admin-7"
    return a, b


def test_email_alone_grants_nobody_and_lists_the_lms_accounts(app, runner, make_platform, do_launch, member_launch):
    a, _ = director_and_impostor(make_platform, do_launch, member_launch, app)
    result = runner.invoke(args=["admins", "grant", "--email", "ada@example.org"])
    assert result.exit_code != 0
    assert f"person {person_of(app, 'user-admin-1')}: Ada Admin" in result.output
    assert "sub user-admin-1: Ada Admin <ada@example.org>" in result.output
    assert a.issuer in result.output
    # The one who only typed the address is not a candidate, and is said to be left out.
    assert "b-admin-7" not in result.output and "typed this address on the registration form only" in result.output
    assert "--person-id" in result.output
    assert admins(app) == set()


def test_grant_by_platform_and_sub(app, runner, make_platform, do_launch, member_launch):
    a, _ = director_and_impostor(make_platform, do_launch, member_launch, app)
    result = runner.invoke(args=["admins", "grant", "--platform", a.issuer, "--sub", "user-admin-1"])
    assert result.exit_code == 0, result.output
    assert "is now a program admin" in result.output and "sub user-admin-1" in result.output
    assert admins(app) == {"Ada Admin"}
    listing = runner.invoke(args=["admins", "list"]).output
    assert "Ada Admin" in listing and f"{a.issuer}), sub user-admin-1" in listing and "b-admin-7" not in listing
    assert person_of(app, "b-admin-7") != person_of(app, "user-admin-1")
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "people.grant_admin")).one()
        assert event.person_id == person_of(app, "user-admin-1") and "user-admin-1" in event.details["identified_by"]
        platform_id = db.session.scalar(sa.select(Platform.id).join(Account, Account.lms_id == Platform.lms_id)
                                        .where(Account.sub == "b-admin-7"))
    # By the platform's number too; the same sub on another platform is another person.
    result = runner.invoke(args=["admins", "grant", "--platform", str(platform_id), "--sub", "user-admin-1"])
    assert result.exit_code != 0 and "No account with sub 'user-admin-1'" in result.output


def test_grant_by_person_id_and_refusals(app, runner, make_platform, do_launch, member_launch):
    director_and_impostor(make_platform, do_launch, member_launch, app)
    assert runner.invoke(args=["admins", "grant"]).exit_code != 0
    both = runner.invoke(args=["admins", "grant", "--email", "ada@example.org", "--person-id", "1"])
    assert both.exit_code != 0 and "Give one of" in both.output
    assert "There is no person 999" in runner.invoke(args=["admins", "grant", "--person-id", "999"]).output
    missing = runner.invoke(args=["admins", "grant", "--email", "nobody@example.org"])
    assert missing.exit_code != 0 and "No LMS account carries" in missing.output
    assert "Give both" in runner.invoke(args=["admins", "grant", "--sub", "user-admin-1"]).output
    impostor = person_of(app, "b-admin-7")
    result = runner.invoke(args=["admins", "grant", "--person-id", str(impostor)])
    assert result.exit_code == 0 and "sub b-admin-7" in result.output  # the operator sees whose accounts these are
    assert admins(app) == {"Ada Admin"} and person_of(app, "b-admin-7") == impostor


def test_an_issuer_shared_by_two_registrations_needs_the_platform_number(app, runner, make_platform, do_launch):
    one = make_platform(issuer="https://canvas.instructure.com", client_id="1001", product="canvas")
    two = make_platform(issuer="https://canvas.instructure.com", client_id="1002", product="canvas")
    do_launch(one, "admin", browser=app.test_client())
    do_launch(two, "admin", browser=app.test_client())
    result = runner.invoke(args=["admins", "grant", "--platform", "https://canvas.instructure.com",
                                 "--sub", "user-admin-1"])
    assert result.exit_code != 0 and "Give --platform as the platform's number" in result.output
    assert admins(app) == set()


def _run_in_terminal(app, args: list[str], answer: str) -> str:
    """Run the real `flask` command on a terminal (pty), answer its prompt, and return what it printed."""
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY="test-secret",
               LTI_TOOL_ENV="development", GRADES_BACKGROUND_SYNC="0")
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "lti_tool", *args], stdin=terminal,
                               stdout=terminal, stderr=terminal, env=env, cwd=Path(__file__).parents[1])
    os.close(terminal)
    output, answered, deadline = b"", False, time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if not answered and b"blank to cancel" in output:
            os.write(controller, answer.encode() + b"\n")
            answered = True
        if process.poll() is not None and not ready:
            break
    process.wait(timeout=10)
    os.close(controller)
    return output.decode(errors="replace")


def test_email_on_a_terminal_asks_which_person(app, make_platform, do_launch, member_launch):
    director_and_impostor(make_platform, do_launch, member_launch, app)
    with app.app_context():
        db.session.remove()
    director = person_of(app, "user-admin-1")
    refused = _run_in_terminal(app, ["admins", "grant", "--email", "ada@example.org"], str(person_of(app, "b-admin-7")))
    assert "is not one of the people listed" in refused and admins(app) == set()
    granted = _run_in_terminal(app, ["admins", "grant", "--email", "ADA@example.org"], str(director))
    assert f"person {director}: Ada Admin" in granted and "is now a program admin" in granted, granted
    assert admins(app) == {"Ada Admin"}
