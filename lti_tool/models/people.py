"""People, their accounts (one per LMS), enrolments, registrations and account-linking codes.

A person may learn in several courses and in both Canvas and Moodle: each LMS gives them an account (however many
times the tool is registered in it), and all of a person's accounts share one certificate ledger.
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
    name: Mapped[str | None] = mapped_column(sa.String(300))
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    #: May use the program-wide admin pages (granted with `flask --app lti_tool admins grant`).
    program_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list["Account"]] = relationship(back_populates="person", order_by="Account.id")


class Account(Base):
    """A user as one LMS knows them: per LMS (models.lti.LmsIdentity) and `sub`."""

    __tablename__ = "accounts"
    __table_args__ = (
        sa.UniqueConstraint("lms_id", "sub"),
        # An account is in an LMS, or it was merged into the one account that now stands for it there.
        sa.CheckConstraint("(lms_id IS NULL) <> (merged_into_id IS NULL)", name="in_lms_or_merged"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None only for an account merged into another (`merged_into_id`), which alone is found by launches.
    lms_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lms_identities.id", ondelete="CASCADE"))
    #: When the same LMS user had two accounts (two registrations of one LMS, before accounts were per LMS): the
    #: account that stands for both. This one stays, with the ledger entries that name it, under the same person.
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="RESTRICT"),
                                                          index=True)
    sub: Mapped[str] = mapped_column(sa.String(255))
    #: The person this account belongs to; set at the first launch, changed only by linking or merging.
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id"), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(300))
    given_name: Mapped[str | None] = mapped_column(sa.String(200))
    family_name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_launch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lms = relationship("LmsIdentity")
    merged_into: Mapped[Optional["Account"]] = relationship(remote_side=[id])
    person: Mapped[Person | None] = relationship(back_populates="accounts")

    @property
    def lms_name(self) -> str:
        """Name the LMS this account is in (for a merged account, its survivor's)."""
        account = self
        while account.lms is None and account.merged_into is not None:
            account = account.merged_into
        return account.lms.name if account.lms is not None else "an LMS"

    @property
    def display_name(self) -> str:
        """Return the best name the platform gave, or a neutral fallback."""
        return display_name(self.name, self.given_name, self.family_name, self.email)


def display_name(name: str | None, given_name: str | None, family_name: str | None, email: str | None) -> str:
    """The best name a platform gave an account, or a neutral fallback."""
    full = " ".join(p for p in (given_name, family_name) if p)
    return name or full or email or "Unnamed user"


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
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"))
