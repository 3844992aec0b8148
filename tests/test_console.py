"""The staff's console: platforms, keys, launch log, gradebook queue, reports, and who may use them."""
import csv
import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from lti_tool import grades_worker
from lti_tool.extensions import db
from lti_tool.models import (
    AuditEvent,
    Launch,
    LaunchRefusal,
    OutboxMail,
    OutboxScore,
    Platform,
    RegistrationInvitation,
    ToolKey,
    Workshop,
)
from lti_tool.models.base import utcnow
from lti_tool.services import launch_log, mail, passback
from tests.platform import login_params


def text(response):
    return response.get_data(as_text=True)


def csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture(autouse=True)
def fresh_refusal_counter():
    """Each test starts with the per-minute refusal counter of this process empty."""
    launch_log._seen.clear()
    yield
    launch_log._seen.clear()


@pytest.fixture
def console(app, platform, do_launch):
    """Launch as an LMS admin granted program access; return (browser, admin base URL, csrf token)."""
    browser = app.test_client()
    home = do_launch(platform, "admin", browser=browser).location
    result = app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer,
                                                "--sub", "user-admin-1"])
    assert result.exit_code == 0, result.output
    base = home + "admin/"
    token = csrf(text(browser.get(base + "platforms")))
    return browser, base, token


def audit_actions(app) -> list[str]:
    with app.app_context():
        # Granting the console's own admin (the fixture) is audited too; the tests look at what follows.
        return list(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action != "people.grant_admin")
                                       .order_by(AuditEvent.id)))


PAGES = ["platforms", "keys", "launches", "gradebook", "emails", "emails?preview=1", "offerings", "reports",
         "reports/hours-by-module", "reports/hours-by-module.csv", "reports/certificates-by-month.svg"]
POSTS = ["platforms/1/check", "platforms/1/disable", "platforms/1/enable", "registration-links",
         "registration-links/1/revoke", "keys/rotate", "gradebook/retry", "gradebook/discard", "emails/retry",
         "emails/reminders", "offerings/1/publish", "offerings/1/unpublish"]


def test_console_is_only_for_program_admins(app, client, platform, do_launch, member_launch):
    member = member_launch(platform) + "admin/"
    lms_admin = app.test_client()
    not_granted = do_launch(platform, "admin", browser=lms_admin).location + "admin/"
    for path in PAGES:
        assert client.get(member + path).status_code == 403, path
        refused = lms_admin.get(not_granted + path)
        assert refused.status_code == 403 and "admins grant" in text(refused), path
    token = csrf(text(client.get(member.replace("admin/", "registration"))))
    for path in POSTS:
        assert client.post(member + path, data={"csrf_token": token, "reason": "x"}).status_code == 403, path
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ToolKey)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).where(OutboxMail.kind == "reminder")) == 0


def test_every_console_form_needs_its_csrf_token(app, console):
    browser, base, _ = console
    for path in POSTS:
        response = browser.post(base + path, data={"reason": "x", "name": "X", "score_id": "1"})
        assert response.status_code == 400, path
    assert audit_actions(app) == []


def test_console_pages_work_for_a_program_admin_and_link_each_other(console):
    browser, base, _ = console
    for path in PAGES:
        response = browser.get(base + path)
        assert response.status_code == 200, path
        # Shown in the LMS's frame: nothing forbids framing.
        assert "X-Frame-Options" not in response.headers
    nav = text(browser.get(base + "keys"))
    for label in ("People", "Platforms", "Keys", "Launch log", "Gradebook queue", "Emails", "Offerings", "Reports",
                  "Audit log"):
        assert f">{label}</a>" in nav
    assert 'aria-current="page">Keys' in nav


