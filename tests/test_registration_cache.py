"""Registrations cached per app process: read once per request, and a change made on one server seen by all."""
import pytest
import sqlalchemy as sa

from lti_tool import create_app
from lti_tool.extensions import db
from lti_tool.models import Deployment, Platform
from lti_tool.services import platforms


@pytest.fixture
def other_server(app):
    """A second app on the same database: another process or server of the same tool."""
    other = create_app({key: app.config[key] for key in (
        "TESTING", "SQLALCHEMY_DATABASE_URI", "PUBLIC_BASE_URL", "SECRET_KEY", "DEMO_PLATFORM",
        "LTI_KEY_SET_REFETCH_SECONDS", "GRADES_BACKGROUND_SYNC", "RATELIMIT_ENABLED")})
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def _statements_on(app, tables):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if any(f"FROM {table}" in statement for table in tables):
            seen.append(statement)

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(db.engine, "before_cursor_execute", record)


def _warm(do_launch, platform, browser):
    """Two launches on that server: the first fetches the key set (a change), the second caches what it read."""
    for _ in range(2):
        assert do_launch(platform, "member", browser=browser).status_code == 303


def test_a_returning_launch_reads_no_registration_rows(app, platform, do_launch):
    assert do_launch(platform, "member").status_code == 303  # fetches the key set: a registration change
    assert do_launch(platform, "member").status_code == 303
    seen, stop = _statements_on(app, ("platforms", "deployments"))
    try:
        assert do_launch(platform, "member").status_code == 303
    finally:
        with app.app_context():
            stop()
    assert seen == []


def test_a_removed_deployment_is_refused_by_every_server(app, platform, do_launch, other_server):
    browser = other_server.test_client()
    _warm(do_launch, platform, browser)
    with app.app_context():
        deployment = db.session.scalars(sa.select(Deployment)).one()
        db.session.delete(deployment)
        db.session.commit()
    response = browser.get("/lti/login", query_string={
        "iss": platform.issuer, "login_hint": "member", "target_link_uri": "http://localhost:5000/lti/launch",
        "client_id": platform.client_id, "lti_deployment_id": platform.deployment_id})
    assert response.status_code == 400
    assert "unknown_deployment" in response.get_data(as_text=True)


def test_a_removed_platform_is_refused_by_every_server(app, platform, do_launch, other_server):
    browser = other_server.test_client()
    _warm(do_launch, platform, browser)
    with app.app_context():
        platforms.remove_platform(platform.issuer, platform.client_id)
        db.session.commit()
    response = browser.get("/lti/login", query_string={
        "iss": platform.issuer, "login_hint": "member", "target_link_uri": "http://localhost:5000/lti/launch",
        "client_id": platform.client_id, "lti_deployment_id": platform.deployment_id})
    assert response.status_code == 400
    assert "unknown_platform" in response.get_data(as_text=True)


def test_a_changed_login_address_is_used_by_every_server(app, platform, do_launch, other_server):
    browser = other_server.test_client()
    _warm(do_launch, platform, browser)
    moved = platform.authorize_url + "?moved=1"
    with app.app_context():
        db.session.scalars(sa.select(Platform)).one().auth_login_url = moved
        db.session.commit()
    response = browser.get("/lti/login", query_string={
        "iss": platform.issuer, "login_hint": "member", "target_link_uri": "http://localhost:5000/lti/launch",
        "client_id": platform.client_id, "lti_deployment_id": platform.deployment_id})
    assert response.status_code == 302 and response.location.startswith(moved)


def test_a_key_set_fetched_by_one_server_is_used_by_every_server(app, client, platform, do_launch, other_server):
    browser = other_server.test_client()
    _warm(do_launch, platform, browser)
    platform.rotate_key()
    assert do_launch(platform, "member", browser=client).status_code == 303  # this server fetches the new key
    fetches = platform.jwks_fetches
    assert do_launch(platform, "member", browser=browser).status_code == 303
    assert platform.jwks_fetches == fetches  # the other server found it in the database, no second fetch


def test_a_change_not_yet_saved_is_what_the_same_request_reads(app, platform, do_launch):
    _warm(do_launch, platform, app.test_client())
    from lti_tool.lti.tool_config import find_deployment, find_platform

    with app.test_request_context():
        found = find_platform(platform.issuer, platform.client_id)
        row = db.session.get(Platform, found.id)
        row.auth_login_url = platform.authorize_url + "?changed=1"
        assert find_platform(platform.issuer, platform.client_id).auth_login_url.endswith("?changed=1")
        db.session.delete(db.session.get(Deployment, find_deployment(found, platform.deployment_id).id))
        assert find_deployment(found, platform.deployment_id) is None
        db.session.rollback()


def test_the_cached_registration_cannot_be_changed_in_place(app, platform, do_launch):
    # Every thread of the process shares the cached record: a change must go through the Platform model (which
    # raises the registration version), never into the record another request is reading.
    import dataclasses

    _warm(do_launch, platform, app.test_client())
    from lti_tool.lti.tool_config import find_platform

    with app.test_request_context():
        found = find_platform(platform.issuer, platform.client_id)
        with pytest.raises(dataclasses.FrozenInstanceError):
            found.auth_login_url = "https://elsewhere.example/auth"
    with app.test_request_context():
        assert find_platform(platform.issuer, platform.client_id).auth_login_url == platform.authorize_url
