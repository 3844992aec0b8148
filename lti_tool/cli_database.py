"""Database roles for production: the schema's owner runs migrations; the app connects as a role that cannot
change the schema, and may only add to the append-only tables.

With one role for both, a compromised or buggy app could drop the ledger's append-only triggers or alter tables.
PostgreSQL only: SQLite has no roles (a development database).
"""
import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from lti_tool.extensions import db

#: Tables whose rows are never changed or removed: the app role may read and add, nothing else.
APPEND_ONLY_TABLES = ("ledger_entries", "audit_events")
#: Written only by migrations; the app reads it (is the schema at head?).
READ_ONLY_TABLES = ("alembic_version",)


def _quoted(name: str) -> str:
    return db.engine.dialect.identifier_preparer.quote(name)


def app_role_grants(app_role: str, schema: str = "public") -> list[str]:
    """Return the statements that give `app_role` what the running tool needs and nothing more."""
    role, schema = _quoted(app_role), _quoted(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        # Tables that later migrations create get the same rights (granted by the owner who creates them).
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role}",
    ]
    for table in APPEND_ONLY_TABLES:
        statements.append(f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{_quoted(table)} FROM {role}")
    for table in READ_ONLY_TABLES:
        statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {schema}.{_quoted(table)} FROM {role}")
    return statements


@click.group("database")
def database_cli():
    """Database roles for production (PostgreSQL)."""


@database_cli.command("grant-app-role")
@click.argument("app_role")
@click.option("--schema", default="public", show_default=True)
@click.option("--print-only", is_flag=True, help="Print the SQL instead of running it.")
@with_appcontext
def grant_app_role(app_role: str, schema: str, print_only: bool):
    """Give APP_ROLE the rights the tool needs (run as the schema owner, after every `db upgrade`)."""
    statements = app_role_grants(app_role, schema)
    if print_only:
        click.echo(";\n".join(statements) + ";")
        return
    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("Database roles are a PostgreSQL feature; this database is "
                                   f"{db.engine.dialect.name}.")
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    click.echo(f"Granted {app_role} the tool's rights on schema {schema}: read and write, no schema changes, "
               f"append-only {', '.join(APPEND_ONLY_TABLES)}.")


@database_cli.command("check-role")
@with_appcontext
def check_role():
    """Say whether the role the tool connects as could change the schema (it should not, in production)."""
    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("Database roles are a PostgreSQL feature.")
    problems = role_problems()
    url = db.engine.url
    if problems:
        raise click.ClickException(f"The tool connects as {url.username!r}, which " + "; ".join(problems) + ".")
    click.echo(f"The tool connects as {url.username!r}: it cannot change the schema or rewrite the ledger.")


def role_problems() -> list[str]:
    """Return what the connected role may do that the running tool must not (PostgreSQL)."""
    problems = []
    with db.engine.connect() as connection:
        row = connection.execute(sa.text(
            "SELECT rolsuper, has_schema_privilege(current_user, 'public', 'CREATE') FROM pg_roles "
            "WHERE rolname = current_user")).one()
        if row[0]:
            problems.append("is a superuser")
        if row[1]:
            problems.append("may create objects in the schema")
        owned = connection.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user "
            "ORDER BY tablename")).scalars().all()
        if owned:
            problems.append(f"owns {len(owned)} tables (it could alter them or drop their triggers)")
        for table in APPEND_ONLY_TABLES:
            if connection.execute(sa.text("SELECT has_table_privilege(current_user, :t, 'UPDATE') OR "
                                          "has_table_privilege(current_user, :t, 'DELETE')"),
                                  {"t": f"public.{table}"}).scalar():
                problems.append(f"may update or delete rows of {table}")
    current_app.logger.debug("database role check: %s", problems or "ok")
    return problems
