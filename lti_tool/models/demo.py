"""The demo LMS's own records (development only): the links placed in its course, its gradebook columns and the
scores the tool sent. They belong to the demo platform, not to the tool: the tool keeps its own view of the same
things in resource_links, line_items and outbox_scores."""
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow


class DemoLineItem(Base):
    """A column of the demo course's gradebook (an AGS line item the demo LMS serves)."""

    __tablename__ = "demo_line_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(300))
    score_maximum: Mapped[Decimal] = mapped_column(sa.Numeric(8, 2))
    #: The placed link the column belongs to (its resource link id), when it belongs to one.
    resource_link_id: Mapped[str | None] = mapped_column(sa.String(255))
    resource_id: Mapped[str | None] = mapped_column(sa.String(255))
    tag: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DemoLink(Base):
    """A link placed in the demo course by a deep-linking response, launched as an LMS launches it."""

    __tablename__ = "demo_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The resource link id the demo LMS sends in every launch of this link.
    resource_link_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    text: Mapped[str | None] = mapped_column(sa.Text)
    url: Mapped[str] = mapped_column(sa.String(1000))
    #: The item's custom parameters, sent back in each launch's custom claim.
    custom: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: The gradebook column made for the link when the item asked for one (its lineItem).
    line_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("demo_line_items.id", ondelete="SET NULL"))
    #: The deep-linking response that placed it (its nonce): the same response posted again places nothing twice.
    response_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    line_item: Mapped[DemoLineItem | None] = relationship()


class DemoScore(Base):
    """A member's result in one column: the latest score the tool sent (AGS keeps one result per user and column)."""

    __tablename__ = "demo_scores"
    __table_args__ = (sa.UniqueConstraint("line_item_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_item_id: Mapped[int] = mapped_column(sa.ForeignKey("demo_line_items.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(sa.String(255))
    score_given: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    score_maximum: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    activity_progress: Mapped[str] = mapped_column(sa.String(30))
    grading_progress: Mapped[str] = mapped_column(sa.String(30))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    #: The score's own timestamp: an older score than the one kept does not replace it.
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
