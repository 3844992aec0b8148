"""Scores for the LMS gradebook (AGS), queued in the durable outbox in the same transaction as the grade.

This module only queues (and lists, retries and counts what is queued); like every service it flushes and never
commits. Sending is the grade worker's job: `lti_tool.grades_worker`.
"""
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti import ags, tool_launch
from lti_tool.lti.claims import Scope
from lti_tool.models import (
    Account,
    Course,
    Enrolment,
    Launch,
    LineItem,
    OutboxScore,
    Platform,
    ProgressColumn,
)
from lti_tool.models.base import upsert, utcnow
from lti_tool.services import ledger

log = logging.getLogger("lti_tool.passback")


#: The per-course column that shows each member's hours toward the certificate.
PROGRESS_LABEL = "Bargaining Certificate progress"
PROGRESS_TAG = "bargaining-certificate-progress"
#: The tag of line items the tool makes for self-paced module completions.
SELF_PACED_TAG = "self-paced-module"

def line_item_key(lineitems_url: str, resource_link_id: str | None, tag: str | None) -> str:
    """Name a line item the worker will find or create (when the launch gave only `lineitems`)."""
    return f"{lineitems_url}#{resource_link_id or ''}#{tag or ''}"


def queue_score(*, platform_id: int, course_id: int | None, user_id: str, score_given, score_maximum,
                activity_progress: str = "Completed", grading_progress: str = "FullyGraded",
                comment: str | None = None, line_item_url: str | None = None,
                line_item_spec: dict | None = None, timestamp: datetime | None = None,
                label: str | None = None) -> OutboxScore:
    """Store a score to send; a newer score for the same line item and user replaces one not yet sent.

    Give `line_item_url` (the launch's `lineitem` claim) or `line_item_spec` ({"lineitems", "resourceLinkId",
    "label", "scoreMaximum", "resourceId", "tag"}) for a line item the worker finds or creates; `label` names
    the column for people (the spec's label by default).
    """
    if activity_progress not in ags.ACTIVITY_PROGRESS or grading_progress not in ags.GRADING_PROGRESS:
        raise ValueError("unknown activityProgress or gradingProgress")
    if not line_item_url:
        if not line_item_spec or not line_item_spec.get("lineitems"):
            raise ValueError("a score needs a line item URL or a lineitems container to find one in")
        line_item_url = line_item_key(line_item_spec["lineitems"], line_item_spec.get("resourceLinkId"),
                                      line_item_spec.get("tag"))
    when = (timestamp or utcnow()).astimezone(UTC)
    label = (label or (line_item_spec or {}).get("label") or "")[:300] or None
    now = utcnow()
    existing = db.session.scalars(sa.select(OutboxScore).where(
        OutboxScore.platform_id == platform_id, OutboxScore.line_item_url == line_item_url,
        OutboxScore.user_id == user_id).with_for_update()).first()
    if existing is not None:
        when = later_than(existing.payload, when)
    payload = ags.score_payload(user_id=user_id, score_given=score_given, score_maximum=score_maximum,
                                activity_progress=activity_progress, grading_progress=grading_progress,
                                timestamp=when, comment=comment)
    if existing is None:
        existing = OutboxScore(platform_id=platform_id, course_id=course_id, line_item_url=line_item_url,
                               line_item_spec=line_item_spec, user_id=user_id, payload=payload, status="pending",
                               attempts=0, next_attempt_at=now, version=1, created_at=now, updated_at=now,
                               delivery_uncertain=False, line_item_label=label)
        db.session.add(existing)
    else:
        existing.payload = payload
        existing.line_item_spec = line_item_spec or existing.line_item_spec
        existing.line_item_label = label or existing.line_item_label
        existing.status = "pending"
        existing.attempts = 0
        existing.next_attempt_at = now
        existing.last_error = None
        existing.version = existing.version + 1
        # A new version has not been sent anywhere yet: "not newer" from the LMS would be about something else.
        existing.delivery_uncertain = False
        existing.updated_at = now
    db.session.flush()
    return existing


