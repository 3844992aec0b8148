"""Emails the program promises members: written from templates and queued in the same transaction as what caused
them (a registration, a certificate, a reminder), then sent by the worker (`flask --app lti_tool worker run`).

Delivery is at most once. A worker leases the rows it takes (SKIP LOCKED on PostgreSQL, a conditional UPDATE on
SQLite), records an outcome only while its lease holds, and retries with backoff only what certainly did not
arrive (no connection, a 4xx answer). A send cut off after the message went out (a dropped connection, a
timeout during DATA, a worker killed mid-send whose lease then ran out) may have arrived: it is marked failed
with words saying so, for a person to check with the member before sending it again (`mail retry`). Every
attempt carries the same Message-ID.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import make_msgid
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app, render_template

from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Certificate, OutboxMail, Person, Registration
from lti_tool.models.base import insert_once, rowcount, utcnow

log = logging.getLogger("lti_tool.mail")

#: Retry timing (seconds) unless the app's config says otherwise: 30 s doubling, at most six hours apart.
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 6 * 3600.0
#: After this many attempts that certainly did not arrive (about two days), a person looks at it.
MAX_ATTEMPTS = 16
#: "Close to completion": one requirement left and at most this many hours short.
REMIND_WITHIN_HOURS = 6
#: A reminder goes to one member at most this often.
REMINDER_INTERVAL_DAYS = 30

_TABLE = cast(sa.Table, OutboxMail.__table__)


class MailError(ValueError):
    """A mail action that is refused."""


# -- what the program queues --------------------------------------------------------------------------------

def queue(*, kind: str, dedupe_key: str, to_address: str, person_id: int | None, template: str,
          context: dict[str, Any], attachments: list[dict] | None = None) -> bool:
    """Write an email from `mail/<template>.txt`, `.html` and `_subject.txt` and queue it; return whether it is
    new (an email with the same `dedupe_key` is never queued twice)."""
    context = {**_common_context(), **context}
    subject = " ".join(render_template(f"mail/{template}_subject.txt", **context).split())
    now = utcnow()
    domain = (current_app.config.get("MAIL_FROM") or "").rpartition("@")[2].strip("> ") or "localhost"
    values = {
        "kind": kind, "dedupe_key": dedupe_key, "person_id": person_id, "to_address": to_address,
        "subject": subject[:300], "text_body": render_template(f"mail/{template}.txt", **context),
        "html_body": render_template(f"mail/{template}.html", **context), "attachments": attachments,
        "message_id": make_msgid(domain=domain), "status": "pending", "attempts": 0, "next_attempt_at": now,
        "created_at": now, "updated_at": now}
    # One statement: two requests at once (a double submit) still queue one email.
    _, inserted = insert_once(db.session, OutboxMail, values, conflict=["dedupe_key"])
    return inserted


def _common_context() -> dict[str, Any]:
    catalog = current_catalog()
    return {"program": catalog.program, "base_url": current_app.config["PUBLIC_BASE_URL"]}


def member_address(person_id: int) -> str | None:
    """Return where to write to a member: the registration's email, else the person's, else an LMS account's."""
    registered = db.session.scalar(sa.select(Registration.email).where(Registration.person_id == person_id))
    if registered:
        return registered
    person = db.session.get(Person, person_id)
    if person is not None and person.email:
        return person.email
    return db.session.scalar(sa.select(Account.email).where(
        Account.person_id == person_id, Account.email.is_not(None)).order_by(Account.last_launch_at.desc()))


def queue_registration_email(registration: Registration) -> bool:
    """Queue the welcome email: the requirements, the modules and how to reach them, upcoming workshops and the
    program contact. Once per person, however often the form is saved."""
    from lti_tool.services.offerings import offerings

    return queue(kind="registration", dedupe_key=f"registration:{registration.person_id}",
                 to_address=registration.email, person_id=registration.person_id, template="registration",
                 context={"name": registration.name, "offerings": offerings()})


def queue_certificate_email(certificate: Certificate) -> bool:
    """Queue the certificate email with its PDF attached and its verification address (once per certificate)."""
    from lti_tool.services.certificates import verification_url

    address = member_address(certificate.person_id)
    if not address:
        log.warning("certificate %s issued to person %s, who has no email address: no email queued",
                    certificate.number, certificate.person_id)
        return False
    return queue(kind="certificate", dedupe_key=f"certificate:{certificate.number}", to_address=address,
                 person_id=certificate.person_id, template="certificate",
                 context={"name": certificate.holder_name, "number": certificate.number,
                          "verification_url": verification_url(certificate.number),
                          "total_hours": certificate.total_hours},
                 attachments=[{"kind": "certificate_pdf", "number": certificate.number}])