def test_platforms_page_lists_registrations_and_the_values_to_paste(app, console, platform):
    browser, base, _ = console
    page = text(browser.get(base + "platforms"))
    for url in ("http://localhost:5000/lti/login", "http://localhost:5000/lti/launch",
                "http://localhost:5000/.well-known/jwks.json", "http://localhost:5000/lti/config/canvas.json",
                "http://localhost:5000/lti/register"):
        assert f">{url}</code>" in page
    # Copy buttons are static JavaScript's: no inline handlers, hidden until the script shows them.
    assert page.count("data-copy=") == 5 and "onclick" not in page and "console.js" in page
    assert platform.issuer in page and "<code>deployment-1</code>" in page and "By hand (CLI)" in page
    with app.app_context():
        last = db.session.scalar(sa.select(sa.func.max(Launch.created_at)))
    assert f"{last:%Y-%m-%d %H:%M} UTC" in page
    assert "You launched through this one." in page


def test_check_says_what_is_right_and_what_is_wrong(app, console, platform):
    browser, base, token = console
    page = text(browser.post(base + "platforms/1/check", data={"csrf_token": token}))
    assert "no problems found" in page
    assert "answered with 1 usable key(s)" in page and "gave a grade-service token" in page
    assert "answered HTTP 401: the platform gives its configuration only with a registration token" in page
    with app.app_context():
        stored = db.session.get(Platform, 1)
        stored.key_set_url = platform.base_url + "/moved-jwks"
        stored.auth_token_url = platform.base_url + "/moved-token"
        db.session.commit()
    page = text(browser.post(base + "platforms/1/check", data={"csrf_token": token}))
    assert "2 problems" in page
    assert f"The platform&#39;s key set at {platform.base_url}/moved-jwks answered HTTP 404" in page
    assert "token address answered HTTP 404" in page
    assert audit_actions(app).count("platform.check") == 2
    # The CLI runs the same check and fails with the problems.
    result = app.test_cli_runner().invoke(args=["platform", "check", "--id", "1"])
    assert result.exit_code == 1 and "[problem] Key set" in result.output


def test_a_disabled_registration_refuses_its_launches_in_words_until_enabled(app, make_platform, console, do_launch):
    browser, base, token = console
    other = make_platform(client_id="tool-client-2")
    with app.app_context():
        other_id = db.session.scalar(sa.select(Platform.id).where(Platform.client_id == "tool-client-2"))
    missing = browser.post(base + f"platforms/{other_id}/disable", data={"csrf_token": token, "reason": " "})
    assert "needs a reason" in text(browser.get(missing.location))
    browser.post(base + f"platforms/{other_id}/disable", data={"csrf_token": token, "reason": "Contract ended"})
    assert "Contract ended" in text(browser.get(base + "platforms"))

    refused = app.test_client().get("/lti/login", query_string=login_params(other, "member"))
    assert refused.status_code == 403
    assert "was disabled by the program&#39;s administrators" in text(refused) and "Contract ended" in text(refused)
    log_page = text(browser.get(base + f"launches?platform={other_id}"))
    assert "platform_disabled" in log_page and "Contract ended" in log_page

    browser.post(base + f"platforms/{other_id}/enable", data={"csrf_token": token})
    assert do_launch(other, "member", browser=app.test_client()).status_code == 303
    assert audit_actions(app)[-2:] == ["platform.disable", "platform.enable"]


def test_a_launch_already_signed_is_refused_once_its_registration_is_disabled(app, make_platform, console):
    other = make_platform(client_id="tool-client-3")
    member = app.test_client()
    response = member.get("/lti/login", query_string=login_params(other, "member"))
    form = other.authorize(response.location)
    form.pop("action")
    result = app.test_cli_runner().invoke(args=["platform", "disable", "--id", "2", "--reason", "Moved to a new LMS"])
    assert result.exit_code == 0, result.output
    refused = member.post("/lti/launch", data=form)
    assert refused.status_code == 403 and "Moved to a new LMS" in text(refused)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Launch).where(Launch.platform_id == 2)) == 0