def later_than(payload: dict | None, when: datetime) -> datetime:
    """Return `when`, or a second after the timestamp in `payload` when that is not at least a second earlier.

    Each score for a member and column must be newer than the one before it: Canvas refuses an older timestamp
    and Moodle one that is not later to the second, so two saves in one second would otherwise be refused.
    """
    try:
        earlier = datetime.fromisoformat(str((payload or {}).get("timestamp"))).astimezone(UTC)
    except ValueError:
        return when
    return max(when, earlier + timedelta(seconds=1))


# -- what the program queues --------------------------------------------------------------------------------

def queue_completion_scores(launch: Launch, module) -> None:
    """Queue what a newly completed self-paced module changes: its own score and the course's progress score."""
    queue_module_completion(launch, module)
    if launch.course_id is not None and launch.account.person_id is not None:
        queue_certificate_progress(launch.account.person_id, launch.course_id)


def queue_module_completion(launch: Launch, module) -> OutboxScore | None:
    """Queue the self-paced module's score (its credit hours) for the launch's line item; None if there is none.

    The score goes to the launch's `lineitem` claim when the placed link is this module's, otherwise (only
    `lineitems` known, or a link that names no module) to a line item found or created for this module and tied
    to the resource link. A link placed for another module, or as a graded workshop, gets nothing: its column
    belongs to that module or to the instructor's grade.
    """
    read = tool_launch.of(launch)
    endpoint = read.ags
    if endpoint is None or not endpoint.can_post_scores:
        return None
    placed_module = read.placement.module
    if placed_module and placed_module != module.slug:
        return None
    if read.placement.graded_elsewhere:
        return None
    hours = Decimal(str(module.credit_hours))
    score: dict[str, Any] = {
        "platform_id": launch.platform_id, "course_id": launch.course_id, "user_id": launch.account.sub,
        "score_given": hours, "score_maximum": hours, "activity_progress": "Completed",
        "grading_progress": "FullyGraded",
        "comment": f"Completed {module.title} (self-paced, {_hours(hours)} hours)."}
    if endpoint.lineitem and placed_module == module.slug:
        # The placed link's own column, which the deep-linking response titled with the module's title.
        return queue_score(line_item_url=endpoint.lineitem, label=module.title, **score)
    if not endpoint.can_manage_line_items or launch.resource_link is None:
        return None
    spec = {"lineitems": endpoint.lineitems, "resourceLinkId": launch.resource_link.resource_link_id,
            "label": module.title, "scoreMaximum": float(hours), "resourceId": module.slug, "tag": SELF_PACED_TAG}
    return queue_score(line_item_spec=spec, **score)


def course_endpoint(course_id: int, platform_id: int | None = None) -> ags.Endpoint | None:
    """Return the AGS endpoint of the course's latest launch that carried one with a line item container."""
    found = _course_endpoint(course_id, platform_id)
    return found[1] if found else None


def _course_endpoint(course_id: int, platform_id: int | None) -> tuple[int, ags.Endpoint] | None:
    # A course is the LMS's; its launches may come through several registrations: `platform_id` picks one.
    query = sa.select(Launch).where(Launch.course_id == course_id)
    if platform_id is not None:
        query = query.where(Launch.platform_id == platform_id)
    for launch in db.session.scalars(query.order_by(Launch.created_at.desc()).limit(25)):
        endpoint = tool_launch.of(launch).ags
        if endpoint is not None and endpoint.can_manage_line_items and Scope.AGS_SCORE in endpoint.scopes:
            return launch.platform_id, endpoint
    return None


def _progress_endpoint(course_id: int) -> tuple[int, ags.Endpoint] | None:
    """Return the registration and AGS endpoint the course's progress column is (or will be) kept through.

    When two registrations of one LMS launch in a course, the column made through one is written through that one
    (an LMS lets a registration write only the columns it made), so the course keeps one progress column.
    """
    made_through = db.session.scalars(sa.select(LineItem.platform_id).where(
        LineItem.course_id == course_id, LineItem.tag == PROGRESS_TAG).order_by(LineItem.id).limit(1)).first()
    if made_through is not None:
        found = _course_endpoint(course_id, made_through)
        if found is not None:
            return found
    return _course_endpoint(course_id, None)


