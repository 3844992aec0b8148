"""The migrations build exactly the schema the models describe."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from lti_tool.extensions import db
from lti_tool.models import Base


def test_migrations_match_the_models(app):
    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                Base.metadata.drop_all(conn)
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        inspector = sa.inspect(db.engine)
        assert {"platforms", "deployments", "tool_keys", "launches", "login_states", "ledger_entries",
                "certificates", "people"} <= set(inspector.get_table_names())
        # the migrations also install the triggers that keep the ledger append-only
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                triggers = conn.execute(sa.text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'ledger_entries'::regclass")).scalars().all()
                assert {"ledger_entries_no_update_delete", "ledger_entries_no_truncate"} <= set(triggers)
            else:
                triggers = conn.execute(sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars().all()
                assert {"ledger_entries_no_update", "ledger_entries_no_delete"} <= set(triggers)


def test_migrations_round_trip_upgrade_downgrade_to_base_and_upgrade_again(app):
    """Every migration's downgrade works: head → base leaves no table of ours, and head can be rebuilt."""
    from flask_migrate import downgrade

    with app.app_context():
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            else:
                Base.metadata.drop_all(conn)
        upgrade()
        downgrade(revision="base")
        left = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        upgrade()
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                           Base.metadata)
        assert differences == []