def test_an_admin_cannot_disable_the_registration_they_are_signed_in_through(app, console):
    browser, base, token = console
    response = browser.post(base + "platforms/1/disable", data={"csrf_token": token, "reason": "oops"})
    assert "You are signed in through this registration" in text(browser.get(response.location))
    with app.app_context():
        assert db.session.get(Platform, 1).disabled_at is None


def test_a_registration_link_is_shown_once_and_can_be_revoked(app, console):
    browser, base, token = console
    bad = browser.post(base + "registration-links", data={"csrf_token": token, "name": "Springfield",
                                                           "expires_in": "20w"})
    assert bad.status_code == 400 and "between a minute and 90 days" in text(bad)
    page = text(browser.post(base + "registration-links", data={"csrf_token": token, "name": "Springfield U",
                                                                   "expires_in": "2d"}))
    link = re.search(r'<code id="new-link">([^<]+)</code>', page).group(1)
    assert link.startswith("http://localhost:5000/lti/register?invitation=")
    secret = link.split("=", 1)[1]
    assert secret not in text(browser.get(base + "platforms"))
    with app.app_context():
        invitation = db.session.scalars(sa.select(RegistrationInvitation)).one()
        assert secret not in invitation.token_hash and invitation.name == "Springfield U"
    browser.post(base + f"registration-links/{invitation.id}/revoke", data={"csrf_token": token})
    assert "revoked" in text(browser.get(base + "platforms"))
    assert app.test_client().get(link).status_code in (401, 403, 410)
    assert audit_actions(app) == ["registration_link.create", "registration_link.revoke"]
    # The CLI makes links through the same service, and they are audited the same way.
    made = app.test_cli_runner().invoke(args=["registration", "create", "--name", "Shelbyville College"])
    assert made.exit_code == 0, made.output
    with app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "registration_link.create")
                                    .order_by(AuditEvent.id)).all()
        assert [(e.details["institution"], e.details["via"]) for e in events] == [
            ("Springfield U", "console"), ("Shelbyville College", "cli")]


def test_keys_show_ids_and_ages_and_rotation_is_audited(app, console):
    browser, base, token = console
    with app.app_context():
        first = db.session.scalars(sa.select(ToolKey)).one()
        first.created_at = utcnow() - timedelta(days=400)
        db.session.commit()
        first_kid = first.kid
    page = text(browser.get(base + "keys"))
    assert first_kid in page and "Active: signs now" in page and '<td class="num">400</td>' in page
    browser.post(base + "keys/rotate", data={"csrf_token": token})
    page = text(browser.get(base + "keys"))
    assert "Previous: still published" in page and page.count("Active: signs now") == 1
    assert first_kid in text(browser.get("/.well-known/jwks.json"))
    assert app.test_cli_runner().invoke(args=["keys", "rotate"]).exit_code == 0
    assert "Retired: no longer published" in text(browser.get(base + "keys"))
    with app.app_context():
        rotations = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "keys.rotate")).all()
        assert [r.details["via"] for r in rotations] == ["console", "cli"]
        assert rotations[0].details["previous_kid"] == first_kid


def test_refused_launches_are_logged_with_reason_and_words_and_filtered(app, console, platform):
    browser, base, _ = console
    stranger = app.test_client()
    stranger.get("/lti/login", query_string=login_params(platform, "member", iss="https://unknown.example.edu"))
    stranger.post("/lti/launch", data={"id_token": "not-a-token", "state": "x"})
    token = platform.sign(platform.claims_for("member", "nonce-x"), headers={"alg": "RS256"})
    forged = token.rsplit(".", 1)[0] + ".AAAA"
    stranger.post("/lti/launch", data={"id_token": forged, "state": "x"})
    page = text(browser.get(base + "launches"))
    for reason in ("unknown_platform", "bad_token"):
        assert f"<code>{reason}</code>" in page
    assert "No platform is registered for issuer https://unknown.example.edu" in page
    assert "no registration the tool knows" in page
    only = text(browser.get(base + "launches?reason=bad_token"))
    assert "<code>bad_token</code>" in only and "<code>unknown_platform</code>" not in only
    mine = text(browser.get(base + "launches?platform=1"))
    assert "<code>unknown_platform</code>" not in mine and "Ada Admin" in mine


