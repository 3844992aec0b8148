"""Production: health checks, structured request logs with a request id on error pages, and the deploy files."""
import json
import logging
import re

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db


def _empty_database(app):
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                db.metadata.drop_all(conn)
        db.engine.dispose()


def test_healthz_answers_without_the_database(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_checks_the_database_migrations_and_redis_and_says_nothing_secret(app, client, runner):
    # The test database is built by create_all, with no migration record: not ready until `db upgrade`.
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"] == {"database": "ok", "migrations": "not at head: run db upgrade",
                                           "redis": "not configured"}
    _empty_database(app)
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok",
                                                              "redis": "not configured"}}
    app.config["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    assert client.get("/readyz").get_json()["checks"]["redis"] == "ok"
    app.config["REDIS_URL"] = "redis://:s3cret-password@127.0.0.1:1/0"  # nothing listens there
    down = client.get("/readyz")
    assert down.status_code == 503 and down.get_json()["checks"]["redis"] == "unreachable"
    assert "s3cret" not in down.get_data(as_text=True) and "127.0.0.1" not in down.get_data(as_text=True)
    app.config["REDIS_URL"] = None
    with app.app_context():  # an older schema than the code
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = '0010_demo_lms'"))
        db.session.commit()
    behind = client.get("/readyz")
    assert behind.status_code == 503 and behind.get_json()["checks"]["migrations"] == "not at head: run db upgrade"


@pytest.fixture
def json_logs(app):
    """Switch the app's logs to JSON lines (production's format); return a reader of the lines written."""
    import io

    from lti_tool import request_log

    stream = io.StringIO()
    app.config["LOG_FORMAT"] = "json"
    request_log.configure_logging(app, stream=stream)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield read
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_lti_tool", False):
            root.removeHandler(handler)


def test_one_json_line_per_request_with_ids_only(app, client, platform, do_launch, json_logs):
    launch = do_launch(platform, "member")
    home = launch.location
    client.get(home + "registration")
    lines = [line for line in json_logs() if line["logger"] == "lti_tool.access"]
    by_route = {line["route"]: line for line in lines}
    assert set(by_route) >= {"/lti/login", "/lti/launch", "/l/<launch_id>/registration"}
    launched = by_route["/lti/launch"]
    assert launched["status"] == 303 and launched["method"] == "POST" and launched["role"] == "member"
    assert isinstance(launched["platform_id"], int) and launched["duration_ms"] >= 0
    assert re.fullmatch(r"[0-9a-f]{32}", launched["request_id"])
    page = by_route["/l/<launch_id>/registration"]
    assert page["role"] == "member" and page["platform_id"] == launched["platform_id"] and page["status"] == 200
    assert len({line["request_id"] for line in lines}) == len(lines)  # one line, one id, per request
    written = json.dumps(lines)
    for secret in ("id_token", "eyJ", "maria@example.org", "Maria Member", "login_hint", "state=", "nonce"):
        assert secret not in written


def test_error_pages_show_the_request_id_the_log_has(app, client, json_logs):
    response = client.get("/no-such-page", headers={"X-Request-ID": "proxy-abc-12345"})
    assert response.status_code == 404
    assert "quote this reference: <code>proxy-abc-12345</code>" in response.get_data(as_text=True)
    assert response.headers["X-Request-ID"] == "proxy-abc-12345"
    [line] = [line for line in json_logs() if line["logger"] == "lti_tool.access"]
    assert (line["request_id"], line["status"], line["route"]) == ("proxy-abc-12345", 404, "(no route)")
    # A header that is not an id (a log-injection attempt) is replaced by the tool's own.
    odd = client.get("/no-such-page", headers={"X-Request-ID": 'x" {"forged": 1}'})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["X-Request-ID"])


def test_unexpected_errors_log_json_with_the_request_id(app, client, json_logs):
    @app.get("/boom-for-test")
    def boom():
        raise RuntimeError("kaboom")

    response = client.get("/boom-for-test")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    assert request_id in response.get_data(as_text=True)
    lines = json_logs()
    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["request_id"] == request_id and "kaboom" in error.get("exc_info", "")


def test_gunicorn_config_reads_workers_and_threads_from_the_environment(monkeypatch):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    monkeypatch.setenv("GUNICORN_THREADS", "3")
    monkeypatch.setenv("PORT", "8123")
    spec = importlib.util.spec_from_file_location("gunicorn_conf", path)
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    assert (config.workers, config.threads, config.bind, config.worker_class) == (5, 3, "127.0.0.1:8123", "gthread")
    assert config.wsgi_app == "lti_tool:create_app()"
    assert config.accesslog is None  # the app writes the JSON access line itself, with platform and role
    assert config.logconfig_dict["formatters"]["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"
