"""The emails the program promises: queued with what caused them, sent by the worker through a real SMTP server
(aiosmtpd on loopback), retried when they certainly did not arrive, and never sent twice."""
import io
import logging
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from lti_tool import mail_worker
from lti_tool.extensions import db
from lti_tool.models import Account, AuditEvent, OutboxMail, Workshop
from lti_tool.models.base import utcnow
from lti_tool.services import certificates, ledger, mail
from tests.conftest import REGISTRATION
from tests.smtp import start_smtp_server

ALL = ["bargaining-foundations", "democratized-bargaining", "contract-costing", "power-mapping",
       "impact-bargaining", "esp-bargaining"]


@pytest.fixture
def smtp(app):
    server, controller = start_smtp_server()
    app.config.update(server.settings())
    yield server
    controller.stop()


def worker_once(app) -> str:
    result = app.test_cli_runner().invoke(args=["worker", "run", "--once"])
    assert result.exit_code == 0, result.output
    return result.output


def outbox(app) -> list[OutboxMail]:
    with app.app_context():
        return list(db.session.scalars(sa.select(OutboxMail).order_by(OutboxMail.id)))


def parts(message):
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def earn(app, modules, sub="user-member-1"):
    with app.app_context():
        from lti_tool.catalog import current_catalog

        account = db.session.scalars(sa.select(Account).where(Account.sub == sub)).one()
        for slug in modules:
            ledger.record_hours(account_id=account.id, module_slug=slug,
                                hours=current_catalog().module(slug).credit_hours, source="workshop_grade",
                                source_ref=f"grade:{sub}:{slug}", details={})
        certificates.evaluate(account.person_id)
        db.session.commit()
        return account.person_id


def place_workshop(app, *, public: bool, days: int | None, event="Summer Conference 2026", venue="UMass Amherst",
                   module="contract-costing") -> int:
    from lti_tool.models import Course

    with app.app_context():
        course = db.session.scalars(sa.select(Course)).first()
        workshop = Workshop(public_id=str(uuid.uuid4()), course_id=course.id, module_slug=module,
                            event_name=event, venue=venue, public=public,
                            session_date=(utcnow() + timedelta(days=days)).date() if days is not None else None)
        db.session.add(workshop)
        db.session.commit()
        return workshop.id


def test_registration_email_arrives_once_through_smtp_with_everything_a_member_needs(
        app, client, platform, member_launch, smtp):
    member_launch(platform)  # registers with the form, as a member does
    place_workshop(app, public=True, days=20)
    place_workshop(app, public=False, days=10, event="Closed local training")
    [queued] = outbox(app)
    assert (queued.kind, queued.status, queued.to_address) == ("registration", "pending", REGISTRATION["email"])
    assert smtp.messages == []  # queued with the registration; only the worker sends
    assert "1 emails sent" in worker_once(app)
    [(recipients, message)] = smtp.messages
    assert recipients == [REGISTRATION["email"]]
    assert message["To"] == REGISTRATION["email"]
    assert message["From"] == "Bargaining Certificate <certificate@union.example>"
    assert "Welcome to the Bargaining Certificate" in message["Subject"]
    assert message["Reply-To"] == "bargaining@massteacher.org" and message["Message-ID"] == queued.message_id
    text, html = parts(message)
    for body in (text, html):
        assert REGISTRATION["name"] in body
        assert "24 hours" in body and "Bargaining Foundations: 6 hours" in body
        assert "at least 4 different modules" in body
        assert "Contract Costing and Economic Indicators" in body  # the modules, by group
        assert "Open the Bargaining Certificate link in your course" in body  # how to reach them
        assert "bargaining@massteacher.org" in body  # the program contact
        assert "http://localhost:5000/offerings" in body
    # The registration happened before the workshops were placed: the email lists what was offered then.
    assert "Summer Conference" not in text
    # Never twice: another pass sends nothing, and saving the form again queues nothing.
    worker_once(app)
    from tests.conftest import register

    register(client, member_launch(platform))
    worker_once(app)
    assert len(smtp.messages) == 1 and len(outbox(app)) == 1
    assert outbox(app)[0].status == "sent" and outbox(app)[0].sent_via == "smtp"


def test_registration_email_lists_published_upcoming_workshops_only(app, client, platform, do_launch, smtp):
    from tests.conftest import register

    home = do_launch(platform, "member").location
    place_workshop(app, public=True, days=20, event="Summer Conference 2026", venue="UMass Amherst")
    place_workshop(app, public=True, days=5, event="Worcester regional training", venue="Worcester Union Hall",
                   module="power-mapping")
    place_workshop(app, public=False, days=3, event="Closed local training")
    place_workshop(app, public=True, days=-3, event="Held last week")
    register(client, home)
    worker_once(app)
    text, html = parts(smtp.messages[0][1])
    assert text.index("Worcester regional training") < text.index("Summer Conference 2026")  # soonest first
    assert "Worcester Union Hall" in text and "UMass Amherst" in html
    assert "Closed local training" not in text and "Held last week" not in text