def has_progress_column(course_id: int | None) -> bool:
    """Whether the course's instructor chose the "Bargaining Certificate progress" gradebook column."""
    return course_id is not None and db.session.scalar(
        sa.select(ProgressColumn.id).where(ProgressColumn.course_id == course_id)) is not None


def add_progress_column(course_id: int, account_id: int | None) -> bool:
    """Give the course its progress column (once: choosing it again changes nothing) and queue the hours of
    everyone enrolled, so the column fills at once. Return whether it is new."""
    row_id = db.session.scalar(sa.select(ProgressColumn.id).where(ProgressColumn.course_id == course_id))
    if row_id is not None:
        return False
    # One statement: two instructors choosing it at once still make one row (course_id is unique).
    upsert(db.session, ProgressColumn, {"course_id": course_id, "requested_by_account_id": account_id,
                                        "requested_at": utcnow()}, conflict=["course_id"], update=[])
    people = db.session.scalars(sa.select(Account.person_id).join(Enrolment, Enrolment.account_id == Account.id)
                                .where(Enrolment.course_id == course_id, Account.person_id.is_not(None)).distinct())
    for person_id in list(people):
        if person_id is not None and ledger.person_progress(person_id).total_hours > 0:
            queue_certificate_progress(person_id, course_id)
    return True


def queue_certificate_progress(person_id: int, course_id: int) -> list[OutboxScore]:
    """Queue the person's hours toward the certificate to the course's "Bargaining Certificate progress" column,
    when the course's instructor chose to have one."""
    course = db.session.get(Course, course_id) if has_progress_column(course_id) else None
    found = _progress_endpoint(course_id) if course is not None else None
    if course is None or found is None:
        return []
    platform_id, endpoint = found
    accounts = list(db.session.scalars(sa.select(Account).join(Enrolment, Enrolment.account_id == Account.id).where(
        Account.person_id == person_id, Account.lms_id == course.lms_id, Enrolment.course_id == course_id)))
    if not accounts:  # e.g. graded from the roster before ever launching: the person's accounts in this LMS
        accounts = list(db.session.scalars(sa.select(Account).where(
            Account.person_id == person_id, Account.lms_id == course.lms_id)))
    progress = ledger.person_progress(person_id)
    total = progress.total_required
    hours = min(progress.total_hours, total)
    comment = (f"{_hours(hours)} of {_hours(total)} hours. " +
               ("Every requirement is met." if progress.met else f"Still needed: {'; '.join(progress.what_is_left)}."))
    spec = {"lineitems": endpoint.lineitems, "label": PROGRESS_LABEL, "scoreMaximum": float(total),
            "resourceId": PROGRESS_TAG, "tag": PROGRESS_TAG}
    return [queue_score(platform_id=platform_id, course_id=course_id, user_id=account.sub,
                        score_given=hours, score_maximum=total,
                        activity_progress="Completed" if progress.met else "InProgress",
                        grading_progress="FullyGraded", comment=comment, line_item_spec=spec)
            for account in accounts]


def _hours(value) -> str:
    number = Decimal(str(value)).normalize()
    return f"{number:f}" if number != number.to_integral() else str(int(number))


# -- what people see and do -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailedScore:
    id: int
    course_id: int | None
    course_title: str | None
    member: str
    user_id: str
    line_item: str
    score: str
    answer: str
    attempts: int
    updated_at: datetime


