"""The Bargaining Certificate LTI 1.3 tool: create_app() wires settings, extensions, blueprints and CLI."""
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from lti_tool.config import load_settings
from lti_tool.text import CleanRequest


def create_app(config: dict | None = None) -> Flask:
    """Build the app: defaults, then environment, then the given overrides."""
    app = Flask(__name__, instance_path=os.environ.get("LTI_TOOL_INSTANCE", None) or None,
                instance_relative_config=True)
    # Every form and query string arrives without control characters (PostgreSQL refuses NUL in text).
    app.request_class = CleanRequest
    app.config.from_mapping(load_settings(app.instance_path))
    if config:
        app.config.update(config)
    _check_settings(app)
    from lti_tool import request_log

    request_log.configure_logging(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)
    if app.config["TRUST_PROXY"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from lti_tool import cli, errors, headers, transaction
    from lti_tool.extensions import csrf, db, limiter, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    _tune_sqlite(app)

    from lti_tool.blueprints import admin, certificates, deep_linking, home, lti, member

    app.register_blueprint(home.bp)
    app.register_blueprint(lti.bp)
    app.register_blueprint(member.bp)
    app.register_blueprint(certificates.bp)
    app.register_blueprint(admin.bp)
    from lti_tool.blueprints import console

    app.register_blueprint(console.bp)
    from lti_tool.blueprints import grades

    app.register_blueprint(grades.bp)
    app.register_blueprint(deep_linking.bp)
    from lti_tool.blueprints import workshops

    app.register_blueprint(workshops.bp)
    from lti_tool.blueprints import law_register

    app.register_blueprint(law_register.bp)
    from lti_tool.blueprints import health, offerings

    app.register_blueprint(offerings.bp)
    app.register_blueprint(health.bp)
    from lti_tool.blueprints import instructor

    app.register_blueprint(instructor.bp)
    from lti_tool.services.rules import format_hours

    app.add_template_filter(format_hours, "hours")
    from lti_tool.wording import first_sentence

    app.add_template_filter(first_sentence, "first_sentence")

    def law_notes(text: str):
        """Show plain module text with its `{{law:<id>}}` references as linked Source notes."""
        from lti_tool.catalog import current_catalog
        from lti_tool.rendering import render_plain

        return render_plain(text, current_catalog().register)

    app.add_template_filter(law_notes, "law_notes")
    if app.config["DEMO_PLATFORM"]:
        from lti_tool.blueprints import demo, dev

        app.register_blueprint(demo.bp)
        app.register_blueprint(dev.bp)

    errors.init_app(app)
    headers.init_app(app)
    request_log.init_app(app)
    transaction.init_app(app)  # the one place a request commits (or rolls back)
    cli.init_app(app)
    if app.config.get("GRADES_BACKGROUND_SYNC") and not app.config.get("TESTING"):
        from lti_tool.grades_worker import start_background_sync

        @app.before_request
        def _start_grades_sync():
            # Started by the first request, so CLI commands (db upgrade, grades sync) never run a second sender.
            start_background_sync(app)
    # The content is validated when the app starts: a broken file stops it with the file and field named.
    from lti_tool.catalog import load_catalog

    app.extensions["catalog"] = load_catalog(app.config["CONTENT_DIR"])

    return app


def _check_settings(app: Flask) -> None:
    if app.config["ENV_MODE"] == "production" and not app.config["SECRET_KEY"]:
        raise RuntimeError("SECRET_KEY must be set in production (a long random string).")
    from lti_tool.lti.http import parse_networks

    try:
        parse_networks(app.config.get("OUTBOUND_ALLOWED_NETWORKS") or ())
    except ValueError as exc:
        raise RuntimeError(f"LTI_OUTBOUND_ALLOWED_NETWORKS: {exc} (give networks like 10.20.0.0/16, "
                           "separated by commas).") from exc


def _tune_sqlite(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    import sqlalchemy as sa

    from lti_tool.extensions import db

    with app.app_context():
        @sa.event.listens_for(db.engine, "connect")
        def _pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode; no fsync per commit
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()
