"""Scores for the LMS gradebook (AGS): queued in the durable outbox in the same transaction as the grade, and
sent by a worker (`flask --app lti_tool grades sync`, or a background thread in development).

What the LMS gets is exactly one score per grade, or the same score again with the same timestamp, which AGS
platforms treat as no change (Canvas re-applies it; Moodle refuses it as not newer). A worker leases the rows it
takes (SKIP LOCKED on PostgreSQL, a conditional UPDATE on SQLite) and commits the lease; each send, token
requests and a retry after a 401 included, has a total deadline that ends before the lease does, so no other
worker can take a row while its send is on the wire. A worker records an outcome only while it still holds the
lease and only for the version it sent (a newer score may have replaced it). A worker that dies mid-send leaves
a lease that expires; the next worker sends that row again with the same timestamp, and, since the first send
may have arrived, takes the LMS's "not newer" answer as delivered. A new grade, and a person's Retry of a failed
score, gets a new, later timestamp.
"""
import dataclasses
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti import ags
from lti_tool.lti.claims import Scope
from lti_tool.lti.service_client import DeadlinePassed, ServiceError, access_token
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
from lti_tool.models.base import rowcount, upsert, utcnow
from lti_tool.services import ledger

log = logging.getLogger("lti_tool.passback")

ACTIVITY_PROGRESS = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING_PROGRESS = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")

#: The per-course column that shows each member's hours toward the certificate.
PROGRESS_LABEL = "Bargaining Certificate progress"
PROGRESS_TAG = "bargaining-certificate-progress"
#: The tag of line items the tool makes for self-paced module completions.
SELF_PACED_TAG = "self-paced-module"

#: Retry timing (seconds) unless the app's config says otherwise: 2 s doubling, at most an hour apart.
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 3600.0
#: After this many transient failures (about a day and a half at the cap) a score is marked failed for a person
#: to look at, rather than retried for ever.
MAX_ATTEMPTS = 40
#: How soon to look again at a score whose line item another worker is creating.
BUSY_RETRY_SECONDS = 1.0
#: A send must end this long before its lease does, leaving time to record the outcome while the lease holds.
FINISH_MARGIN_SECONDS = 5.0


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
    if activity_progress not in ACTIVITY_PROGRESS or grading_progress not in GRADING_PROGRESS:
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
    payload = {
        "userId": user_id,
        "scoreGiven": float(Decimal(str(score_given))) if score_given is not None else None,
        "scoreMaximum": float(Decimal(str(score_maximum))),
        "activityProgress": activity_progress,
        "gradingProgress": grading_progress,
        "timestamp": _iso(when),
    }
    if comment:
        payload["comment"] = comment[:4000]
    if payload["scoreGiven"] is None:
        del payload["scoreGiven"]
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


def _iso(when: datetime) -> str:
    # AGS wants ISO 8601 with sub-second precision and a zone.
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    endpoint = ags.endpoint(launch.claims)
    if endpoint is None or not endpoint.can_post_scores:
        return None
    custom = (launch.resource_link.custom or {}) if launch.resource_link else {}
    placed_module = custom.get("module")
    if placed_module and placed_module != module.slug:
        return None
    if "workshop" in str(custom.get("mode") or "").lower():
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
    query = sa.select(Launch.platform_id, Launch.claims).where(Launch.course_id == course_id)
    if platform_id is not None:
        query = query.where(Launch.platform_id == platform_id)
    for launch_platform, claims in db.session.execute(query.order_by(Launch.created_at.desc()).limit(25)):
        endpoint = ags.endpoint(claims)
        if endpoint is not None and endpoint.can_manage_line_items and Scope.AGS_SCORE in endpoint.scopes:
            return launch_platform, endpoint
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


# -- the worker ---------------------------------------------------------------------------------------------

