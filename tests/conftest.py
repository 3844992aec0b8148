"""Fixtures: a fresh app and database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL), the LMS
emulator, and a helper that drives a whole launch through the real endpoints."""
import contextlib
import html
import os
import re
import shutil
import socket
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lti_tool import create_app
from lti_tool.config import normalise_database_url
from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models.lti import FIRST_REGISTRATION_VERSION
from lti_tool.services import platforms
from tests.platform import PlatformEmulator, login_params

# CPython keeps the AST converter's recursion depth per interpreter, not per thread (gh-106905): when a server
# thread formats a traceback (3.11 parses the failing line with `ast.parse` to place its ^^^ carets) while the main
# thread builds an app (Werkzeug compiles each URL rule from an AST), compile() can fail with "SystemError: AST
# constructor recursion depth mismatch". The carets are cosmetic: tests format tracebacks without them.
if hasattr(traceback, "_extract_caret_anchors_from_line_segment"):
    traceback._extract_caret_anchors_from_line_segment = lambda segment: None



def _postgres_url() -> str | None:
    """Return the PostgreSQL database of this test process, or None on SQLite.

    The suite runs in parallel (pytest-xdist, `-n auto` in pyproject.toml): each worker gets its own database
    beside TEST_DATABASE_URL's (test_gw0, test_gw1, ...), made here when missing, so workers never share a schema.
    """
    if not os.environ.get("TEST_DATABASE_URL"):
        return None
    url = normalise_database_url(os.environ["TEST_DATABASE_URL"])
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _postgres_url()


_KEY_POOL: list = []


def _key_pool() -> list:
    """Real 2048-bit RSA keys, made once per test process: generating them would dominate test time. The first is
    the key of the empty database every test starts from; tests get the others."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not _KEY_POOL:
        _KEY_POOL.extend(rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(8))
    return _KEY_POOL


@pytest.fixture(autouse=True)
def pooled_rsa_keys(monkeypatch):
    """Hand out real RSA keys from the pool. Consecutive keys always differ, and none is the starting database's
    key, so rotation and wrong-key tests still get distinct keys."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    pool = _key_pool()
    position = iter(range(10**9))

    def pooled(public_exponent=65537, key_size=2048, backend=None):
        return pool[1 + next(position) % (len(pool) - 1)]

    monkeypatch.setattr(rsa, "generate_private_key", pooled)


def _ensure_first_key() -> None:
    """Give the empty database its tool key: the pool's first, which no test is handed."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    pool = _key_pool()
    real = rsa.generate_private_key
    rsa.generate_private_key = lambda *args, **kwargs: pool[0]
    try:
        keys.ensure_active_key()
    finally:
        rsa.generate_private_key = real


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Forbid real network calls: tests talk only to the emulators they start on loopback."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and "/" not in host:
            raise RuntimeError(f"test tried to reach {address}: only loopback is allowed")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _database_url(tmp_path) -> str:
    return POSTGRES_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}"


def _test_app(database_url: str, *, rate_limits: bool = False):
    return create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "PUBLIC_BASE_URL": "http://localhost:5000",
        "SECRET_KEY": "test-secret",
        "DEMO_PLATFORM": True,
        "LTI_KEY_SET_REFETCH_SECONDS": 0,
        "GRADES_BACKGROUND_SYNC": False,
        # Every test comes from 127.0.0.1: rate limits are off unless a test is marked `rate_limits`.
        "RATELIMIT_ENABLED": rate_limits,
    })


@pytest.fixture(scope="session")
def empty_sqlite_database(tmp_path_factory) -> Path:
    """An SQLite database with the schema and the tool's key, made once per test process; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "empty.sqlite3"
    app = _test_app(f"sqlite:///{path}")
    with app.app_context():
        db.create_all()
        _ensure_first_key()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return path


@pytest.fixture
def app(tmp_path, request):
    """Return a fresh app on an empty database (rate limits on only for tests marked `rate_limits`)."""
    url = _database_url(tmp_path)
    if POSTGRES_URL is None:
        shutil.copyfile(request.getfixturevalue("empty_sqlite_database"), tmp_path / "test.sqlite3")
    app = _test_app(url, rate_limits=request.node.get_closest_marker("rate_limits") is not None)
    app.instance_path = str(tmp_path / "instance")
    with app.app_context():
        if app.config["RATELIMIT_ENABLED"]:
            from lti_tool.extensions import limiter

            limiter.reset()  # counts kept in memory by an earlier test must not carry over
        if POSTGRES_URL is not None:
            _empty_postgres_schema()
            _ensure_first_key()
            db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


#: The PostgreSQL schema create_all made in this process (its columns), to tell whether a test changed it.
_created_schema: list = []


