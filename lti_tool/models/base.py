"""The declarative base every model shares, with a naming convention so Alembic names constraints."""
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """Return the current time in UTC, timezone-aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


_UPSERTS: dict = {}


def _upsert_statement(dialect: str, model, columns: tuple, conflict: tuple, update: tuple,
                      returning: tuple = ("id",)):
    key = (dialect, model, columns, conflict, update, returning)
    statement = _UPSERTS.get(key)
    if statement is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API, other dialect
        statement = insert(model.__table__)
        if update:
            statement = statement.on_conflict_do_update(
                index_elements=list(conflict), set_={name: statement.excluded[name] for name in update})
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
        if returning:
            statement = statement.returning(*(model.__table__.c[name] for name in returning))
        _UPSERTS[key] = statement
    return statement


def _connection(session) -> sa.Connection:
    """The session's connection, after flushing what the session holds (as its autoflush would).

    The statements below are built once and are Core only: run through the ORM's execution layer they cost
    several times what the database does for them.
    """
    session.flush()
    return session.connection()


def insert_once(session, model, values: dict, conflict: list[str]) -> tuple[int, bool]:
    """Insert a row unless the unique key `conflict` exists; return the row's id and whether this call inserted it."""
    connection = _connection(session)
    statement = _upsert_statement(connection.dialect.name, model, tuple(sorted(values)), tuple(conflict), ())
    row_id = connection.execute(statement, values).scalar_one_or_none()
    if row_id is not None:
        return row_id, True
    return session.execute(sa.select(model.id).filter_by(**{c: values[c] for c in conflict})).scalar_one(), False


def upsert(session, model, values: dict, conflict: list[str], update: list[str]):
    """Insert a row or, when the unique key `conflict` exists, update the columns `update`; return the row's id.

    One statement on SQLite and PostgreSQL alike, so two requests at once cannot both insert. With no columns
    to update the existing row is left untouched and unlocked (no UPDATE at all: the append-only ledger relies
    on this). Statements are built once per shape: building them costs more than running them.
    """
    connection = _connection(session)
    statement = _upsert_statement(connection.dialect.name, model, tuple(sorted(values)), tuple(conflict),
                                  tuple(update))
    row_id = connection.execute(statement, values).scalar_one_or_none()
    if row_id is None:  # it existed (or a concurrent request just committed it): read its id
        row_id = session.execute(sa.select(model.id).filter_by(**{c: values[c] for c in conflict})).scalar_one()
    return row_id


def insert_or_ignore(session, model, values: dict, conflict: list[str]) -> None:
    """Insert a row unless the unique key `conflict` exists (one statement; nothing is read back)."""
    connection = _connection(session)
    connection.execute(_upsert_statement(connection.dialect.name, model, tuple(sorted(values)), tuple(conflict),
                                         (), ()), values)


def upsert_returning(session, model, values: dict, conflict: list[str], update: list[str], returning: tuple[str, ...]):
    """Insert or update a row as `upsert` does, with columns to update, and return the row's `returning` columns
    (the row as it is after this statement) without reading it again."""
    if not update:
        raise ValueError("upsert_returning updates at least one column: a skipped insert returns no row")
    connection = _connection(session)
    statement = _upsert_statement(connection.dialect.name, model, tuple(sorted(values)), tuple(conflict),
                                  tuple(update), returning)
    return connection.execute(statement, values).one()


def rowcount(result: sa.Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE matched (Session.execute is typed as returning a plain Result)."""
    return cast(sa.CursorResult[Any], result).rowcount
