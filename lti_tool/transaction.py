"""The one transaction boundary: a request commits once, when it succeeds; a CLI command commits once, at its end.

Why a hook and not a decorator on write views: a view that forgets a decorator would lose its writes silently,
exactly what this module exists to prevent. Every request gets the boundary, including views added later:

- a response below 400 (a page, a redirect, the 302 to a platform) commits whatever the request wrote, before the
  response leaves, so the next request (the browser follows the redirect at once) sees it; a commit that fails
  becomes the 500 page;
- a response of 400 or more (a refused form, a 403, an error page) and any exception roll everything back.

Views, blueprints and services never call `db.session.commit()` or `rollback()` (services flush). A view that
catches a refusal from a service and still answers with a success (a redirect back with a flashed message) calls
`abandon()` so that what the service half-wrote is thrown away; a view that re-renders a form with its mistakes
may call it first so that the page shows what is stored, not the half-written attempt.

The grade sender (`lti_tool.grades_worker`) runs outside requests and keeps its own, documented transactions.
"""
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.wrappers import Response

from lti_tool.extensions import db

#: The first status that rolls a request back.
ERROR_STATUS = 400


def init_app(app: Flask) -> None:
    """Commit every successful request; roll back every other one."""

    @app.after_request
    def _end_transaction(response: Response) -> Response:
        if response.status_code < ERROR_STATUS:
            db.session.commit()
        else:
            db.session.rollback()
        return response


def abandon() -> None:
    """Throw away what this request has written so far (a service refused part-way); later writes still count."""
    db.session.rollback()


@contextmanager
def command_transaction() -> Iterator[None]:
    """One CLI command's transaction: commit when the block ends normally, roll back when it raises.

    Used as `with command_transaction(): ...` around the command's work, before it reports, so a command says
    "done" only after its writes are stored.
    """
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
