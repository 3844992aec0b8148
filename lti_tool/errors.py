"""One error page for people, JSON for machine callers; every refused launch is logged with its platform."""
import logging

from flask import render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from lti_tool.extensions import db
from lti_tool.lti.errors import LaunchError
from lti_tool.text import clean_line

log = logging.getLogger("lti_tool.errors")

_TITLES = {
    400: "The request could not be used",
    401: "The tool could not sign you in",
    403: "You do not have access to this",
    404: "Not found",
    405: "This address does not take that request",
    409: "This conflicts with what the tool already has",
    413: "The request is too large",
    429: "Too many requests",
    500: "Something went wrong in the tool",
    502: "The other system did not give a usable answer",
}


_UNEXPECTED = ("The tool hit an unexpected error and saved nothing from this request. Try again; if it keeps "
               "happening, tell the program's administrators.")


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.endswith(".json")


def _render(status: int, message: str, reason: str | None = None, retry_url: str | None = None):
    from lti_tool.request_log import current_request_id

    # The request id ties what a member quotes to the log line of this request.
    request_id = current_request_id()
    if _wants_json():
        return {"error": reason or _TITLES.get(status, "error"), "message": message, "request_id": request_id}, status
    return render_template("errors/error.html", status=status, title=_TITLES.get(status, "Error"),
                           message=message, reason=reason, retry_url=retry_url, request_id=request_id), status


def _log_refusal(error: LaunchError) -> None:
    """Count the refusal in the launch log (its own small commit: the request's work was rolled back)."""
    from lti_tool.services import launch_log

    try:
        launch_log.record_refusal(reason=error.reason, message=error.message, status=error.status,
                                  path=request.path, issuer=error.platform,
                                  client_id=error.client_id or request.values.get("client_id"),
                                  address=request.remote_addr)
        db.session.commit()
    except Exception:  # the log must never turn a clear refusal into a 500
        db.session.rollback()
        log.exception("could not record a refused launch in the launch log")


def init_app(app) -> None:
    """Register the error handlers."""

    @app.errorhandler(LaunchError)
    def launch_refused(error: LaunchError):
        db.session.rollback()  # nothing half-written stays
        # One line per refusal: values a request brought (an issuer, a deployment id) cannot forge log lines.
        log.warning("refused %s %s: platform=%s reason=%s: %s", request.method, request.path,
                    clean_line(error.platform or "unknown")[:300], error.reason, clean_line(error.message))
        _log_refusal(error)
        return _render(error.status, error.message, error.reason, error.retry_url)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        db.session.rollback()
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            # An exception outside the view (the request's commit, in lti_tool.transaction): the same page as one
            # inside it; Flask has logged it already.
            return _render(500, _UNEXPECTED)
        if error.code and error.code >= 500:
            log.error("HTTP %s on %s", error.code, request.path)
        message = error.description or ""
        if error.code == 413:
            message = "The request is larger than this tool accepts."
        return _render(error.code or 500, message)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        log.exception("unexpected error on %s %s", request.method, request.path)
        return _render(500, _UNEXPECTED)
