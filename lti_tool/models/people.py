"""Accounts (a user of one platform) and their enrolments in courses."""
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow


class Account(Base):
    """A user as one platform knows them: per platform and `sub`."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[Optional[str]] = mapped_column(sa.String(300))
    given_name: Mapped[Optional[str]] = mapped_column(sa.String(200))
    family_name: Mapped[Optional[str]] = mapped_column(sa.String(200))
    email: Mapped[Optional[str]] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_launch_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    platform = relationship("Platform")

    @property
    def display_name(self) -> str:
        """Return the best name the platform gave, or a neutral fallback."""
        full = " ".join(p for p in (self.given_name, self.family_name) if p)
        return self.name or full or self.email or "Unnamed user"


class Enrolment(Base):
    """An account's membership of a course, with the LTI roles of its latest launch."""

    __tablename__ = "enrolments"
    __table_args__ = (sa.UniqueConstraint("account_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    #: The LTI role URIs as the platform sent them, space-separated.
    lti_roles: Mapped[str] = mapped_column(sa.Text, default="")
    #: member, instructor or admin.
    role: Mapped[str] = mapped_column(sa.String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