def test_a_flood_of_refusals_adds_counts_not_rows(app, monkeypatch):
    flood = app.test_client()
    for _ in range(50):
        assert flood.get("/lti/login", query_string={"iss": "https://flood.example", "login_hint": "x",
                                                     "target_link_uri": "http://localhost:5000/lti/launch"}
                         ).status_code == 400
    with app.app_context():
        rows = db.session.scalars(sa.select(LaunchRefusal)).all()
        assert len(rows) <= 2 and sum(r.count for r in rows) == 50  # at most one minute boundary crossed
    monkeypatch.setattr(launch_log, "MAX_KINDS_PER_MINUTE", 5)
    launch_log._seen.clear()
    with app.app_context():
        db.session.execute(sa.delete(LaunchRefusal))
        db.session.commit()
    for n in range(30):
        flood.get("/lti/login", query_string={"iss": "https://flood.example"},
                  environ_base={"REMOTE_ADDR": f"2001:db8:{n}::1"})
    with app.app_context():
        rows = db.session.scalars(sa.select(LaunchRefusal)).all()
        assert len(rows) <= 12 and sum(r.count for r in rows) == 30
        assert launch_log.MANY in {r.address for r in rows}


def test_the_launch_log_is_purged_after_its_days(app, console):
    with app.app_context():
        old = utcnow() - timedelta(days=40)
        db.session.add(LaunchRefusal(minute=old, platform_id=0, address="192.0.2.1", reason="bad_token",
                                     message="old", status=400, path="/lti/launch", count=3, last_at=old))
        db.session.execute(sa.update(Launch).values(created_at=old))
        launch_log.record_refusal(reason="bad_token", message="new", status=400, path="/lti/launch", issuer=None,
                                  client_id=None, address="192.0.2.2")
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["launches", "purge"])
    assert result.exit_code == 0
    assert "Deleted 1 refused-launch row(s) and 1 launch(es) older than 30 days" in result.output
    with app.app_context():
        assert [r.message for r in db.session.scalars(sa.select(LaunchRefusal))] == ["new"]


def test_gradebook_queue_shows_the_lms_answer_and_retries_or_discards_with_a_reason(app, console, platform):
    browser, base, token = console
    url = platform.add_line_item(label="Power mapping workshop")
    platform.score_failures = [422, 422]
    with app.app_context():
        ids = [passback.queue_score(platform_id=1, course_id=None, user_id=user, score_given=5, score_maximum=6,
                                    line_item_url=url, label="Power mapping workshop").id
               for user in ("user-member-1", "user-2", "user-3")]
        db.session.commit()
        grades_worker.send_due(concurrency=1)
        first = {i: db.session.get(OutboxScore, i).status for i in ids}
    failed_ids = [i for i in ids if first[i] == "failed"]
    sent_id = next(i for i in ids if first[i] == "sent")
    assert len(failed_ids) == 2
    failed = text(browser.get(base + "gradebook?status=failed"))
    assert "HTTP 422" in failed and "Check their enrolment in the LMS" in failed and "Maria" not in failed
    assert "2 scores (failed)" in failed and "Power mapping workshop" in failed
    assert "The LMS accepted the score." in text(browser.get(base + "gradebook?status=sent"))

    refused = browser.post(base + "gradebook/discard", data={"csrf_token": token, "score_id": str(failed_ids[0]),
                                                              "reason": ""})
    assert "needs a reason" in text(browser.get(refused.location))
    browser.post(base + "gradebook/discard", data={"csrf_token": token, "score_id": str(failed_ids[0]),
                                                   "reason": "Left the course"})
    # A sent score cannot be retried: only the failed one is queued again.
    browser.post(base + "gradebook/retry", data={"csrf_token": token, "score_id": [str(failed_ids[1]), str(sent_id)]})
    with app.app_context():
        statuses = [db.session.get(OutboxScore, i).status for i in (*failed_ids, sent_id)]
        assert statuses == ["discarded", "pending", "sent"]
        grades_worker.send_due()
        assert db.session.get(OutboxScore, failed_ids[0]).status == "discarded"
        assert db.session.get(OutboxScore, failed_ids[1]).status == "sent"
    assert len(platform.scores) == 2
    events = audit_actions(app)
    assert "grades.discard" in events and "grades.retry" in events
    audit = text(browser.get(base + "audit"))
    assert "Left the course" in audit and "grades.discard" in audit