def test_a_refused_registration_queues_no_email(app, client, platform, do_launch):
    home = do_launch(platform, "member").location
    page = client.get(home + "registration").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = client.post(home + "registration", data={"csrf_token": token, "name": "X", "email": "nope"})
    assert refused.status_code == 422
    assert outbox(app) == []


def test_certificate_email_carries_the_pdf_and_the_verification_address(app, platform, member_launch, smtp):
    member_launch(platform)
    person_id = earn(app, ALL)
    with app.app_context():
        number = certificates.certificate_for(person_id).number
    kinds = [row.kind for row in outbox(app)]
    assert kinds == ["registration", "certificate"]
    worker_once(app)
    (_, welcome), (recipients, message) = smtp.messages
    assert recipients == [REGISTRATION["email"]] and number in message["Subject"]
    text, html = parts(message)
    verify = f"http://localhost:5000/verify/{number}"
    assert verify in text and f'href="{verify}"' in html and "24 hours" in text
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"Bargaining-Certificate-{number}.pdf"
    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert number in pdf_text and REGISTRATION["name"] in pdf_text and verify in pdf_text
    # Evaluating again (another grade, a merge) issues nothing new and mails nothing new.
    earn(app, ALL[:1])
    worker_once(app)
    assert len(smtp.messages) == 2


def test_a_certificate_rolled_back_with_its_request_leaves_no_email(app, platform, member_launch):
    member_launch(platform)
    with app.app_context():
        from lti_tool.catalog import current_catalog

        account = db.session.scalars(sa.select(Account).where(Account.sub == "user-member-1")).one()
        for slug in ALL:
            ledger.record_hours(account_id=account.id, module_slug=slug,
                                hours=current_catalog().module(slug).credit_hours, source="workshop_grade",
                                source_ref=f"grade:{slug}", details={})
        assert certificates.evaluate(account.person_id) is not None
        db.session.rollback()  # the request failed after the certificate was issued
    assert [row.kind for row in outbox(app)] == ["registration"]


def test_smtp_4xx_is_retried_with_backoff_and_5xx_and_a_hang_up_fail_once_in_words(app, platform, member_launch, smtp):
    member_launch(platform)
    smtp.script.append("451 4.3.0 Try again later")
    assert "1 to retry" in worker_once(app)
    [row] = outbox(app)
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert "tried again later" in row.last_error and smtp.messages == []
    worker_once(app)  # not due yet
    assert outbox(app)[0].attempts == 1
    with app.app_context():
        db.session.execute(sa.update(OutboxMail).values(next_attempt_at=utcnow()))
        db.session.commit()
    worker_once(app)
    assert len(smtp.messages) == 1 and outbox(app)[0].status == "sent"

    # A permanent refusal: failed, with what to do.
    with app.app_context():
        mail.queue(kind="reminder", dedupe_key="t:550", to_address="gone@example.org", person_id=None,
                   template="reminder", context={"name": "Pat", "what_is_left": ["1 more elective"]})
        db.session.commit()
    smtp.script.append("550 5.1.1 No such user")
    assert "1 failed" in worker_once(app)
    failed = outbox(app)[-1]
    assert failed.status == "failed" and "refused this email for good" in failed.last_error
    assert "Check the address" in failed.last_error

    # The connection drops after the message was handed over: it may have arrived, so it is never sent again.
    with app.app_context():
        mail.queue(kind="reminder", dedupe_key="t:drop", to_address="pat@example.org", person_id=None,
                   template="reminder", context={"name": "Pat", "what_is_left": ["1 more elective"]})
        db.session.commit()
    smtp.script.append("drop")
    worker_once(app)
    dropped = outbox(app)[-1]
    assert dropped.status == "failed" and "may have arrived" in dropped.last_error
    worker_once(app)
    assert len(smtp.messages) == 1
    # A person decides to send it again.
    result = app.test_cli_runner().invoke(args=["mail", "retry", "--id", str(dropped.id)])
    assert "1 email(s) queued again" in result.output
    worker_once(app)
    assert len(smtp.messages) == 2 and smtp.messages[-1][0] == ["pat@example.org"]


def test_an_unreachable_smtp_server_is_retried_not_lost(app, platform, member_launch, smtp):
    member_launch(platform)
    app.config["SMTP_PORT"] = 1  # nothing listens there
    assert "1 to retry" in worker_once(app)
    row = outbox(app)[0]
    assert row.status == "pending" and "could not reach the SMTP server" in row.last_error


