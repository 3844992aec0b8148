"""Structured logs: a request id for every request (on its error page too, so a member can quote it) and one
JSON line per request with the route, status, duration, platform and role.

The line carries ids only: the route's pattern (never the path or query string, which can hold login hints and
launch ids), the platform's number and the launch's role; never tokens, names or emails.
"""
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, request

access_log = logging.getLogger("lti_tool.access")

#: A request id a reverse proxy set (X-Request-ID) is kept when it looks like one; anything else is replaced.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str | None:
    """Return this request's id (None outside a request)."""
    from flask import has_request_context

    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    """Add the request id to every log record made while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def configure_logging(app: Flask, stream=None) -> None:
    """Send logs to stderr (or `stream`): JSON lines when LOG_FORMAT is json (production's default), plain text
    otherwise."""
    root = logging.getLogger()
    level = app.config["LOG_LEVEL"]
    if app.config.get("LOG_FORMAT") == "json":
        from pythonjsonlogger.json import JsonFormatter

        for handler in list(root.handlers):
            if getattr(handler, "_lti_tool", False):  # a second create_app() in one process replaces ours
                root.removeHandler(handler)
        handler = logging.StreamHandler(stream or sys.stderr)
        handler._lti_tool = True  # type: ignore[attr-defined]
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level",
                                                          "name": "logger"}))
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        root.setLevel(level)
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """Give every request an id and log one line for it when it ends."""

    @app.before_request
    def _start():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id")
        if request_id is None:  # before_request did not run (a very early error)
            return response
        response.headers["X-Request-ID"] = request_id
        launch = g.get("launch")
        access_log.info("request", extra={
            "request_id": request_id, "method": request.method,
            "route": request.url_rule.rule if request.url_rule is not None else "(no route)",
            "endpoint": request.endpoint, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000, 1),
            "platform_id": getattr(launch, "platform_id", None), "role": getattr(launch, "role", None)})
        return response
