"""More than one machine: two app servers (gunicorn, deploy/gunicorn.conf.py) and two workers (`worker run`) as
real processes on one PostgreSQL and the Redis at 127.0.0.1:6379. The login on one server and the launch on the
other; a grade saved on one server reaches the LMS once through the racing workers, and a registration's email
reaches the SMTP server once; rate limits count across both servers. PostgreSQL only (SQLite is one machine's
database); part of the PostgreSQL test pass."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lti_tool.extensions import db
from lti_tool.models import Account, OutboxScore
from tests.conftest import POSTGRES_URL, REGISTRATION
from tests.platform import login_params
from tests.test_workshops import _form_fields, enrol_maria, make_workshop, place

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="several servers share PostgreSQL, not SQLite "
                                                         "(set TEST_DATABASE_URL)")

ROOT = Path(__file__).resolve().parent.parent
REDIS = ("127.0.0.1", 6379)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def smtp():
    from tests.smtp import start_smtp_server

    server, controller = start_smtp_server()
    yield server
    controller.stop()


@pytest.fixture
def cluster(app, runner, tmp_path, smtp):
    """Build the schema by migrations, then start two app servers and two workers; yield their base URLs."""
    if not _redis_up():
        pytest.fail("This test needs Redis at 127.0.0.1:6379 (apt-get install redis-server; .ci/run starts it).")
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["keys", "ensure"]).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LTI_TOOL_ENV": "development", "SECRET_KEY": "test-secret",
           "DATABASE_URL": make_url(POSTGRES_URL).render_as_string(hide_password=False),
           "REDIS_URL": "redis://127.0.0.1:6379/0", "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
           "PUBLIC_BASE_URL": "http://localhost:5000", "LTI_DEMO_PLATFORM": "0", "GRADES_BACKGROUND_SYNC": "0",
           "LTI_KEY_SET_REFETCH_SECONDS": "0", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4",
           "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
           "MAIL_FROM": "Bargaining Certificate <certificate@union.example>"}
    env.pop("TEST_DATABASE_URL", None)
    processes, servers = [], []
    logs = []
    try:
        for _ in range(2):
            port = _free_port()
            log = open(tmp_path / f"server-{port}.log", "wb")  # noqa: SIM115 - closed in finally, after the process
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
                cwd=ROOT, env={**env, "PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT))
            servers.append(f"http://127.0.0.1:{port}")
        for number in range(2):
            log = open(tmp_path / f"worker-{number}.log", "wb")  # noqa: SIM115 - closed in finally
            logs.append(log)
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "lti_tool", "worker", "run", "--interval", "0.2"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 30
        for server in servers:
            while True:
                try:
                    if requests.get(server + "/readyz", timeout=5).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "the app servers did not start: " + "".join(
                    (tmp_path / p).read_text(errors="replace")[-2000:] for p in os.listdir(tmp_path))
                time.sleep(0.2)
        yield servers
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _launch(browser: requests.Session, emulator, user: str, login_on: str, launch_on: str) -> str:
    """Log in on one server and post the platform's id_token to the other; return the landing URL there."""
    login = browser.get(login_on + "/lti/login", params=login_params(emulator, user), allow_redirects=False,
                        timeout=10)
    assert login.status_code == 302, login.text
    form = emulator.authorize(login.headers["Location"])
    assert form.pop("action") == "http://localhost:5000/lti/launch"
    launched = browser.post(launch_on + "/lti/launch", data=form, allow_redirects=False, timeout=10)
    assert launched.status_code == 303, launched.text
    return urljoin(launch_on + "/", launched.headers["Location"])


def _follow(browser: requests.Session, url: str, base: str) -> str:
    response = browser.get(url, allow_redirects=False, timeout=10)
    while response.status_code in (302, 303):
        url = urljoin(base + "/", response.headers["Location"])
        response = browser.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 200, response.text
    return url


def test_two_servers_and_two_workers_share_logins_grades_and_rate_limits(app, make_platform, cluster, smtp):
    first, second = cluster
    emulator = make_platform()
    public_id = make_workshop(app, emulator)
    line_item = place(emulator, public_id, lineitem=True)
    enrol_maria(emulator)

    # The instructor logs in through the first server; the launch lands on the second (shared login state).
    instructor = requests.Session()
    landing = _launch(instructor, emulator, "instructor", login_on=first, launch_on=second)
    page_url = _follow(instructor, landing, second)
    assert f"/workshops/{public_id}" in page_url
    # And the other way round; the session cookie of one server is good on the other.
    landing = _launch(instructor, emulator, "instructor", login_on=second, launch_on=first)
    page_url = _follow(instructor, landing, first).replace(first, second)
    html = instructor.get(page_url, timeout=10).text
    assert "Maria Member" in html

    # The grade is saved on the second server; the two workers race for it; the LMS gets it once.
    with app.app_context():
        maria = db.session.scalars(sa.select(Account.id).where(Account.sub == "user-member-1")).one()
    fields = _form_fields(html)
    fields.update({f"present-{maria}": "1", f"hours-{maria}": "6", f"result-{maria}": "complete", "action": "save"})
    saved = instructor.post(page_url, data=fields, allow_redirects=False, timeout=10)
    assert saved.status_code == 303, saved.text
    deadline = time.monotonic() + 15
    while not [s for s in emulator.scores if s["lineItem"] == line_item]:
        assert time.monotonic() < deadline, "no worker sent the score"
        time.sleep(0.1)
    time.sleep(1.0)  # five more rounds of both workers: nothing is sent again
    sent = [s for s in emulator.scores if s["lineItem"] == line_item]
    assert len(sent) == 1 and sent[0]["userId"] == "user-member-1" and sent[0]["scoreGiven"] == 6
    with app.app_context():
        assert db.session.scalars(sa.select(OutboxScore.status)).all() == ["sent"]

    # A member registers through the servers; the workers race for the welcome email; it arrives once.
    member = requests.Session()
    home = _launch(member, emulator, "member", login_on=second, launch_on=first)
    form_url = _follow(member, home, first)
    assert "registration" in form_url
    token = re.search(r'name="csrf_token" value="([^"]+)"', member.get(form_url, timeout=10).text).group(1)
    registered = member.post(form_url.replace(first, second), data={"csrf_token": token, **REGISTRATION},
                             allow_redirects=False, timeout=10)
    assert registered.status_code == 303, registered.text
    deadline = time.monotonic() + 15
    while not smtp.messages:
        assert time.monotonic() < deadline, "no worker sent the registration email"
        time.sleep(0.1)
    time.sleep(0.6)
    assert [recipients for recipients, _ in smtp.messages] == [[REGISTRATION["email"]]]

    # Rate limits count across both servers: certificate look-ups, 30 a minute per address.
    answers = [requests.get((first, second)[i % 2] + "/verify/BC-2026-NOPE22", timeout=10).status_code
               for i in range(31)]
    assert answers[:30] == [404] * 30 and answers[30] == 429  # an unknown number, then refused
    assert requests.get(first + "/verify/BC-2026-NOPE22", timeout=10).status_code == 429