def test_reports_count_export_safely_and_draw_charts(app, console, platform, member_launch, do_launch):
    browser, base, token = console
    from lti_tool.models import Registration
    from tests.conftest import register
    from tests.platform import MEMBERSHIP, User

    platform.users["member2"] = User("user-member-2", "Mo Member", "mo@example.org", [MEMBERSHIP + "Learner"])
    for user, association in (("member", "=HYPERLINK(\"http://x\")"), ("member2", "Springfield EA")):
        member = app.test_client()
        home = do_launch(platform, user, browser=member).location
        assert member.get(home).status_code == 302
        register(member, home, local_association=association, email=f"{user}@union.test")
    with app.app_context():
        person_ids = [db.session.scalar(sa.select(Registration.person_id).where(Registration.email == email))
                      for email in ("member@union.test", "member2@union.test")]
    person_urls = [f"{base}people/{person_id}" for person_id in person_ids]
    for slug, hours in [("bargaining-foundations", "6"), ("democratized-bargaining", "6"), ("contract-costing", "3"),
                        ("power-mapping", "3"), ("impact-bargaining", "3"), ("esp-bargaining", "3")]:
        page = text(browser.get(person_urls[0]))
        request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
        browser.post(person_urls[0] + "/adjust", data={"csrf_token": token, "request_id": request_id,
                                                       "module": slug, "hours": hours, "reason": "Sign-in sheet"})
    for slug, hours in [("bargaining-foundations", "6"), ("democratized-bargaining", "6"), ("contract-costing", "3"),
                        ("power-mapping", "3"), ("impact-bargaining", "3")]:
        page = text(browser.get(person_urls[1]))
        request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
        browser.post(person_urls[1] + "/adjust", data={"csrf_token": token, "request_id": request_id,
                                                       "module": slug, "hours": hours, "reason": "Sign-in sheet"})
    month = f"{utcnow():%Y-%m}"
    page = text(browser.get(base + "reports/certificates-by-month"))
    assert f'<th scope="row">{month}</th><td>1</td><td>0</td>' in page
    assert f'alt="Bar chart of certificates issued by month: {month} 1."' in page
    near = text(browser.get(base + "reports/one-requirement-away"))
    assert "member2@union.test" in near and "member@union.test" not in near
    kinds = text(browser.get(base + "reports/hours-by-kind"))
    assert '<th scope="row">Adjustment by program staff</th><td>45</td><td>11</td><td>2</td>' in kinds

    rows = list(csv.reader(io.StringIO(text(browser.get(base + "reports/by-local-association.csv")))))
    assert rows[0][:2] == ["Local association", "Registered"]
    assert ["'=HYPERLINK(\"http://x\")", "1", "1", "0", "1", "24"] in rows
    assert ["Springfield EA", "1", "1", "1", "0", "21"] in rows
    assert '<th scope="row">PreK-12</th><td>2</td>' in text(browser.get(base + "reports/by-sector"))

    svg = browser.get(base + "reports/hours-by-module.svg")
    assert svg.mimetype == "image/svg+xml" and "default-src 'none'" in svg.headers["Content-Security-Policy"]
    body = svg.get_data(as_text=True)
    # Self-contained: no script, nothing loaded from elsewhere (no CDN).
    assert "<svg" in body and "<script" not in body and "Contract Costing and Economic Indicators" in body
    assert not re.search(r'(href|src)="(https?:)?//', body)
    assert browser.get(base + "reports/workshops.svg").status_code == 404
    assert browser.get(base + "reports/nope").status_code == 404


