"""Workshops placed in a course, the roster's attendance and grades, and in-person check-in codes."""
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow


class Workshop(Base):
    """A live session of one module, placed in a course by deep linking and graded by its instructor."""

    __tablename__ = "workshops"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id carried by the placed link's custom parameters (not guessable, not the row id).
    public_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    #: e.g. "Summer Conference 2026", "Worcester regional training".
    event_name: Mapped[str] = mapped_column(sa.String(300))
    venue: Mapped[str | None] = mapped_column(sa.String(300))
    session_date: Mapped[datetime | None] = mapped_column(sa.Date)
    #: What its gradebook column shows: "hours" (hours attended, out of the module's hours) or "score" (the
    #: instructor's score out of 100). Chosen when the workshop is placed; the column's maximum follows it.
    gradebook_column: Mapped[str] = mapped_column(sa.String(10), default="hours", server_default="hours")
    #: The resource link of the placed workshop, known from its first launch.
    resource_link_id: Mapped[int | None] = mapped_column(sa.ForeignKey("resource_links.id", ondelete="SET NULL"))
    created_by_account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Listed on the public /offerings page, its PDF and calendar. Off until program staff publish it: an
    #: instructor places a workshop for their own course (often a local's closed training), and its venue and
    #: date go public only when the program decides to advertise it.
    public: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    course = relationship("Course")


class WorkshopRecord(Base):
    """One member's attendance and result in one workshop, as the instructor last saved it."""

    __tablename__ = "workshop_records"
    __table_args__ = (sa.UniqueConstraint("workshop_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(sa.ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    attended: Mapped[bool] = mapped_column(default=False)
    #: How the attendance was recorded: instructor, check_in or sign_in_sheet.
    attendance_source: Mapped[str | None] = mapped_column(sa.String(20))
    hours_attended: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    #: complete or incomplete (None until graded).
    result: Mapped[str | None] = mapped_column(sa.String(20))
    score: Mapped[Decimal | None] = mapped_column(sa.Numeric(6, 2))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    graded_by_account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"))
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The ledger entry that currently stands for this grade (a change reverses it and records anew).
    ledger_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckInCode(Base):
    """A short code the instructor shows in the room; members enter it to record their attendance."""

    __tablename__ = "check_in_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    workshop_id: Mapped[int] = mapped_column(sa.ForeignKey("workshops.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
