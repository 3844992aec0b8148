"""People, their accounts (one per platform), enrolments, registrations and account-linking codes.

A person may learn in several courses and in both Canvas and Moodle: each platform gives them an account, and
all of a person's accounts share one certificate ledger.
"""
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow


class Person(Base):
    """One member of the program, whatever LMS they use; owns accounts, registration and certificate."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The name to print on the certificate: the registration's, else the latest launch's.
    name: Mapped[Optional[str]] = mapped_column(sa.String(300))
    email: Mapped[Optional[str]] = mapped_column(sa.String(320), index=True)
    #: May use the program-wide admin pages (granted with `flask --app lti_tool admins grant`).
    program_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list["Account"]] = relationship(back_populates="person", order_by="Account.id")


class Account(Base):
    """A user as one platform knows them: per platform and `sub`."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(sa.String(255))
    #: The person this account belongs to; set at the first launch, changed only by linking or merging.
    person_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("people.id"), index=True)
    name: Mapped[Optional[str]] = mapped_column(sa.String(300))
    given_name: Mapped[Optional[str]] = mapped_column(sa.String(200))
    family_name: Mapped[Optional[str]] = mapped_column(sa.String(200))
    email: Mapped[Optional[str]] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_launch_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    platform = relationship("Platform")
    person: Mapped[Optional[Person]] = relationship(back_populates="accounts")

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


class Registration(Base):
    """The brief form the program asks of every member, once; editable later."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    email: Mapped[str] = mapped_column(sa.String(320))
    local_association: Mapped[str] = mapped_column(sa.String(300))
    #: teacher, esp, specialist, faculty, professional_staff, other
    job_category: Mapped[str] = mapped_column(sa.String(40))
    #: prek12 or higher_ed
    sector: Mapped[str] = mapped_column(sa.String(20))
    #: none, some, experienced, lead
    bargaining_experience: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LinkCode(Base):
    """A one-time code a member makes in one LMS and enters in another to join the two accounts."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 of the code: the code itself is shown once and never stored.
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    used_by_account_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"))