def test_emails_page_counts_lists_failures_in_words_and_retries_them_audited(app, console, platform, member_launch):
    browser, base, token = console
    member_launch(platform)  # the welcome email: pending
    with app.app_context():
        mail.queue(kind="reminder", dedupe_key="t:gone", to_address="gone@example.org", person_id=None,
                   template="reminder", context={"name": "Pat", "what_is_left": ["1 more elective"]})
        row = db.session.scalars(sa.select(OutboxMail).where(OutboxMail.dedupe_key == "t:gone")).one()
        row.status, row.attempts = "failed", 1
        row.last_error = "The mail server refused this email for good (SMTP 550). Check the address with the member."
        db.session.commit()
        failed_id = row.id
    page = text(browser.get(base + "emails"))
    assert "Emails by status" in page and "1 failed email" in page
    assert "gone@example.org" in page and "refused this email for good (SMTP 550)" in page
    assert 'aria-current="page">Emails' in page
    assert browser.post(base + "emails/retry", data={"csrf_token": token}).status_code == 303
    assert "Choose the emails to retry." in text(browser.get(base + "emails"))
    done = browser.post(base + "emails/retry", data={"csrf_token": token, "mail_id": str(failed_id)})
    assert "1 email(s) will be sent again" in text(browser.get(done.location))
    with app.app_context():
        assert db.session.get(OutboxMail, failed_id).status == "pending"
    assert audit_actions(app) == ["mail.retry"]
    assert "No email has failed." in text(browser.get(base + "emails"))


def test_reminders_are_previewed_with_the_reason_then_queued_from_the_console(app, console, platform, member_launch):
    from tests.conftest import REGISTRATION
    from tests.test_mail import ALL, earn

    browser, base, token = console
    member_launch(platform)
    earn(app, ALL[:5])  # one elective left
    page = text(browser.get(base + "emails"))
    assert "Preview the reminders" in page and "Send the reminders" not in page
    preview = text(browser.get(base + "emails?preview=1"))
    assert "1 member would get a reminder" in preview and REGISTRATION["email"] in preview
    assert "1 more Specialized Topics elective" in preview and "Send the reminders" in preview
    with app.app_context():  # the preview writes nothing
        assert db.session.scalar(sa.select(sa.func.count()).where(OutboxMail.kind == "reminder")) == 0
    sent = browser.post(base + "emails/reminders", data={"csrf_token": token})
    assert sent.status_code == 303
    assert "1 reminder(s) queued" in text(browser.get(sent.location))
    with app.app_context():
        reminders = list(db.session.scalars(sa.select(OutboxMail).where(OutboxMail.kind == "reminder")))
    assert [(r.to_address, r.status) for r in reminders] == [(REGISTRATION["email"], "pending")]
    again = browser.post(base + "emails/reminders", data={"csrf_token": token})
    assert "No reminder queued" in text(browser.get(again.location))
    assert "Left out, reminded in the last 30 days" in text(browser.get(base + "emails?preview=1"))
    assert audit_actions(app) == ["mail.remind", "mail.remind"]


