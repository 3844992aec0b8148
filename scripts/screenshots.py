"""Take the README's screenshots: the instructor's course home, a member's catalog and the deep-linking picker.

Runs the tool with its demo LMS on a temporary SQLite database (nothing of `instance/` is touched), drives it in
headless Chromium (Debian's, at /usr/bin/chromium) and writes 1000-pixel-wide PNGs to docs/screenshots/:

    .venv/bin/python scripts/screenshots.py
"""
import argparse
import logging
import sys
import tempfile
import threading
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
WIDTH = 1000


def _serve(database: Path):
    """Start the tool on a free loopback port with the demo LMS; return (base URL, server)."""
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from lti_tool import create_app
    from lti_tool.extensions import db
    from lti_tool.lti import keys

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "SECRET_KEY": "screenshots",
                      "DEMO_PLATFORM": True, "GRADES_BACKGROUND_SYNC": False, "RATELIMIT_ENABLED": False})
    app.instance_path = str(database.parent)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        keys.ensure_active_key()
        db.session.commit()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return base, server


def _shrink(path: Path) -> None:
    """Store the PNG with a 256-colour palette: the pages are flat colours and text, a fraction of the bytes."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with reportlab; without it the PNG stays as Chromium wrote it
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _shot(page, out: Path, name: str, *, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    _shrink(path)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


def _register(page, name: str) -> None:
    page.wait_for_url("**/registration?first=1")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Local association").fill("Worcester Education Association")
    page.get_by_label("Teacher").check()
    page.get_by_label("PreK-12").check()
    page.get_by_label("None yet").check()
    page.get_by_role("button", name="Register").click()


def take(out: Path) -> None:
    """Play a short course in the demo LMS and photograph the three pages."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        base, server = _serve(Path(tmp) / "screenshots.sqlite3")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": WIDTH, "height": 900}).new_page()
        try:
            # The picker, as an instructor fills it in: a self-paced module and a graded workshop.
            page.goto(base + "/demo/")
            page.get_by_role("button", name="Deep link as instructor").click()
            page.wait_for_url("**/deep-link")
            page.locator("#pick-foundations summary").click()
            page.locator("#module-bargaining-foundations").get_by_label("Self-paced module").check()
            page.locator("#pick-democratized summary").click()
            item = page.locator("#module-democratized-bargaining")
            item.get_by_label("Graded workshop").check()
            item.get_by_label("Date of the workshop").fill((date.today() + timedelta(days=40)).isoformat())
            item.get_by_label("Venue").fill("Union hall, Worcester")
            item.get_by_label("Conference or training").fill("Union Skills Winter Conference")
            page.locator(".picker-filter").evaluate("e => e.scrollIntoView()")
            page.evaluate("window.scrollBy(0, -16)")
            _shot(page, out, "picker")
            page.get_by_role("button", name="Add to the course").click()
            page.wait_for_url("**/demo/deep-link-return")

            # The workshop graded for two members, their scores sent to the demo gradebook.
            page.goto(base + "/demo/")
            page.locator("li.placed-link", has_text="workshop").get_by_label("Open as").select_option(
                label="Sam Okafor (instructor)")
            page.locator("li.placed-link", has_text="workshop").get_by_role("button").click()
            page.wait_for_url("**/workshops/*")
            for name, hours in (("Luis Ortega", "6"), ("Mei Chen", "4.5")):
                page.get_by_label(f"{name} was present").check()
                page.get_by_label(f"Hours attended by {name}").fill(hours)
                page.get_by_label(f"Result for {name}").select_option("complete")
            page.get_by_role("button", name="Save grades").click()
            page.wait_for_load_state()
            page.goto(base + "/demo/gradebook")
            page.get_by_role("button", name="Send queued grades now").click()
            page.wait_for_url("**/demo/gradebook")

            # The instructor's course home.
            page.goto(base + "/demo/")
            page.get_by_role("button", name="Launch as instructor").click()
            page.wait_for_url("**/l/*/course")
            page.set_viewport_size({"width": WIDTH, "height": 1250})
            _shot(page, out, "course-home")

            # A member's catalog: hours so far, the next module, the workshop coming up.
            page.set_viewport_size({"width": WIDTH, "height": 900})
            page.goto(base + "/demo/")
            page.get_by_label("Or open the course link as").select_option(label="Luis Ortega (member)")
            page.get_by_role("button", name="Open the course link").click()
            _register(page, "Luis Ortega")
            page.wait_for_url("**/l/*/")
            _shot(page, out, "catalog")
        finally:
            browser.close()
            server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="where to write the PNGs")
    take(parser.parse_args().out)


if __name__ == "__main__":
    main()
