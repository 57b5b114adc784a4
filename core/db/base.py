"""Declarative base, UTC timestamps and the database clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Select, func, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: radraft stores only aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite's own clock answers text
            value = datetime.fromisoformat(value)
        return _aware(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime}  # noqa: RUF012 (SQLAlchemy reads it)


# Built once: building the select per call cost more than running it.
_POSTGRES_NOW: Select[Any] = select(func.clock_timestamp())


def connection_of(db: Session | Connection) -> Connection:
    """The Core connection to run statements on (a session's own, inside its transaction)."""
    return db if isinstance(db, Connection) else db.connection()


def db_now(db: Session | Connection) -> datetime:
    """The database's clock, in UTC: the one clock for stability timers and back-offs."""
    # Core on the connection: the ORM execute path cost 0.3 ms per call.
    connection = connection_of(db)
    if connection.dialect.name == "sqlite":
        # SQLite runs in this process: its 'now' is this machine's clock, in whole
        # milliseconds (strftime %f), read here without a query (0.2 ms an instance).
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
    value: datetime = connection.execute(_POSTGRES_NOW).scalar_one()
    return _aware(value)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
