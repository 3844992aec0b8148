"""The gradebook queue as program staff see it: every score by status, course and platform, with the LMS's
answer in words; retry, or discard with a reason. Both actions are audited."""
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Account, Course, LineItem, OutboxScore, Platform
from lti_tool.models.base import rowcount, utcnow
from lti_tool.services import audit, passback

STATUSES = ("pending", "failed", "sent", "discarded")


class QueueError(ValueError):
    """A queue action that cannot be done, with the reason."""


@dataclass(frozen=True)
class QueueCount:
    platform_id: int
    platform: str
    course_id: int | None
    course: str
    counts: dict[str, int]


@dataclass(frozen=True)
class QueuedScore:
    id: int
    status: str
    platform: str
    course: str
    member: str
    line_item: str
    score: str
    #: The LMS's answer as its HTTP status, when there was one.
    http_status: str
    #: What happened and what to do, in the tool's words.
    answer: str
    attempts: int
    updated_at: datetime
    sent_at: datetime | None


def _course_name(title, label, context_id) -> str:
    return title or label or (f"course {context_id}" if context_id else "no course")


def counts_by_course() -> list[QueueCount]:
    """Count the scores by platform, course and status."""
    rows = db.session.execute(
        sa.select(OutboxScore.platform_id, Platform.name, OutboxScore.course_id, Course.title, Course.label,
                  Course.context_id, OutboxScore.status, sa.func.count())
        .join(Platform, Platform.id == OutboxScore.platform_id).outerjoin(Course, Course.id == OutboxScore.course_id)
        .group_by(OutboxScore.platform_id, Platform.name, OutboxScore.course_id, Course.title, Course.label,
                  Course.context_id, OutboxScore.status)).all()
    grouped: dict[tuple, QueueCount] = {}
    for platform_id, platform, course_id, title, label, context_id, status, count in rows:
        key = (platform_id, course_id)
        if key not in grouped:
            grouped[key] = QueueCount(platform_id, platform, course_id, _course_name(title, label, context_id),
                                      dict.fromkeys(STATUSES, 0))
        grouped[key].counts[status] = grouped[key].counts.get(status, 0) + count
    return sorted(grouped.values(), key=lambda c: (c.platform, c.course))


def _http_status(text: str | None) -> str:
    import re

    found = re.search(r"HTTP (\d{3})", text or "")
    return found.group(1) if found else ""


def scores(*, status: str | None = None, platform_id: int | None = None, course_id: int | None = None,
           limit: int = 300) -> list[QueuedScore]:
    """Return the queued scores (newest change first), filtered by status, platform and course."""
    query = (sa.select(OutboxScore, Platform.name, Account, LineItem.label, Course.title, Course.label,
                       Course.context_id)
             .join(Platform, Platform.id == OutboxScore.platform_id)
             .outerjoin(Account, sa.and_(Account.lms_id == Platform.lms_id, Account.sub == OutboxScore.user_id))
             .outerjoin(LineItem, sa.and_(LineItem.platform_id == OutboxScore.platform_id,
                                          LineItem.url == OutboxScore.line_item_url))
             .outerjoin(Course, Course.id == OutboxScore.course_id))
    if status:
        query = query.where(OutboxScore.status == status)
    if platform_id:
        query = query.where(OutboxScore.platform_id == platform_id)
    if course_id:
        query = query.where(OutboxScore.course_id == course_id)
    found = []
    for row, platform, account, item_label, title, label, context_id in db.session.execute(
            query.order_by(OutboxScore.updated_at.desc(), OutboxScore.id.desc()).limit(limit)):
        payload = row.payload or {}
        given = payload.get("scoreGiven")
        score = (f"{passback._hours(given)} of {passback._hours(payload.get('scoreMaximum', 0))}"
                 if given is not None else payload.get("activityProgress", ""))
        if row.status == "sent":
            answer = "The LMS accepted the score."
        elif row.status == "pending" and not row.last_error:
            answer = "Waiting to be sent (the worker sends it within a minute or so)."
        else:
            answer = row.last_error or ""
        found.append(QueuedScore(
            id=row.id, status=row.status, platform=platform, course=_course_name(title, label, context_id),
            member=account.display_name if account else f"LMS user {row.user_id}",
            line_item=row.line_item_label or item_label or (row.line_item_spec or {}).get("label")
            or "A column the tool did not name", score=score,
            http_status="200" if row.status == "sent" else _http_status(row.last_error), answer=answer,
            attempts=row.attempts, updated_at=row.updated_at, sent_at=row.sent_at))
    return found


def retry(score_ids, *, actor_account_id: int | None) -> int:
    """Send failed scores again now (each as the newest grade); audited. Return how many."""
    ids = sorted({int(i) for i in score_ids})
    count = passback.retry(ids)
    if count:
        audit.record("grades.retry", actor_account_id=actor_account_id, person_id=None, score_ids=ids[:200],
                     count=count)
    return count


def discard(score_ids, *, reason: str, actor_account_id: int | None) -> int:
    """Stop sending failed or waiting scores, with a reason (audited); return how many.

    A score a worker is sending right now is left alone. A newer grade for the same member and column queues
    again as usual.
    """
    reason = " ".join((reason or "").split())
    if not reason:
        raise QueueError("Discarding a score needs a reason (it is kept in the audit log).")
    ids = sorted({int(i) for i in score_ids})
    if not ids:
        raise QueueError("Choose the scores to discard.")
    now = utcnow()
    discarded = rowcount(db.session.execute(
        sa.update(OutboxScore).where(
            OutboxScore.id.in_(ids), OutboxScore.status.in_(("failed", "pending")),
            sa.or_(OutboxScore.leased_until.is_(None), OutboxScore.leased_until < now))
        .values(status="discarded", leased_until=None, updated_at=now, version=OutboxScore.version + 1,
                last_error=f"Discarded by program staff: {reason[:500]}")
        .execution_options(synchronize_session=False)))
    if discarded:
        audit.record("grades.discard", actor_account_id=actor_account_id, person_id=None, reason=reason[:500],
                     score_ids=ids[:200], count=discarded)
    db.session.flush()
    return discarded