@dataclass(frozen=True)
class ReminderCandidate:
    person_id: int
    name: str
    email: str
    what_is_left: tuple[str, ...]


def members_close_to_completion() -> list[ReminderCandidate]:
    """Return registered members without a certificate whom one requirement, of at most six hours, separates from
    it."""
    from lti_tool.services.ledger import person_progress

    rows = db.session.execute(sa.select(Registration.person_id, Registration.name, Registration.email).where(
        Registration.person_id.not_in(sa.select(Certificate.person_id))).order_by(Registration.name)).all()
    found = []
    for person_id, name, email in rows:
        progress = person_progress(person_id)
        left = progress.what_is_left
        short = progress.total_required - progress.total_hours
        # One requirement left, and no more than a day's training of it (one module or workshop day).
        if not progress.met and progress.total_hours > 0 and len(left) == 1 and short <= REMIND_WITHIN_HOURS:
            found.append(ReminderCandidate(person_id=person_id, name=name, email=email, what_is_left=tuple(left)))
    return found


@dataclass
class ReminderReport:
    queued: list[ReminderCandidate] = field(default_factory=list)
    #: Reminded within the last REMINDER_INTERVAL_DAYS: not written to again yet.
    recently_reminded: list[ReminderCandidate] = field(default_factory=list)


def send_reminders(*, dry_run: bool = False, actor_account_id: int | None = None) -> ReminderReport:
    """Queue a reminder to each member close to completion not reminded in the last 30 days; with `dry_run`, only
    say who would get one. Audited (who asked, how many)."""
    from lti_tool.services import audit

    report = ReminderReport()
    since = utcnow() - timedelta(days=REMINDER_INTERVAL_DAYS)
    recent = set(db.session.scalars(sa.select(OutboxMail.person_id).where(
        OutboxMail.kind == "reminder", OutboxMail.created_at >= since, OutboxMail.status != "failed")))
    today = utcnow().date().isoformat()
    for candidate in members_close_to_completion():
        if candidate.person_id in recent:
            report.recently_reminded.append(candidate)
            continue
        if not dry_run:
            queue(kind="reminder", dedupe_key=f"reminder:{candidate.person_id}:{today}", to_address=candidate.email,
                  person_id=candidate.person_id, template="reminder",
                  context={"name": candidate.name, "what_is_left": candidate.what_is_left})
        report.queued.append(candidate)
    if not dry_run:
        audit.record("mail.remind", actor_account_id=actor_account_id, person_id=None,
                     queued=len(report.queued), skipped_recent=len(report.recently_reminded))
    db.session.flush()
    return report


# -- what people see and do -----------------------------------------------------------------------------------

def recent(limit: int = 50) -> list[OutboxMail]:
    """Return the latest emails, newest first (the development page)."""
    return list(db.session.scalars(sa.select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)))


def status_counts() -> dict[str, int]:
    """Count the emails by status."""
    counts = dict(db.session.execute(sa.select(OutboxMail.status, sa.func.count()).group_by(OutboxMail.status)).all())
    return {status: counts.get(status, 0) for status in ("pending", "sent", "failed")} | counts


def failed() -> list[OutboxMail]:
    """Return the emails that failed, newest first."""
    return list(db.session.scalars(sa.select(OutboxMail).where(OutboxMail.status == "failed")
                                   .order_by(OutboxMail.updated_at.desc())))


def retry(mail_ids, *, actor_account_id: int | None = None) -> int:
    """Send failed emails again at the next worker pass (a person decided to); audited. Return how many."""
    from lti_tool.services import audit

    ids = sorted({int(i) for i in mail_ids})
    now = utcnow()
    result = db.session.execute(sa.update(_TABLE).where(
        OutboxMail.id.in_(ids), OutboxMail.status == "failed").values(
        status="pending", attempts=0, next_attempt_at=now, leased_until=None, updated_at=now))
    count = rowcount(result)
    if count:
        audit.record("mail.retry", actor_account_id=actor_account_id, person_id=None, mail_ids=ids[:200],
                     count=count)
        db.session.flush()
    return count
