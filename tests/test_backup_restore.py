"""Backups: a `pg_dump` restored into a fresh database brings back a working tool (PostgreSQL only).

The database holds everything that must be backed up: the tool's signing keys (the JWKS must serve the same kid,
or every platform's stored key set and every issued credential stops verifying), the platforms, and the ledger.
"""
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from lti_tool import create_app
from lti_tool.certificate_documents import verify_credential
from lti_tool.extensions import db
from lti_tool.models import Account, LedgerEntry
from tests.conftest import POSTGRES_URL, register
from tests.test_mail import ALL, earn

pytestmark = pytest.mark.skipif(not POSTGRES_URL or not shutil.which("pg_dump"),
                                reason="pg_dump and pg_restore back up PostgreSQL only (set TEST_DATABASE_URL)")


def _libpq(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _ledger(app) -> list[tuple]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(sa.select(
            LedgerEntry.id, LedgerEntry.account_id, LedgerEntry.module_slug, LedgerEntry.hours, LedgerEntry.source,
            LedgerEntry.source_ref, LedgerEntry.recorded_at).order_by(LedgerEntry.id))]


def test_a_restore_from_pg_dump_brings_back_a_working_tool(app, client, runner, platform, do_launch, tmp_path):
    # The production database: built by the migrations (as `db upgrade` does), not by create_all.
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["keys", "ensure"]).exit_code == 0
    from lti_tool.services import platforms

    with app.app_context():
        platforms.add_platform(platform.registration)
        db.session.commit()
    home = do_launch(platform, "member").location
    register(client, home)
    earn(app, ALL)
    credential = client.get(home + "certificate-credential.jwt").get_data(as_text=True)
    kids = sorted(k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"])
    before = _ledger(app)
    assert len(before) == len(ALL)

    source = make_url(POSTGRES_URL)
    dump = tmp_path / "lti_tool.dump"
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", _libpq(source)], check=True,
                   timeout=60)
    restored_name = f"{source.database}_restore"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{restored_name}"'))
    admin.dispose()
    restored_url = source.set(database=restored_name)
    try:
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(restored_url)}",
                        str(dump)], check=True, timeout=60)
        restored = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "PUBLIC_BASE_URL": "http://localhost:5000",
                               "SQLALCHEMY_DATABASE_URI": restored_url.render_as_string(hide_password=False),
                               "DEMO_PLATFORM": False, "LTI_KEY_SET_REFETCH_SECONDS": 0,
                               "GRADES_BACKGROUND_SYNC": False})
        browser = restored.test_client()
        assert browser.get("/readyz").get_json()["checks"]["migrations"] == "ok"
        # Keys: the same kids, and a credential issued before the backup verifies against the restored JWKS.
        restored_jwks = browser.get("/.well-known/jwks.json").get_json()
        assert sorted(k["kid"] for k in restored_jwks["keys"]) == kids
        assert "OpenBadgeCredential" in verify_credential(credential, restored_jwks)["type"]
        # The ledger: every entry as it was, still append-only, and the certificate still verifies.
        assert _ledger(restored) == before
        with restored.app_context():
            number = db.session.scalar(sa.text("SELECT number FROM certificates"))
            with pytest.raises(sa.exc.DBAPIError):
                db.session.execute(sa.update(LedgerEntry).values(hours=0))
            db.session.rollback()
        assert "Valid." in browser.get(f"/verify/{number}").get_data(as_text=True)
        # And it works: the platform's launch goes through the restored tool to the same member.
        again = do_launch(platform, "member", browser=browser)
        assert again.status_code == 303
        assert browser.get(again.location).status_code == 200  # registered already: straight to the catalog
        with restored.app_context():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(Account)) == 1
        with restored.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)'))
        admin.dispose()
