"""Scores for the LMS gradebook (AGS): queued in the durable outbox in the same transaction as the grade."""
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import OutboxScore
from lti_tool.models.base import utcnow

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")


def line_item_key(lineitems_url: str, resource_link_id: str | None, tag: str | None) -> str:
    """Name a line item the worker will find or create (when the launch gave only `lineitems`)."""
    return f"{lineitems_url}#{resource_link_id or ''}#{tag or ''}"


def queue_score(*, platform_id: int, course_id: int | None, user_id: str, score_given, score_maximum,
                activity_progress: str = "Completed", grading_progress: str = "FullyGraded",
                comment: str | None = None, line_item_url: str | None = None,
                line_item_spec: dict | None = None, timestamp: datetime | None = None) -> OutboxScore:
    """Store a score to send; a newer score for the same line item and user replaces one not yet sent.

    Give `line_item_url` (the launch's `lineitem` claim) or `line_item_spec` ({"lineitems", "resourceLinkId",
    "label", "scoreMaximum", "resourceId", "tag"}) for a line item the worker finds or creates.
    """
    if activity_progress not in ACTIVITY_PROGRESS or grading_progress not in GRADING_PROGRESS:
        raise ValueError("unknown activityProgress or gradingProgress")
    if not line_item_url:
        if not line_item_spec or not line_item_spec.get("lineitems"):
            raise ValueError("a score needs a line item URL or a lineitems container to find one in")
        line_item_url = line_item_key(line_item_spec["lineitems"], line_item_spec.get("resourceLinkId"),
                                      line_item_spec.get("tag"))
    when = (timestamp or utcnow()).astimezone(timezone.utc)
    payload = {
        "userId": user_id,
        "scoreGiven": float(Decimal(str(score_given))) if score_given is not None else None,
        "scoreMaximum": float(Decimal(str(score_maximum))),
        "activityProgress": activity_progress,
        "gradingProgress": grading_progress,
        # AGS wants ISO 8601 with sub-second precision and a zone; Canvas refuses a timestamp older than the last.
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if comment:
        payload["comment"] = comment[:4000]
    if payload["scoreGiven"] is None:
        del payload["scoreGiven"]
    now = utcnow()
    existing = db.session.scalars(sa.select(OutboxScore).where(
        OutboxScore.platform_id == platform_id, OutboxScore.line_item_url == line_item_url,
        OutboxScore.user_id == user_id).with_for_update()).first()
    if existing is None:
        existing = OutboxScore(platform_id=platform_id, course_id=course_id, line_item_url=line_item_url,
                               line_item_spec=line_item_spec, user_id=user_id, payload=payload, status="pending",
                               attempts=0, next_attempt_at=now, version=1, created_at=now, updated_at=now)
        db.session.add(existing)
    else:
        existing.payload = payload
        existing.line_item_spec = line_item_spec or existing.line_item_spec
        existing.status = "pending"
        existing.attempts = 0
        existing.next_attempt_at = now
        existing.last_error = None
        existing.version = existing.version + 1
        existing.updated_at = now
    db.session.flush()
    return existing
