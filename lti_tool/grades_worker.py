"""The grade worker: sends the outbox's scores to the LMS gradebooks (AGS), outside any request.

Run by `flask --app lti_tool grades sync` (a process manager keeps `--loop` running), or by a background thread
in development. Unlike services it commits, and must: each lease is committed before the send so no other worker
takes the row, and each outcome is committed in its own short transaction. Queueing stays in
`lti_tool.services.passback`, in the request's transaction.

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
import threading
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from flask import current_app

from lti_tool import retry
from lti_tool.extensions import db
from lti_tool.lti import ags
from lti_tool.lti.claims import Scope
from lti_tool.lti.service_client import DeadlinePassed, ServiceError, access_token
from lti_tool.models import (
    OutboxScore,
    Platform,
)
from lti_tool.models.base import rowcount, utcnow
from lti_tool.services.passback import due_filter

log = logging.getLogger("lti_tool.passback")

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
    return retry.backoff_seconds(attempt, float(_setting("GRADES_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)),
                                 float(_setting("GRADES_RETRY_MAX_SECONDS", RETRY_MAX_SECONDS)))


def _send_budget() -> timedelta:
    # The worst case of one send: a token request and the POST, each twice (a 401 gets a fresh token).
    return timedelta(seconds=4 * float(current_app.config["HTTP_TIMEOUT"]) + 1)


def _least_send_time() -> timedelta:
    # A send is only started with time for at least one whole request before its deadline.
    return timedelta(seconds=float(current_app.config["HTTP_TIMEOUT"]))




def _claim(limit: int, lease_seconds: float) -> list[_Job]:
    """Lease up to `limit` due rows for this worker; no other worker can take them until the lease passes."""
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    due = sa.select(OutboxScore.id).where(due_filter(now)).order_by(OutboxScore.next_attempt_at,
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
               if rowcount(db.session.execute(sa.update(_TABLE).where(OutboxScore.id == row_id, due_filter(now))
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


#: How often a long-running worker does the housekeeping (`flask --app lti_tool maintenance purge`).
HOUSEKEEPING_SECONDS = 3600.0


def housekeeping_due(last: float | None) -> bool:
    """Whether a long-running worker should purge expired login records now (at start, then hourly)."""
    return last is None or time.monotonic() - last >= HOUSEKEEPING_SECONDS


def housekeeping() -> int:
    """Delete login records past their retention, in a transaction of its own; return how many went.

    A failure is logged, not raised: housekeeping must never stop the scores from being sent.
    """
    from lti_tool.lti.login import purge_login_states

    try:
        removed = purge_login_states()
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("removing expired login records failed; trying again in an hour")
        return 0
    if removed:
        log.info("removed %s expired login record(s)", removed)
    return removed


def _background_loop(app, stop: threading.Event) -> None:
    interval = float(app.config.get("GRADES_SYNC_INTERVAL", 5))
    last_housekeeping: float | None = None
    while not stop.is_set():
        try:
            with app.app_context():
                if housekeeping_due(last_housekeeping):
                    last_housekeeping = time.monotonic()
                    housekeeping()
                report = send_all_due()
                # Emails too, so the demo shows them on /dev/mail without a separate worker.
                from lti_tool import mail_worker

                emails = mail_worker.send_all_due()
            if report.claimed:
                log.info("grades sync: %s", report.summary())
            if emails.claimed:
                log.info("mail: %s", emails.summary())
        except Exception:
            log.exception("grades sync failed; trying again in %s s", interval)
        stop.wait(interval)

