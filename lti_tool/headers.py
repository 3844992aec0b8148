"""Security headers on every response: who may frame the tool, what scripts run, what is never cached."""
import logging
import secrets

from flask import Flask, g, request

from lti_tool.lti import platform_origins

log = logging.getLogger(__name__)

#: Pages an LMS that is not registered yet must be able to frame: Dynamic Registration runs inside the LMS's window.
REGISTRATION_ENDPOINTS = {"lti.register"}


def csp_nonce() -> str:
    """Return this response's script nonce (templates put it on their inline scripts)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def _frame_ancestors() -> str:
    if request.endpoint in REGISTRATION_ENDPOINTS:
        return "*"
    try:
        origins = platform_origins.registered().frame_origins
    except Exception:  # noqa: BLE001 - the database is down: the error page still goes out, framed by no LMS
        log.exception("could not read the registered platforms for frame-ancestors")
        origins = ()
    return " ".join(("'self'",) + origins)


def content_security_policy() -> str:
    """The policy: own resources only, scripts from the tool or with this response's nonce, framed by platforms."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{csp_nonce()}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        f"frame-ancestors {_frame_ancestors()}",
    ))


def init_app(app: Flask) -> None:
    """Add the headers to every response and `csp_nonce()` to the templates."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # The origin only, and only over https: LMS pages are not told which page of the tool linked them.
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Content-Security-Policy", content_security_policy())
        # Everything but the public assets carries personal data or a one-time step: never stored by a browser
        # or proxy. The static files and the tool's published keys set their own caching.
        if request.endpoint != "static" and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return response
