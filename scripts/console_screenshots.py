"""Take the README's screenshots of the program console (docs/screenshots/console-*.png).

Builds a throwaway tool on SQLite with the LMS emulator of the tests, some members, hours, a certificate, refused
launches and a refused score, serves it on loopback and photographs each console page in Debian's Chromium.
Run from the repository: .venv/bin/python scripts/console_screenshots.py
"""
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from lti_tool import create_app, grades_worker  # noqa: E402 needs the repository root on sys.path
from lti_tool.extensions import db  # noqa: E402
from lti_tool.lti import keys  # noqa: E402
from lti_tool.models import Registration  # noqa: E402
from lti_tool.services import ledger, passback, people, platforms  # noqa: E402
from tests.conftest import REGISTRATION, register  # noqa: E402
from tests.platform import MEMBERSHIP, PlatformEmulator, User, login_params  # noqa: E402

PAGES = [("platforms", "platforms"), ("keys", "keys"), ("launches", "launch-log"), ("gradebook", "gradebook-queue"),
         ("reports", "reports"), ("reports/certificates-by-month", "report-certificates-by-month"),
         ("reports/hours-by-module", "report-hours-by-module"), ("audit", "audit-log"), ("emails", "emails"),
         ("offerings", "offerings")]


def launch(app, emulator, user):
    browser = app.test_client()
    response = browser.get("/lti/login", query_string=login_params(emulator, user))
    form = emulator.authorize(response.location)
    form.pop("action")
    return browser, browser.post("/lti/launch", data=form).location


def main() -> None:
    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'shots.sqlite3'}",
                      "PUBLIC_BASE_URL": "http://localhost:5000", "SECRET_KEY": "screenshots", "DEMO_PLATFORM": False,
                      "GRADES_BACKGROUND_SYNC": False, "RATELIMIT_ENABLED": False})
    lms = PlatformEmulator()
    lms.tool_jwks = lambda: app.test_client().get("/.well-known/jwks.json").get_json()
    with app.app_context():
        db.create_all()
        keys.ensure_active_key()
        registration = dict(lms.registration, name="Springfield Moodle")
        platforms.add_platform(registration)
        db.session.commit()
    names = [("Maria Member", "Springfield Education Association", 24), ("Jo Rivera", "Worcester EA", 21),
             ("Lee Chen", "Springfield Education Association", 9), ("Sam Patel", "Lowell Federation", 0)]
    for n, (name, association, _) in enumerate(names):
        lms.users[f"m{n}"] = User(f"user-m{n}", name, f"m{n}@example.org", [MEMBERSHIP + "Learner"])
        browser, home = launch(app, lms, f"m{n}")
        register(browser, home, **{**REGISTRATION, "name": name, "local_association": association,
                                   "email": f"m{n}@example.org"})
    admin, home = launch(app, lms, "admin")
    plan = [("bargaining-foundations", 6), ("democratized-bargaining", 6), ("contract-costing", 3),
            ("power-mapping", 3), ("impact-bargaining", 3), ("esp-bargaining", 3)]
    with app.app_context():
        staff = people.account_by_lms_identity("1", "user-admin-1")
        assert staff.person_id is not None
        people.grant_program_admin(staff.person_id, how="screenshots")
        for name, _, hours in names:
            person_id = db.session.scalar(sa.select(Registration.person_id).where(Registration.name == name))
            left = hours
            for n, (slug, module_hours) in enumerate(plan):
                if left <= 0:
                    break
                ledger.adjust(person_id=person_id, module_slug=slug, hours=min(module_hours, left),
                              reason="Winter Conference sign-in sheet", actor_account_id=staff.id,
                              request_id=f"{person_id}-{n}")
                left -= module_hours
            from lti_tool.services import certificates

            certificates.evaluate(person_id)
        url = lms.add_line_item(label="Power mapping workshop")
        lms.score_failures = [422]
        for user in ("user-m0", "user-m1"):
            passback.queue_score(platform_id=1, course_id=None, user_id=user, score_given=3, score_maximum=3,
                                 line_item_url=url, label="Power mapping workshop")
        db.session.commit()
        grades_worker.send_due(concurrency=1)
    stranger = app.test_client()
    stranger.get("/lti/login", query_string=login_params(lms, "m0", iss="https://canvas.old-district.example"))
    stranger.post("/lti/launch", data={"id_token": "not-a-token"})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = chromium.new_context(viewport={"width": 1100, "height": 900}).new_page()
            page.context.add_cookies([{"name": "lti_tool_session", "url": base,
                                       "value": admin.get_cookie("lti_tool_session").value}])
            for path, name in PAGES:
                page.goto(base + home + "admin/" + path)
                page.screenshot(path=str(out / f"console-{name}.png"), full_page=True)
                print(f"docs/screenshots/console-{name}.png")
            chromium.close()
    finally:
        server.shutdown()
        lms.stop()


if __name__ == "__main__":
    main()
