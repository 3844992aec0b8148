"""The mail outbox: emails the program promises members, queued with what caused them and sent by the worker."""
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.models.base import Base, UTCDateTime, utcnow


class OutboxMail(Base):
    """One email, written when it is queued (subject, plain text and HTML) and kept until SMTP takes it."""

    __tablename__ = "outbox_mail"
    __table_args__ = (sa.Index("ix_outbox_mail_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: registration, certificate or reminder.
    kind: Mapped[str] = mapped_column(sa.String(30))
    #: What makes the email one of a kind ("registration:<person>", "certificate:<number>", ...): queuing it again
    #: is a no-op, so a double submit or two requests at once never write it twice.
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id", ondelete="SET NULL"), index=True)
    to_address: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(300))
    text_body: Mapped[str] = mapped_column(sa.Text)
    html_body: Mapped[str] = mapped_column(sa.Text)
    #: What to attach, rendered when sent: [{"kind": "certificate_pdf", "number": "BC-2026-..."}].
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    #: The Message-ID every attempt carries, so a receiver that got an uncertain first attempt sees one message.
    message_id: Mapped[str] = mapped_column(sa.String(200))
    #: pending, sent or failed (the SMTP server refused it for good, or too many attempts).
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: While a worker sends it: no other worker takes it until this passes (a crashed worker's lease expires).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: "smtp", or "log" in development without SMTP settings.
    sent_via: Mapped[str | None] = mapped_column(sa.String(10))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
