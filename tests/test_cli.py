"""The admin commands: platform add/list/remove, deployment add."""
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Platform

ADD = ["platform", "add", "--name", "District Canvas", "--issuer", "https://canvas.instructure.com",
       "--client-id", "10000000000007", "--auth-login-url", "https://sso.canvaslms.com/api/lti/authorize_redirect",
       "--auth-token-url", "https://district.instructure.com/login/oauth2/token",
       "--key-set-url", "https://sso.canvaslms.com/api/lti/security/jwks", "--deployment-id", "1:abc"]


def test_platform_add_list_and_remove(app, runner):
    result = runner.invoke(args=ADD)
    assert result.exit_code == 0, result.output
    assert "Registered platform" in result.output and "1 deployment" in result.output
    listing = runner.invoke(args=["platform", "list"]).output
    assert "District Canvas" in listing and "10000000000007" in listing and "1:abc" in listing
    result = runner.invoke(args=["deployment", "add", "--issuer", "https://canvas.instructure.com",
                                 "--client-id", "10000000000007", "--deployment-id", "2:def"])
    assert result.exit_code == 0
    assert "2:def" in runner.invoke(args=["platform", "list"]).output
    result = runner.invoke(args=["platform", "remove", "--issuer", "https://canvas.instructure.com",
                                 "--client-id", "10000000000007", "--yes"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Platform)) == 0


def test_same_issuer_with_another_client_id_is_another_platform(app, runner):
    assert runner.invoke(args=ADD).exit_code == 0
    second = [a if a != "10000000000007" else "10000000000008" for a in ADD]
    assert runner.invoke(args=second).exit_code == 0
    duplicate = runner.invoke(args=ADD)
    assert duplicate.exit_code != 0 and "already registered" in duplicate.output


def test_platform_add_refuses_bad_input_with_the_field_named(runner):
    bad_url = [a if a != "https://sso.canvaslms.com/api/lti/authorize_redirect" else "not a url" for a in ADD]
    result = runner.invoke(args=bad_url)
    assert result.exit_code != 0 and "auth_login_url" in result.output
    no_keys = [a for a in ADD if a not in ("--key-set-url", "https://sso.canvaslms.com/api/lti/security/jwks")]
    result = runner.invoke(args=no_keys)
    assert result.exit_code != 0 and "key_set_url" in result.output


def test_deployment_add_to_unknown_platform_fails_clearly(runner):
    result = runner.invoke(args=["deployment", "add", "--issuer", "https://x.example", "--client-id", "1",
                                 "--deployment-id", "d"])
    assert result.exit_code != 0 and "No platform is registered" in result.output


def test_a_platform_whose_members_earned_hours_cannot_be_removed(app, runner, make_account):
    from lti_tool.services import ledger

    account, _ = make_account("https://lms.example.edu")
    with app.app_context():
        ledger.record_hours(account_id=account, module_slug="power-mapping", hours=3, source="workshop_grade",
                            source_ref="g")
        db.session.commit()
    result = runner.invoke(args=["platform", "remove", "--issuer", "https://lms.example.edu", "--client-id", "c",
                                 "--yes"])
    assert result.exit_code != 0 and "ledger is permanent" in result.output


def _login_states(app) -> int:
    from lti_tool.models import LoginState

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(LoginState)) or 0


def _start_logins(app, client, platform, count: int) -> None:
    from tests.platform import login_params

    for _ in range(count):
        assert client.get("/lti/login", query_string=login_params(platform)).status_code == 302


def _age_login_states(app, days: int) -> None:
    from datetime import timedelta

    from lti_tool.models import LoginState
    from lti_tool.models.base import utcnow

    with app.app_context():
        db.session.execute(sa.update(LoginState).values(created_at=utcnow() - timedelta(days=days)))
        db.session.commit()


def test_maintenance_purge_removes_only_expired_login_records(app, client, runner, platform):
    _start_logins(app, client, platform, 3)
    _age_login_states(app, days=2)
    _start_logins(app, client, platform, 1)  # a login in progress stays
    result = runner.invoke(args=["maintenance", "purge"])
    assert result.exit_code == 0, result.output
    assert "Removed 3 expired login record(s)." in result.output
    assert _login_states(app) == 1


def test_logins_no_longer_purge_and_the_worker_does_it_hourly(app, client, platform, monkeypatch):
    from lti_tool import grades_worker

    _start_logins(app, client, platform, 2)
    _age_login_states(app, days=2)
    _start_logins(app, client, platform, 200)  # a login view that purged 1 time in 100 would have by now
    assert _login_states(app) == 202
    assert grades_worker.housekeeping_due(None)
    with app.app_context():
        assert grades_worker.housekeeping() == 2
    assert _login_states(app) == 200
    assert not grades_worker.housekeeping_due(__import__("time").monotonic())


def test_keys_ensure_makes_the_first_key_once(app, runner):
    from lti_tool.models import ToolKey

    with app.app_context():
        db.session.execute(sa.delete(ToolKey))
        db.session.commit()
    first = runner.invoke(args=["keys", "ensure"])
    assert first.exit_code == 0, first.output
    kid = first.output.removeprefix("Active key ").strip().rstrip(".")
    again = runner.invoke(args=["keys", "ensure"])
    assert again.output == first.output  # the same key: nothing new is made
    with app.app_context():
        assert db.session.scalars(sa.select(ToolKey.kid)).all() == [kid]
    assert [k["kid"] for k in client_jwks(app)] == [kid]


def client_jwks(app) -> list:
    return app.test_client().get("/.well-known/jwks.json").get_json()["keys"]