@dataclass
class SendReport:
    """What one run of the worker did."""

    claimed: int = 0
    sent: int = 0
    #: Transient failures, to be tried again later.
    retrying: int = 0
    #: Permanent refusals (or too many failures): a person must look at them.
    failed: int = 0
    #: A newer score was queued while this one was in flight: the newer one goes next.
    superseded: int = 0
    #: Not sent this time (lease too short to finish, or another worker is creating the line item).
    deferred: int = 0
    #: Our lease ran out before the outcome was recorded: the row is another worker's now, and left as it is.
    lease_lost: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, other: "SendReport") -> None:
        """Add another run's counts to this one."""
        for f in fields(self):
            if f.name == "errors":
                self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> str:
        """Say what happened in one line."""
        lost = f", {self.lease_lost} left to another worker (lease ran out)" if self.lease_lost else ""
        return (f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed, {self.superseded} replaced by "
                f"newer scores, {self.deferred} deferred{lost} ({self.claimed} taken in {self.seconds:.2f} s)")


@dataclass(frozen=True)
class _Job:
    id: int
    platform_id: int
    course_id: int | None
    line_item_url: str
    line_item_spec: dict | None
    payload: dict
    version: int
    attempts: int
    lease: datetime
    #: Where the score goes: the line item's real URL (for a spec, the one found or created).
    target: str | None = None
    #: An earlier attempt at this version may have reached the LMS (see OutboxScore.delivery_uncertain).
    possibly_delivered: bool = False


#: Core statements on the table: the worker writes plain columns, and skipping the ORM's bookkeeping is cheaper.
_TABLE = cast(sa.Table, OutboxScore.__table__)


def _setting(name: str, default):
    return current_app.config.get(name, default)


