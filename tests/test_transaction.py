"""The one transaction boundary: a successful request commits without the view asking; an error, an exception or
an abandoned attempt keeps nothing; a CLI command commits once, or not at all when it fails."""
import pathlib
import re

import click
import pytest
import sqlalchemy as sa
from flask import redirect

from lti_tool import transaction
from lti_tool.extensions import db
from lti_tool.models import AuditEvent
from lti_tool.services import audit


def _write(action: str, actor_account_id: int | None = None) -> None:
    audit.record(action, actor_account_id=actor_account_id, person_id=None)
    db.session.flush()


@pytest.fixture
def routes(app):
    """Views as a newly added blueprint would write them: they write through a service and never commit."""

    @app.get("/_t/ok")
    def ok():
        _write("t.ok")
        return "saved"

    @app.get("/_t/redirect")
    def moved():
        _write("t.redirect")
        return redirect("/", code=303)

    @app.get("/_t/refused")
    def refused():
        _write("t.refused")
        return "the form has mistakes", 422

    @app.get("/_t/raises")
    def raises():
        _write("t.raises")
        raise RuntimeError("boom")

    @app.get("/_t/abandoned")
    def abandoned():
        _write("t.abandoned")
        transaction.abandon()  # a service refused part-way; the page still redirects back
        _write("t.after_abandon")
        return redirect("/", code=303)

    @app.get("/_t/commit_fails")
    def commit_fails():
        audit.record("t.commit_fails", actor_account_id=987654, person_id=None)  # no such account: the commit fails
        return "looks fine"

    return app


def _actions(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("t.%"))))


def test_a_successful_response_commits_what_the_view_wrote(routes):
    client = routes.test_client()
    assert client.get("/_t/ok").status_code == 200
    assert client.get("/_t/redirect").status_code == 303
    assert _actions(routes) == ["t.ok", "t.redirect"]


def test_an_error_response_keeps_nothing(routes):
    assert routes.test_client().get("/_t/refused").status_code == 422
    assert _actions(routes) == []


def test_an_exception_keeps_nothing_and_shows_the_error_page(routes):
    response = routes.test_client().get("/_t/raises")
    assert response.status_code == 500
    assert "saved nothing from this request" in response.get_data(as_text=True)
    assert _actions(routes) == []


def test_abandon_throws_away_the_attempt_but_keeps_later_writes(routes):
    assert routes.test_client().get("/_t/abandoned").status_code == 303
    assert _actions(routes) == ["t.after_abandon"]


def test_a_commit_that_fails_is_the_error_page_not_a_success(routes):
    routes.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: testing would re-raise it into the test
    response = routes.test_client().get("/_t/commit_fails")
    assert response.status_code == 500
    assert "saved nothing from this request" in response.get_data(as_text=True)
    assert _actions(routes) == []


def test_a_command_commits_once_at_the_end_or_not_at_all(app):
    with app.app_context():
        with transaction.command_transaction():
            _write("t.command")
        with pytest.raises(click.ClickException), transaction.command_transaction():
            _write("t.command_failed")
            raise click.ClickException("refused")
    assert _actions(app) == ["t.command"]


def test_views_and_services_never_commit_or_roll_back():
    """The boundary stays the only place: a commit in a view or service would split a request's transaction."""
    root = pathlib.Path(__file__).resolve().parent.parent / "lti_tool"
    pattern = re.compile(r"session\.(commit|rollback)\(")
    found = [f"{path.relative_to(root)}:{n}" for folder in ("blueprints", "services")
             for path in sorted((root / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []
