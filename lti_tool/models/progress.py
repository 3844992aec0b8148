"""A member's way through a module: sections visited, activity answers, knowledge-check attempts, completion."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.models.base import Base, UTCDateTime, utcnow


class SectionVisit(Base):
    """The first time an account opened a section of a module."""

    __tablename__ = "section_visits"
    __table_args__ = (sa.UniqueConstraint("account_id", "module_slug", "section_slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    section_slug: Mapped[str] = mapped_column(sa.String(100))
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActivityAnswer(Base):
    """A member's answers to one activity (a worksheet they keep and may revise)."""

    __tablename__ = "activity_answers"
    __table_args__ = (sa.UniqueConstraint("account_id", "module_slug", "activity_slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    activity_slug: Mapped[str] = mapped_column(sa.String(100))
    #: Field name to the member's text.
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuizAttempt(Base):
    """One try at a module's knowledge check; every try is kept."""

    __tablename__ = "quiz_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    content_version: Mapped[str] = mapped_column(sa.String(32))
    #: Question id to the chosen choice indexes.
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    score: Mapped[float] = mapped_column()
    passed: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModuleCompletion(Base):
    """A module finished: stored once per account, with the content version it was earned on."""

    __tablename__ = "module_completions"
    __table_args__ = (sa.UniqueConstraint("account_id", "module_slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    content_version: Mapped[str] = mapped_column(sa.String(32))
    credit_hours: Mapped[float] = mapped_column()
    #: The course the member was in when they finished (for the gradebook).
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("courses.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