def test_offerings_page_lists_placed_workshops_upcoming_first_and_publishes_them(app, console, platform, client):
    from tests.test_mail import place_workshop

    browser, base, token = console
    past = place_workshop(app, public=False, days=-20, event="Winter school 2025")
    later = place_workshop(app, public=False, days=40, event="Summer Conference 2027", venue="Boston")
    soon = place_workshop(app, public=True, days=5, event="Springfield training", venue="Springfield")
    page = text(browser.get(base + "offerings"))
    assert page.index("Springfield training") < page.index("Summer Conference 2027") < page.index("Winter school")
    assert "Contract Costing" in page and "Boston" in page and 'href="/offerings"' in page
    assert f'/offerings/{later}/publish"' in page and f'/offerings/{soon}/unpublish"' in page
    assert f'/offerings/{past}/publish"' not in page  # its date has passed: nothing to advertise
    assert "Summer Conference 2027" not in text(client.get("/offerings"))

    done = browser.post(base + f"offerings/{later}/publish", data={"csrf_token": token})
    assert "The workshop Summer Conference 2027" in (flashed := text(browser.get(done.location)))
    assert "is listed on the public offerings" in flashed
    with app.app_context():
        assert db.session.get(Workshop, later).public is True
    assert "Summer Conference 2027" in text(client.get("/offerings"))
    browser.post(base + f"offerings/{soon}/unpublish", data={"csrf_token": token})
    assert "Springfield training" not in text(client.get("/offerings"))
    missing = browser.post(base + "offerings/9999/publish", data={"csrf_token": token})
    assert "There is no workshop 9999" in text(browser.get(missing.location))
    assert audit_actions(app) == ["workshop.publish", "workshop.unpublish"]


@pytest.mark.browser
def test_console_pages_pass_axe_and_work_by_keyboard(app, platform, do_launch, live_server, browser_page):
    from tests.test_accessibility import violations

    # The launch goes through the test client (the LMS emulator's own flow), then the browser takes its session.
    served_at = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = "http://localhost:5000"
    browser = app.test_client()
    home = do_launch(platform, "admin", browser=browser).location
    app.config["PUBLIC_BASE_URL"] = served_at
    assert app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer,
                                              "--sub", "user-admin-1"]).exit_code == 0
    from tests.test_mail import place_workshop

    place_workshop(app, public=False, days=30, event="Summer Conference 2027")
    place_workshop(app, public=True, days=-3, event="Winter school")
    with app.app_context():
        mail.queue(kind="reminder", dedupe_key="t:axe", to_address="gone@example.org", person_id=None,
                   template="reminder", context={"name": "Pat", "what_is_left": ["1 more elective"]})
        db.session.execute(sa.update(OutboxMail).values(status="failed", last_error="Refused for good (SMTP 550)."))
        db.session.commit()
    page = browser_page
    page.context.add_cookies([{"name": "lti_tool_session", "value": browser.get_cookie("lti_tool_session").value,
                               "url": live_server}])
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    base = live_server + home + "admin/"
    for path in ("platforms", "keys", "launches", "gradebook", "emails", "emails?preview=1", "offerings", "reports",
                 "reports/certificates-by-month",
                 "reports/hours-by-module", "reports/by-local-association", "audit", ""):
        page.goto(base + path)
        assert page.get_by_role("navigation", name="Program console").count() == 1, path
        assert violations(page) == [], path

    # By keyboard: the copy button of the JWKS address, then the check of the platform.
    page.goto(base + "platforms")
    copy = page.locator('button[data-copy="url-jwks"]')
    assert copy.is_visible()
    copy.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    assert "jwks.json" in page.locator("#copy-status").inner_text()
    page.locator("form[action$='/platforms/1/check'] button").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#check-result")
    assert "no problems found" in page.locator("#check-heading").inner_text()
    # console.js (deferred) moves the focus to the result, maybe after the element appears: wait for it.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'check-result'")
    assert page.evaluate("document.activeElement.id") == "check-result"
    assert violations(page) == [], "platforms with a check result"

    # By keyboard: publish a workshop; the console says so.
    page.goto(base + "offerings")
    page.get_by_role("button", name="Publish Summer Conference 2027").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash.success")
    assert "is listed on the public offerings" in page.locator(".flash.success").inner_text()
    assert page.get_by_role("button", name="Unpublish Summer Conference 2027").count() == 1
    assert violations(page) == [], "offerings after publishing"