def backoff_seconds(attempt: int) -> float:
    """Return how long to wait after the `attempt`-th failure: 2 s doubling, capped at an hour, with jitter."""
    base = float(_setting("GRADES_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS))
    cap = float(_setting("GRADES_RETRY_MAX_SECONDS", RETRY_MAX_SECONDS))
    delay = base * 2 ** min(max(attempt - 1, 0), 30)
    # Jitter spreads the retries of a batch that failed together (an LMS outage) instead of bunching them.
    return min(cap, delay * random.uniform(0.8, 1.2))


def _send_budget() -> timedelta:
    # The worst case of one send: a token request and the POST, each twice (a 401 gets a fresh token).
    return timedelta(seconds=4 * float(current_app.config["HTTP_TIMEOUT"]) + 1)


def _least_send_time() -> timedelta:
    # A send is only started with time for at least one whole request before its deadline.
    return timedelta(seconds=float(current_app.config["HTTP_TIMEOUT"]))


def _due_filter(now: datetime):
    return sa.and_(OutboxScore.status == "pending", OutboxScore.next_attempt_at <= now,
                   sa.or_(OutboxScore.leased_until.is_(None), OutboxScore.leased_until < now))


def _claim(limit: int, lease_seconds: float) -> list[_Job]:
    """Lease up to `limit` due rows for this worker; no other worker can take them until the lease passes."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    due = sa.select(OutboxScore.id).where(_due_filter(now)).order_by(OutboxScore.next_attempt_at,
                                                                     OutboxScore.id).limit(limit)
    # A lease that ran out without an outcome is a worker that died (or hung) mid-send: what it sent may have
    # reached the LMS, and the row remembers that until its score is delivered or replaced.
    take = {"leased_until": lease, "delivery_uncertain": sa.case(
        (OutboxScore.leased_until.is_not(None), sa.true()), else_=OutboxScore.delivery_uncertain)}
    if db.session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming right now are skipped, not waited for.
        ids = list(db.session.scalars(due.with_for_update(skip_locked=True)))
        if ids:
            db.session.execute(sa.update(_TABLE).where(OutboxScore.id.in_(ids)).values(**take))
    else:
        # SQLite has one writer at a time: the conditional UPDATE is the claim, its rowcount says who won.
        ids = [row_id for row_id in db.session.scalars(due).all()
               if rowcount(db.session.execute(sa.update(_TABLE).where(OutboxScore.id == row_id, _due_filter(now))
                                              .values(**take))) == 1]
    if not ids:
        return []
    rows = db.session.execute(sa.select(
        OutboxScore.id, OutboxScore.platform_id, OutboxScore.course_id, OutboxScore.line_item_url,
        OutboxScore.line_item_spec, OutboxScore.payload, OutboxScore.version, OutboxScore.attempts,
        OutboxScore.delivery_uncertain).where(OutboxScore.id.in_(ids)).order_by(OutboxScore.id)).all()
    return [_Job(id=r.id, platform_id=r.platform_id, course_id=r.course_id, line_item_url=r.line_item_url,
                 line_item_spec=r.line_item_spec, payload=r.payload, version=r.version, attempts=r.attempts,
                 lease=lease, target=None if r.line_item_spec else r.line_item_url,
                 possibly_delivered=bool(r.delivery_uncertain)) for r in rows]


def _finish(job: _Job, report: SendReport, **values) -> bool:
    """Record the outcome of the version we sent, only while our lease holds; False (and counted in `report`)
    when a newer score replaced it meanwhile or the lease passed to another worker."""
    values.update(leased_until=None, updated_at=utcnow())
    done = rowcount(db.session.execute(sa.update(_TABLE).where(
        OutboxScore.id == job.id, OutboxScore.version == job.version, OutboxScore.status == "pending",
        OutboxScore.leased_until == job.lease).values(**values))) == 1
    if done:
        return True
    current = db.session.execute(sa.select(OutboxScore.leased_until, OutboxScore.version)
                                 .where(OutboxScore.id == job.id)).first()
    if current is not None and current.leased_until == job.lease:
        _release(job)  # still ours, but a newer score replaced the one we sent: it goes next
        report.superseded += 1
    else:
        # Another worker took the row after our lease ran out: its outcome is the one that counts.
        log.warning("score %s: lease ran out before its outcome was recorded; left to the worker holding it",
                    job.id)
        report.lease_lost += 1
    return False


def _release(job: _Job, next_attempt_at: datetime | None = None) -> None:
    """Give the row back without counting an attempt (only while the lease is still ours)."""
    values: dict[str, datetime | None] = {"leased_until": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    db.session.execute(sa.update(_TABLE).where(OutboxScore.id == job.id, OutboxScore.leased_until == job.lease)
                       .values(**values))


def describe_failure(exc: ServiceError, *, gave_up_after: int | None = None, line_item_made_by_tool: bool = False
                     ) -> str:
    """Say in plain words what went wrong with a score and what to do; never what the LMS wrote (that is logged)."""
    status = exc.status
    if gave_up_after:
        last = f"HTTP {status}" if status else "no answer in time" if exc.maybe_delivered else "not reachable"
        return (f"The LMS did not take the score after {gave_up_after} attempts (last: {last}). Check that the LMS "
                "is up, then retry.")
    if status is None:
        if exc.maybe_delivered:
            return ("The LMS did not answer in time (the request timed out or the connection dropped). The tool "
                    "tries again by itself.")
        # The tool's own words: its outbound rules (an address it may not reach) or its own error.
        return str(exc).split(": ", 1)[-1] if exc.refused else str(exc)
    if status in (400, 409) and ags.refused_as_not_newer(exc):
        return (f"The LMS already has a newer grade for this member in this column (HTTP {status}), perhaps "
                "entered in the LMS. Retry sends this score as the newest, replacing it.")
    if status in (401, 403):
        return (f"The LMS did not let the tool post grades (HTTP {status}). An LMS admin should check that the "
                "tool's grade service (Assignment and Grade Services) is on, then retry.")
    if status == 404:
        if line_item_made_by_tool:
            return "The gradebook column was not found (HTTP 404): it was deleted in the LMS. Retry makes it again."
        return ("The gradebook column was not found (HTTP 404): the activity or its grade item was deleted in the "
                "LMS. Restore it, or place the workshop again, then retry.")
    if status == 422:
        return ("The LMS would not take a grade for this member (HTTP 422): they may no longer be a student in the "
                "course. Check their enrolment in the LMS, then retry.")
    if status == 400:
        return ("The LMS refused the score as invalid (HTTP 400). Retry sends it again with a new time; if it is "
                "refused again, check the column's settings in the LMS.")
    if status >= 500 or status in (408, 429):
        return f"The LMS was busy or failing (HTTP {status}). The tool tries again by itself."
    return f"The LMS refused the score (HTTP {status}). Retry; if it is refused again, ask the LMS's administrator."


def _for_the_log(exc: ServiceError) -> str:
    # The operator's view (CLI output, logs): the status and a short printable excerpt of the LMS's answer.
    if exc.status is None:
        return str(exc)[:300]
    return f"HTTP {exc.status}: {(exc.body or str(exc)).strip()}"[:300]


def _record_failure(job: _Job, exc: ServiceError, report: SendReport, *, posting_score: bool = True) -> None:
    attempts = job.attempts + 1
    uncertain = job.possibly_delivered or (posting_score and exc.maybe_delivered)
    if posting_score and job.possibly_delivered and ags.refused_as_not_newer(exc):
        # An earlier attempt of this very score (same timestamp) reached the LMS: this is its echo.
        if _finish(job, report, status="sent", sent_at=utcnow(), last_error=None, attempts=attempts,
                   delivery_uncertain=False):
            report.sent += 1
        return
    if exc.transient and attempts < int(_setting("GRADES_MAX_ATTEMPTS", MAX_ATTEMPTS)):
        delay = backoff_seconds(attempts)
        if exc.retry_after:
            delay = max(delay, exc.retry_after)  # the LMS said when: never sooner
        done = _finish(job, report, attempts=attempts, next_attempt_at=utcnow() + timedelta(seconds=delay),
                       last_error=describe_failure(exc), delivery_uncertain=uncertain)
        outcome = "retrying"
    else:
        answer = describe_failure(exc, gave_up_after=attempts if exc.transient else None,
                                  line_item_made_by_tool=bool(job.line_item_spec))
        done = _finish(job, report, attempts=attempts, status="failed", last_error=answer,
                       delivery_uncertain=uncertain)
        outcome = "failed"
        if exc.status == 404 and job.line_item_spec and job.target:
            # The column the tool found or made is gone: a retry finds or creates it again.
            ags.forget_line_item(job.platform_id, job.target)
    if done:
        setattr(report, outcome, getattr(report, outcome) + 1)
        if len(report.errors) < 20:
            report.errors.append(f"score {job.id}: {_for_the_log(exc)}")


def _resolve_line_items(jobs: list[_Job], report: SendReport) -> list[_Job]:
    """Find or create the line items of rows that name one by spec; return the jobs ready to send."""
    ready: list[_Job] = []
    groups: dict[tuple[int, int | None, str], list[_Job]] = {}
    for job in jobs:
        if job.target:
            ready.append(job)
        else:
            groups.setdefault((job.platform_id, job.course_id, job.line_item_url), []).append(job)
    for (platform_id, course_id, _key), members in groups.items():
        platform = db.session.get_one(Platform, platform_id)
        spec = members[0].line_item_spec
        if spec is None:
            raise RuntimeError("a score queued without a line item URL has a line item spec")
        try:
            item = ags.find_or_create_line_item(platform, spec, course_id=course_id,
                                                lock_seconds=_send_budget().total_seconds() * 2)
        except ags.LineItemBusy:
            later = utcnow() + timedelta(seconds=BUSY_RETRY_SECONDS)
            for job in members:
                _release(job, next_attempt_at=later)
            report.deferred += len(members)
        except ServiceError as exc:
            for job in members:
                _record_failure(job, exc, report, posting_score=False)
        else:
            # The row keeps its key (lineitems#resourceLinkId#tag) as line_item_url: queue_score computes the
            # same key for the next score, so there stays one row per member and column, and latest wins.
            ready.extend(dataclasses.replace(job, target=item.url) for job in members)
        db.session.commit()
    return ready


def _detached_platform(platform_id: int, cache: dict) -> Platform:
    # Loaded once per thread and detached, so no database connection is held while the HTTP call waits.
    if platform_id not in cache:
        platform = db.session.get_one(Platform, platform_id)
        db.session.expunge(platform)
        db.session.rollback()
        cache[platform_id] = platform
    return cache[platform_id]


def _send(job: _Job, report: SendReport, platforms: dict) -> None:
    # Everything this send does ends before the lease does, with time left to record the outcome: no other
    # worker can take the row while this one's POST may still reach the LMS.
    ends = job.lease - timedelta(seconds=FINISH_MARGIN_SECONDS)
    if utcnow() + _least_send_time() > ends:
        _release(job)  # too little of the lease left for even one request: give the row back untouched
        report.deferred += 1
        return
    deadline = time.monotonic() + (ends - utcnow()).total_seconds()
    platform = _detached_platform(job.platform_id, platforms)
    if job.target is None:
        raise RuntimeError("_resolve_line_items gives every job it returns a line item URL")
    try:
        ags.post_score(platform, job.target, job.payload, deadline=deadline)
    except DeadlinePassed:
        _release(job)  # the token request used the time up; the score itself was not sent
        report.deferred += 1
    except ServiceError as exc:
        _record_failure(job, exc, report)
    else:
        if _finish(job, report, status="sent", sent_at=utcnow(), last_error=None, delivery_uncertain=False):
            report.sent += 1


def _worker(app, jobs: "queue.Queue[_Job | None]", report: SendReport, lock: threading.Lock) -> None:
    """Send jobs until told to stop (None), in this thread's own app context and session."""
    with app.app_context():
        mine, platforms = SendReport(), dict[int, Platform]()
        while True:
            job = jobs.get()
            if job is None:
                break
            try:
                _send(job, mine, platforms)
                db.session.commit()  # each outcome in its own short transaction
            except Exception as exc:
                db.session.rollback()
                log.exception("sending score %s failed", job.id)
                try:
                    _record_failure(job, ServiceError(f"The tool could not send it: {exc.__class__.__name__}."),
                                    mine)
                    db.session.commit()
                except Exception:  # noqa: BLE001 - the lease expires and another round takes it
                    db.session.rollback()
        with lock:
            report.add(mine)


def _warm_tokens(platform_ids) -> None:
    # One token request per platform before the threads start, instead of one per thread.
    for platform_id in platform_ids:
        try:
            access_token(db.session.get_one(Platform, platform_id), [Scope.AGS_SCORE])
        except ServiceError as exc:
            log.warning("no access token from platform %s yet: %s", platform_id, exc)


def send_due(limit: int = 200, *, concurrency: int = 8, lease_seconds: float = 60) -> SendReport:
    """Send up to `limit` due scores, `concurrency` at a time; return what happened.

    It commits (it is a worker, not part of a request): first each lease, so no other worker takes the rows,
    then each row's outcome in its own short transaction. Rows are claimed a few at a time as the sending
    threads free up, so one slow answer (a timeout) holds up one thread, not the batch, and no row waits long
    under its lease before it is sent.
    """
    if timedelta(seconds=lease_seconds - FINISH_MARGIN_SECONDS) <= _send_budget():
        raise ValueError(f"lease_seconds must be longer than one send can take (4 × HTTP_TIMEOUT + "
                         f"{FINISH_MARGIN_SECONDS + 1:g} s)")
    started = time.monotonic()
    report = SendReport()
    concurrency = max(1, concurrency)
    work: queue.Queue[_Job | None] = queue.Queue()
    app, lock = current_app._get_current_object(), threading.Lock()  # type: ignore[attr-defined]  # typed as Flask
    threads: list[threading.Thread] = []
    warmed: set[int] = set()
    try:
        while report.claimed < limit:
            while work.qsize() >= concurrency:  # enough waiting: claim more only as threads free up
                time.sleep(0.005)
            jobs = _claim(min(concurrency, limit - report.claimed), lease_seconds)
            db.session.commit()
            if not jobs:
                break
            report.claimed += len(jobs)
            ready = _resolve_line_items(jobs, report)
            _warm_tokens(sorted({job.platform_id for job in ready} - warmed))
            warmed.update(job.platform_id for job in ready)
            db.session.commit()
            for job in ready:
                work.put(job)
            while len(threads) < min(concurrency, report.claimed):
                thread = threading.Thread(target=_worker, args=(app, work, report, lock), daemon=True,
                                          name=f"grades-send-{len(threads)}")
                thread.start()
                threads.append(thread)
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    report.seconds = time.monotonic() - started
    return report


def send_all_due(limit: int = 200, *, concurrency: int = 8, lease_seconds: float = 60,
                 max_rounds: int = 1000) -> SendReport:
    """Send batches until nothing is due now (scores waiting for a retry later stay for a later run)."""
    total = SendReport()
    started = time.monotonic()
    for _ in range(max_rounds):
        report = send_due(limit, concurrency=concurrency, lease_seconds=lease_seconds)
        total.add(report)
        if report.claimed == 0 or report.deferred == report.claimed:
            break
    total.seconds = time.monotonic() - started
    return total


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
        row.payload = {**row.payload, "timestamp": _iso(later_than(row.payload, now))}
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
        due_now=db.session.scalar(sa.select(sa.func.count()).where(_due_filter(now))) or 0,
        leased=db.session.scalar(sa.select(sa.func.count()).where(pending, OutboxScore.leased_until >= now)) or 0,
        oldest_pending=db.session.scalar(sa.select(sa.func.min(OutboxScore.created_at)).where(pending)),
        next_attempt=db.session.scalar(sa.select(sa.func.min(OutboxScore.next_attempt_at)).where(pending)))


# -- the development background thread ------------------------------------------------------------------------

def start_background_sync(app) -> threading.Thread | None:
    """Start a daemon thread that sends due scores every few seconds (development; once per process)."""
    if app.config.get("TESTING") or not app.config.get("GRADES_BACKGROUND_SYNC"):
        return None
    with _background_lock:
        running = app.extensions.get("grades_sync")
        if running:
            return running[0]
        stop = threading.Event()
        thread = threading.Thread(target=_background_loop, args=(app, stop), daemon=True, name="grades-sync")
        app.extensions["grades_sync"] = (thread, stop)
        thread.start()
        return thread


def stop_background_sync(app, timeout: float = 10) -> None:
    """Stop the background thread after the round in flight."""
    running = app.extensions.pop("grades_sync", None)
    if running:
        running[1].set()
        running[0].join(timeout)


_background_lock = threading.Lock()


def _background_loop(app, stop: threading.Event) -> None:
    interval = float(app.config.get("GRADES_SYNC_INTERVAL", 5))
    while not stop.is_set():
        try:
            with app.app_context():
                report = send_all_due()
                # Emails too, so the demo shows them on /dev/mail without a separate worker.
                from lti_tool.services import mail

                emails = mail.send_all_due()
            if report.claimed:
                log.info("grades sync: %s", report.summary())
            if emails.claimed:
                log.info("mail: %s", emails.summary())
        except Exception:
            log.exception("grades sync failed; trying again in %s s", interval)
        stop.wait(interval)