def _schema_fingerprint(conn) -> list:
    """The public schema's columns, indexes (constraints included) and triggers."""
    return conn.execute(sa.text(
        "SELECT 'column', table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' "
        "UNION ALL SELECT 'index', tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "UNION ALL SELECT 'trigger', tgrelid::regclass::text, tgname FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1, 2, 3")).all()


def _empty_postgres_schema():
    """Leave the tool's tables empty: delete every row when the schema is still the one create_all made (fast),
    else build it again (after a test that ran migrations or dropped the schema)."""
    try:
        with db.engine.begin() as conn:
            if _created_schema and _schema_fingerprint(conn) == _created_schema[0]:
                # Replica mode skips triggers (the ledger's append-only guard, foreign keys) for this clean-up only;
                # it needs a superuser, as TEST_DATABASE_URL's user is in CI (otherwise the schema is rebuilt).
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                for table in db.metadata.sorted_tables:
                    conn.execute(table.delete())
                for sequence in conn.execute(sa.text(
                        "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars():
                    conn.execute(sa.text(f'ALTER SEQUENCE "{sequence}" RESTART'))
                conn.execute(sa.text(FIRST_REGISTRATION_VERSION))
                return
    except sa.exc.DBAPIError:
        pass
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.create_all()
    with db.engine.connect() as conn:
        _created_schema[:] = [_schema_fingerprint(conn)]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_platform(app):
    """Start an LMS emulator and register it with the tool; return the emulator."""
    started = []

    def factory(register: bool = True, emulator_class=PlatformEmulator, **kwargs) -> PlatformEmulator:
        emulator = emulator_class(**kwargs)
        # The LMS checks the tool's signed token requests against the tool's real JWKS endpoint.
        emulator.tool_jwks = lambda: app.test_client().get("/.well-known/jwks.json").get_json()
        started.append(emulator)
        if register:
            with app.app_context():
                platforms.add_platform(emulator.registration)
                db.session.commit()
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def platform(make_platform):
    """A registered Moodle-like platform."""
    return make_platform()


@pytest.fixture
def do_launch(client):
    """Drive login (GET or POST), the platform's authorization, and the launch POST; return the response."""

    def run(emulator: PlatformEmulator, user: str = "member", method: str = "GET", browser=None, **params):
        browser = browser or client
        query = login_params(emulator, user, **params)
        if method == "POST":
            response = browser.post("/lti/login", data=query)
        else:
            response = browser.get("/lti/login", query_string=query)
        if "lti_storage_target" in query:
            # The tool answers with a page that stores state and nonce with the platform, then goes on.
            assert response.status_code == 200
            location = html.unescape(re.search(r'id="continue" class="button" href="([^"]+)"',
                                               response.get_data(as_text=True)).group(1))
        else:
            assert response.status_code == 302, response.get_data(as_text=True)
            location = response.location
        form = emulator.authorize(location)
        action = form.pop("action")
        assert action == "http://localhost:5000/lti/launch"
        return browser.post("/lti/launch", data=form)

    return run


@pytest.fixture
def live_server(app):
    """Serve the app over real HTTP on loopback (for the browser); return its base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = base_url
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield base_url
    server.shutdown()
    server.server_close()


CHROMIUM = "/usr/bin/chromium"


MISSING_CHROMIUM = (
    "The browser tests need Debian's Chromium at /usr/bin/chromium, and it is not installed.\n"
    "Install it with:  sudo apt-get install chromium fonts-dejavu-core\n"
    "(or run without the browser tests, knowing they did not run: SKIP_BROWSER_TESTS=1 .venv/bin/python -m pytest)")


def pytest_collection_modifyitems(config, items):
    """Stop at once, with the install line, rather than pass quietly when the browser tests cannot run."""
    if os.path.exists(CHROMIUM) or os.environ.get("SKIP_BROWSER_TESTS") == "1":
        return
    if any("playwright_driver" in getattr(item, "fixturenames", ()) for item in items):
        pytest.exit(MISSING_CHROMIUM, returncode=4)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def playwright_driver():
    """Playwright, started once per test process (its driver takes a second to start); skipped only when
    SKIP_BROWSER_TESTS=1 says so and Chromium is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed at /usr/bin/chromium and SKIP_BROWSER_TESTS=1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def shared_chromium(playwright_driver):
    """Debian's Chromium, launched once per test process; every test gets its own context (cookies, storage)."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def browser_page(shared_chromium):
    """A page in real headless Chromium, in a fresh browser context of its own."""
    context = shared_chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(30000)  # generous: a loaded CI machine is slow, a broken page still fails
    yield page
    context.close()


REGISTRATION = {"name": "Maria Member", "email": "maria@example.org",
                "local_association": "Springfield Education Association", "job_category": "teacher",
                "sector": "prek12", "bargaining_experience": "some"}


def register(browser, home: str, **overrides) -> None:
    """Fill in the program's registration form for the member of this launch."""
    page = browser.get(home + "registration").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = browser.post(home + "registration", data={"csrf_token": token, **REGISTRATION, **overrides})
    assert response.status_code == 303, response.get_data(as_text=True)


@pytest.fixture
def member_launch(client, do_launch):
    """Launch as a registered member; return the landing URL (/l/<launch id>/)."""

    def run(emulator, user="member", browser=None, **registration):
        browser = browser or client
        response = do_launch(emulator, user, browser=browser)
        assert response.status_code == 303
        home = response.location
        if browser.get(home).status_code == 302:
            register(browser, home, **registration)
        return home

    return run


@pytest.fixture
def make_account(app):
    """Create an account (and its person) on a platform directly; return (account id, person id)."""
    from lti_tool.models import Account, Platform
    from lti_tool.services.people import ensure_person

    counter = iter(range(1, 10**6))

    def factory(platform_issuer: str = "https://lms.example.edu", name: str = "Pat Member", email=None):
        with app.app_context():
            platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == platform_issuer)).first()
            if platform is None:
                platform = platforms.add_platform({
                    "name": platform_issuer, "issuer": platform_issuer, "client_id": "c",
                    "auth_login_url": platform_issuer + "/auth", "auth_token_url": platform_issuer + "/token",
                    "key_set_url": platform_issuer + "/jwks"})
            account = Account(lms_id=platform.lms_id, sub=f"sub-{next(counter)}", name=name, email=email)
            db.session.add(account)
            db.session.flush()
            person_id = ensure_person(account.id)
            db.session.commit()
            return account.id, person_id

    return factory


@contextlib.contextmanager
def recorded_sql(app):
    """Record the SQL statements the app runs inside the block (a list of statement texts)."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
