"""Production role layout (PostgreSQL): migrations run as the schema owner, the tool runs as a role that can
neither change the schema nor rewrite the append-only ledger, and still does everything a launch needs."""
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from lti_tool import create_app
from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import LedgerEntry
from lti_tool.services import ledger, platforms
from tests.conftest import POSTGRES_URL
from tests.platform import PlatformEmulator, login_params

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="database roles exist only on PostgreSQL "
                                                         "(set TEST_DATABASE_URL)")


def _url_as(role: str) -> str:
    return make_url(POSTGRES_URL).set(username=role, password=None).render_as_string(hide_password=False)


def _app(url: str, tmp_path):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test-secret",
                       "PUBLIC_BASE_URL": "http://localhost:5000", "DEMO_PLATFORM": False,
                       "LTI_KEY_SET_REFETCH_SECONDS": 0, "GRADES_BACKGROUND_SYNC": False})


@pytest.fixture
def roles(tmp_path):
    """Make an owner and an app role (per database, as roles are cluster-wide); give the owner the schema."""
    database = make_url(POSTGRES_URL).database
    owner, app_role = f"lti_owner_{database}", f"lti_app_{database}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        for role in (owner, app_role):
            if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
                conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(sa.text(f'CREATE SCHEMA public AUTHORIZATION "{owner}"'))
    yield owner, app_role
    with admin.connect() as conn:  # leave the schema to the next test as the suite expects it
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        for role in (owner, app_role):
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
    admin.dispose()


def test_the_app_role_runs_the_tool_but_cannot_change_the_schema_or_the_ledger(roles, tmp_path):
    owner, app_role = roles
    owner_app = _app(_url_as(owner), tmp_path)
    with owner_app.app_context():
        upgrade()
    result = owner_app.test_cli_runner().invoke(args=["database", "grant-app-role", app_role])
    assert result.exit_code == 0, result.output
    # the owner itself is what check-role warns about
    assert "owns" in owner_app.test_cli_runner().invoke(args=["database", "check-role"]).output
    with owner_app.app_context():
        db.session.remove()
        db.engine.dispose()

    app = _app(_url_as(app_role), tmp_path)
    check = app.test_cli_runner().invoke(args=["database", "check-role"])
    assert check.exit_code == 0, check.output
    assert "cannot change the schema" in check.output

    emulator = PlatformEmulator()
    try:
        with app.app_context():
            keys.ensure_active_key()
            platforms.add_platform(emulator.registration)
            db.session.commit()
        client = app.test_client()
        login = client.get("/lti/login", query_string=login_params(emulator, "member"))
        assert login.status_code == 302
        form = emulator.authorize(login.location)
        form.pop("action")
        launch = client.post("/lti/launch", data=form)
        assert launch.status_code == 303, launch.get_data(as_text=True)

        with app.app_context():
            account_id = db.session.execute(sa.text("SELECT id FROM accounts")).scalar_one()
            ledger.record_hours(account_id=account_id, module_slug="bargaining-foundations", hours=6,
                                source="admin_adjustment", source_ref="role-test", reason="Role layout check")
            db.session.commit()
            entry_id = db.session.scalars(sa.select(LedgerEntry.id)).one()

        denied = [
            f"UPDATE ledger_entries SET hours = 0 WHERE id = {entry_id}",
            f"DELETE FROM ledger_entries WHERE id = {entry_id}",
            "DELETE FROM audit_events",
            "DROP TRIGGER ledger_entries_no_update_delete ON ledger_entries",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "ALTER TABLE people ADD COLUMN sneaky text",
            "CREATE TABLE sneaky (id int)",
            "UPDATE alembic_version SET version_num = 'x'",
        ]
        with app.app_context():
            for statement in denied:
                with db.engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as refused:
                    conn.execute(sa.text(statement))
                message = str(refused.value.orig)
                assert "permission denied" in message or "must be owner" in message, (statement, message)
            assert db.session.scalars(sa.select(LedgerEntry.hours)).one() == 6
            db.session.remove()
            db.engine.dispose()
    finally:
        emulator.stop()