def test_a_leased_email_is_not_sent_by_a_second_worker_and_an_abandoned_one_is_not_resent(
        app, platform, member_launch, smtp):
    member_launch(platform)
    with app.app_context():
        ids, lease = mail_worker._claim(10, 120)  # another worker holds it
        db.session.commit()
        assert len(ids) == 1
    worker_once(app)
    assert smtp.messages == [] and outbox(app)[0].status == "pending"
    with app.app_context():  # that worker died mid-send: its lease runs out without an outcome
        db.session.execute(sa.update(OutboxMail).values(leased_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    worker_once(app)
    row = outbox(app)[0]
    assert smtp.messages == [] and row.status == "failed" and "may have arrived" in row.last_error
    with app.app_context():  # the first worker cannot record an outcome on a row it no longer holds
        report = mail_worker.MailReport()
        assert mail_worker._finish(row.id, lease, report, status="sent") is False and report.lease_lost == 1
        db.session.commit()


def test_reminders_go_to_members_one_requirement_away_once_a_month(app, client, platform, member_launch, smtp):
    member_launch(platform)
    earn(app, ALL[:5])  # one elective left
    from tests.platform import MEMBERSHIP, User

    platform.users["member2"] = User("user-member-2", "Second Member", "second@example.org", [MEMBERSHIP + "Learner"])
    member_launch(platform, user="member2", browser=app.test_client(), email="second@example.org",
                  name="Second Member")
    earn(app, ALL[:2], sub="user-member-2")  # one requirement left too, but 12 hours of it: not close
    dry = app.test_cli_runner().invoke(args=["mail", "remind", "--dry-run"])
    assert dry.exit_code == 0 and "would get 1 member(s)" in dry.output and REGISTRATION["email"] in dry.output
    assert "1 more Specialized Topics elective" in dry.output
    assert [row.kind for row in outbox(app)] == ["registration", "registration"]
    real = app.test_cli_runner().invoke(args=["mail", "remind"])
    assert "queued for 1 member(s)" in real.output
    worker_once(app)
    reminder = smtp.messages[-1][1]
    assert smtp.messages[-1][0] == [REGISTRATION["email"]]
    assert "close to your Bargaining Certificate" in reminder["Subject"]
    text, html = parts(reminder)
    assert "1 more Specialized Topics elective" in text and "<li>1 more Specialized Topics elective</li>" in html
    again = app.test_cli_runner().invoke(args=["mail", "remind"])
    assert "queued for 0 member(s)" in again.output and "had a reminder in the last 30 days" in again.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "mail.remind")) == 2


def test_development_without_smtp_writes_emails_to_the_log_and_the_dev_page(
        app, client, platform, member_launch, caplog):
    member_launch(platform)
    with caplog.at_level(logging.INFO, logger="lti_tool.mail"):
        worker_once(app)
    assert "Welcome to the Bargaining Certificate" in caplog.text and "bargaining@massteacher.org" in caplog.text
    assert outbox(app)[0].status == "sent" and outbox(app)[0].sent_via == "log"
    page = client.get("/dev/mail").get_data(as_text=True)
    assert "Welcome to the Bargaining Certificate" in page and REGISTRATION["email"] in page
    assert "No <code>SMTP_HOST</code> is set" in page


def test_the_dev_page_exists_only_with_the_demo(tmp_path):
    from lti_tool import create_app

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.sqlite3",
                      "DEMO_PLATFORM": False, "SECRET_KEY": "x", "GRADES_BACKGROUND_SYNC": False})
    assert app.test_client().get("/dev/mail").status_code == 404


def test_production_without_smtp_keeps_emails_queued(app, platform, member_launch, caplog):
    member_launch(platform)
    app.config["ENV_MODE"] = "production"
    with caplog.at_level(logging.WARNING, logger="lti_tool.mail"):
        output = worker_once(app)
    assert "1 deferred" in output and "set SMTP_HOST" in caplog.text
    assert outbox(app)[0].status == "pending"


def test_html_emails_escape_what_members_typed(app, client, platform, do_launch, smtp):
    from tests.conftest import register

    home = do_launch(platform, "member").location
    register(client, home, name='<img src=x onerror="alert(1)"> O\'Neil & Sons')
    worker_once(app)
    text, html = parts(smtp.messages[0][1])
    assert '<img src=x onerror="alert(1)"> O\'Neil & Sons' in text  # plain text is shown as typed
    assert "<img" not in html and "&lt;img src=x onerror=" in html and "&amp; Sons" in html


def test_a_long_running_worker_counts_attempts_and_gives_up(app, platform, member_launch, smtp):
    member_launch(platform)
    app.config["MAIL_MAX_ATTEMPTS"] = 3
    smtp.script.extend(["451 4.3.0 busy"] * 3)
    with app.app_context():  # one session for every pass, as `worker run` has
        for attempt in (1, 2, 3):
            mail_worker.send_due()
            row = outbox(app)[0]
            assert row.attempts == attempt
            db.session.execute(sa.update(OutboxMail).values(next_attempt_at=utcnow()))
            db.session.commit()
    row = outbox(app)[0]
    assert row.status == "failed" and "It failed 3 times: check the mail settings" in row.last_error
    assert smtp.messages == []