def failed_scores(course_id: int | None = None) -> list[FailedScore]:
    """Return the scores the LMS refused (of one course, or of all when course_id is None), newest first."""
    query = (sa.select(OutboxScore, Account, LineItem.label, Course.title, Course.label.label("course_label"))
             .outerjoin(Platform, Platform.id == OutboxScore.platform_id)
             .outerjoin(Account, sa.and_(Account.lms_id == Platform.lms_id, Account.sub == OutboxScore.user_id))
             .outerjoin(LineItem, sa.and_(LineItem.platform_id == OutboxScore.platform_id,
                                          LineItem.url == OutboxScore.line_item_url))
             .outerjoin(Course, Course.id == OutboxScore.course_id)
             .where(OutboxScore.status == "failed").order_by(OutboxScore.updated_at.desc(), OutboxScore.id))
    if course_id is not None:
        query = query.where(OutboxScore.course_id == course_id)
    found = []
    for row, account, item_label, course_title, course_label in db.session.execute(query):
        payload = row.payload or {}
        label = (row.line_item_label or item_label or (row.line_item_spec or {}).get("label")
                 or "A column the tool did not name")
        given = payload.get("scoreGiven")
        score = (f"{_hours(given)} of {_hours(payload['scoreMaximum'])}" if given is not None
                 else payload.get("activityProgress", ""))
        found.append(FailedScore(
            id=row.id, course_id=row.course_id, course_title=course_title or course_label,
            member=account.display_name if account else row.user_id, user_id=row.user_id, line_item=label,
            score=score, answer=row.last_error or "", attempts=row.attempts, updated_at=row.updated_at))
    return found


def retry(score_ids, *, course_id: int | None = None) -> int:
    """Send failed scores again, now, each with a new timestamp; only those of `course_id` when given. Return
    how many were requeued.

    The new timestamp makes the retried score the newest: an LMS that refused it as not newer, or that has
    since been given another grade by hand, takes it this time, as the person retrying means it to.
    """
    ids = [int(i) for i in score_ids]
    if not ids:
        return 0
    query = sa.select(OutboxScore).where(OutboxScore.id.in_(ids), OutboxScore.status == "failed")
    if course_id is not None:
        query = query.where(OutboxScore.course_id == course_id)
    now = utcnow()
    count = 0
    for row in db.session.scalars(query.order_by(OutboxScore.id).with_for_update()):
        row.payload = {**row.payload, "timestamp": ags.iso_timestamp(later_than(row.payload, now))}
        row.status, row.attempts, row.next_attempt_at, row.leased_until = "pending", 0, now, None
        row.version, row.delivery_uncertain, row.updated_at = row.version + 1, False, now
        count += 1
    db.session.flush()
    return count


def retry_all_failed(course_id: int | None = None) -> int:
    """Send every failed score again (of one course when given); return how many."""
    query = sa.select(OutboxScore.id).where(OutboxScore.status == "failed")
    if course_id is not None:
        query = query.where(OutboxScore.course_id == course_id)
    return retry(db.session.scalars(query).all(), course_id=course_id)


@dataclass(frozen=True)
class OutboxStatus:
    counts: dict[str, int]
    due_now: int
    leased: int
    oldest_pending: datetime | None
    next_attempt: datetime | None


def outbox_status() -> OutboxStatus:
    """Count the outbox's scores by status, with the oldest pending one and the next retry."""
    now = utcnow()
    counts = dict(db.session.execute(sa.select(OutboxScore.status, sa.func.count()).group_by(OutboxScore.status)).all())
    pending = OutboxScore.status == "pending"
    return OutboxStatus(
        counts={status: counts.get(status, 0) for status in ("pending", "sent", "failed")} | counts,
        due_now=db.session.scalar(sa.select(sa.func.count()).where(due_filter(now))) or 0,
        leased=db.session.scalar(sa.select(sa.func.count()).where(pending, OutboxScore.leased_until >= now)) or 0,
        oldest_pending=db.session.scalar(sa.select(sa.func.min(OutboxScore.created_at)).where(pending)),
        next_attempt=db.session.scalar(sa.select(sa.func.min(OutboxScore.next_attempt_at)).where(pending)))


def due_filter(now: datetime):
    """The outbox rows a worker may take now: pending, due, and not leased by another worker."""
    return sa.and_(OutboxScore.status == "pending", OutboxScore.next_attempt_at <= now,
                   sa.or_(OutboxScore.leased_until.is_(None), OutboxScore.leased_until < now))
