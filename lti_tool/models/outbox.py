"""Grade passback: line items the tool knows, the durable outbox of scores, and cached access tokens."""
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.models.base import Base, UTCDateTime, utcnow


class LineItem(Base):
    """A gradebook column in the LMS, by its URL, and what it is for."""

    __tablename__ = "line_items"
    __table_args__ = (sa.UniqueConstraint("platform_id", "url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(sa.String(1000))
    label: Mapped[str | None] = mapped_column(sa.String(300))
    score_maximum: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2))
    resource_id: Mapped[str | None] = mapped_column(sa.String(255))
    resource_link_id: Mapped[str | None] = mapped_column(sa.String(255))
    tag: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxScore(Base):
    """A score to send to a platform's gradebook: stored before it is sent, kept until the LMS takes it.

    One row per platform, line item and user: a newer score replaces one not yet sent, so the LMS always ends up
    with the latest.
    """

    __tablename__ = "outbox_scores"
    __table_args__ = (sa.UniqueConstraint("platform_id", "line_item_url", "user_id"),
                      sa.Index("ix_outbox_scores_status_next_attempt_at", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    #: The line item's URL when known (the launch's `lineitem` claim); otherwise a key naming the line item the
    #: worker must find or create from `line_item_spec` (e.g. "<lineitems URL>#<resourceLinkId>#<tag>").
    line_item_url: Mapped[str] = mapped_column(sa.String(1000))
    #: How to find or create the line item when only the `lineitems` container is known: {"lineitems": URL,
    #: "resourceLinkId", "label", "scoreMaximum", "resourceId", "tag"}.
    line_item_spec: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: The LMS user id (the launch's `sub`).
    user_id: Mapped[str] = mapped_column(sa.String(255))
    #: The AGS score body (scoreGiven, scoreMaximum, activityProgress, gradingProgress, timestamp, comment).
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: pending, sent or failed (a permanent refusal; a person can retry it).
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: While a worker sends it: no other worker takes it until this passes (a crashed worker's lease expires).
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped whenever a newer score replaces the payload: a worker only marks sent the version it sent.
    version: Mapped[int] = mapped_column(default=1)
    #: An attempt at this version may have reached the LMS without the tool hearing its answer (a timeout, a
    #: 5xx, a worker that died mid-send): an LMS that then refuses the same timestamp as "not newer" has it.
    delivery_uncertain: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: The gradebook column's name as teachers see it (for the Gradebook sync page).
    line_item_label: Mapped[str | None] = mapped_column(sa.String(300))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProgressColumn(Base):
    """A course whose instructor chose the "Bargaining Certificate progress" gradebook column (one per course)."""

    __tablename__ = "progress_columns"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"), unique=True)
    requested_by_account_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessToken(Base):
    """An OAuth2 access token from a platform, cached until shortly before it expires (shared by workers)."""

    __tablename__ = "access_tokens"
    __table_args__ = (sa.UniqueConstraint("platform_id", "scopes"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    scopes: Mapped[str] = mapped_column(sa.String(1000))
    token: Mapped[str] = mapped_column(sa.Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
