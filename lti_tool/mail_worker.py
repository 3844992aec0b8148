"""The mail worker: sends the emails `services/mail.py` queued, through SMTP (or the log in development).

It runs outside requests (`flask --app lti_tool worker run`, the development background thread, the demo's
"send now") and keeps its own, documented transactions: it commits each lease before sending, so no other worker
takes the rows, and each outcome after.

Delivery is at most once. A worker leases the rows it takes (SKIP LOCKED on PostgreSQL, a conditional UPDATE on
SQLite), records an outcome only while its lease holds, and retries with backoff only what certainly did not
arrive (no connection, a 4xx answer). A send cut off after the message went out may have arrived: it is marked
failed with words saying so, for a person to check before sending it again (`mail retry`).
"""
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from flask import current_app

from lti_tool import retry
from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import OutboxMail
from lti_tool.models.base import rowcount, utcnow
from lti_tool.services.mail import _TABLE, MAX_ATTEMPTS, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS

log = logging.getLogger("lti_tool.mail")


@dataclass
class MailReport:
    """What one run of the mail worker did."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    #: Not sent this time (production without SMTP settings).
    deferred: int = 0
    lease_lost: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Say what happened in one line."""
        return (f"{self.sent} emails sent, {self.retrying} to retry, {self.failed} failed, {self.deferred} deferred"
                f"{f', {self.lease_lost} left to another worker' if self.lease_lost else ''} ({self.claimed} taken)")


class _Uncertain(Exception):
    """The message may have reached the server: never sent again by the worker."""


class _Permanent(Exception):
    """The server refused the message for good (a 5xx answer)."""


class _Transient(Exception):
    """The message certainly did not arrive (no connection, a 4xx answer): try again later."""


def _setting(name: str, default=None):
    return current_app.config.get(name, default)


def transport() -> str | None:
    """Return how mail leaves: "smtp", "log" (development without SMTP_HOST), or None (production without it)."""
    if _setting("SMTP_HOST"):
        return "smtp"
    return None if _setting("ENV_MODE") == "production" else "log"


def backoff_seconds(attempt: int) -> float:
    """Return how long to wait after the `attempt`-th failure: 30 s doubling, capped, with jitter."""
    return retry.backoff_seconds(attempt, float(_setting("MAIL_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)),
                                 float(_setting("MAIL_RETRY_MAX_SECONDS", RETRY_MAX_SECONDS)))


def _due(now):
    return sa.and_(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now,
                   sa.or_(OutboxMail.leased_until.is_(None), OutboxMail.leased_until < now))


def _claim(limit: int, lease_seconds: float) -> tuple[list[int], Any]:
    now = utcnow()
    lease = now + timedelta(seconds=lease_seconds)
    # A row whose lease ran out without an outcome was being sent by a worker that died (or hung): it may have
    # arrived, so it is not sent again; a person decides.
    db.session.execute(sa.update(_TABLE).where(_due(now), OutboxMail.leased_until.is_not(None)).values(
        status="failed", leased_until=None, updated_at=now,
        last_error="A worker stopped while sending this email: it may have arrived. Check with the member "
                   "before sending it again."))
    due = sa.select(OutboxMail.id).where(_due(now)).order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit)
    if db.session.get_bind().dialect.name == "postgresql":
        ids = list(db.session.scalars(due.with_for_update(skip_locked=True)))  # others' claims are skipped
    else:
        ids = list(db.session.scalars(due))
    # The conditional UPDATE is the claim (SQLite has no SKIP LOCKED): its rowcount says who won.
    taken = [row_id for row_id in ids
             if rowcount(db.session.execute(sa.update(_TABLE).where(OutboxMail.id == row_id, _due(now))
                                            .values(leased_until=lease))) == 1]
    return taken, lease


def _finish(row_id: int, lease, report: MailReport, **values) -> bool:
    done = rowcount(db.session.execute(sa.update(_TABLE).where(
        OutboxMail.id == row_id, OutboxMail.leased_until == lease, OutboxMail.status == "pending")
        .values(leased_until=None, updated_at=utcnow(), **values))) == 1
    if not done:
        report.lease_lost += 1
    return done


def build_message(row: OutboxMail) -> EmailMessage:
    """Build the MIME message: plain text and HTML alternatives, and the attachments."""
    message = EmailMessage()
    message["From"] = _setting("MAIL_FROM") or "Bargaining Certificate <bargaining-certificate@localhost>"
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    contact = current_catalog().program.contact_email
    if contact:
        message["Reply-To"] = contact
    message.set_content(row.text_body)
    message.add_alternative(row.html_body, subtype="html")
    for attachment in row.attachments or ():
        if attachment.get("kind") == "certificate_pdf":
            from lti_tool.certificate_documents import render_pdf
            from lti_tool.services.certificates import document_data, find_by_number

            certificate = find_by_number(attachment["number"])
            if certificate is None:
                raise _Permanent(f"certificate {attachment['number']} no longer exists")
            message.add_attachment(render_pdf(document_data(certificate)), maintype="application", subtype="pdf",
                                   filename=f"Bargaining-Certificate-{certificate.number}.pdf")
    return message


def _smtp_send(message: EmailMessage) -> None:
    host, port = _setting("SMTP_HOST"), int(_setting("SMTP_PORT") or 587)
    tls = (_setting("SMTP_TLS") or "starttls").lower()
    timeout = float(_setting("SMTP_TIMEOUT", 20))
    context = ssl.create_default_context()
    try:
        if tls == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            server = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if tls == "starttls":
                server.starttls(context=context)
            if _setting("SMTP_USER"):
                server.login(_setting("SMTP_USER"), _setting("SMTP_PASSWORD") or "")
        except BaseException:
            server.close()
            raise
    except smtplib.SMTPResponseException as exc:
        raise (_Permanent if exc.smtp_code >= 500 else _Transient)(f"SMTP {exc.smtp_code} before sending") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _Transient(f"could not reach the SMTP server: {exc.__class__.__name__}") from exc
    try:
        server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise (_Permanent if all(c >= 500 for c in codes) else _Transient)(
            f"SMTP refused the recipient ({', '.join(map(str, codes))})") from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        # The server answered: the message was not taken.
        raise (_Permanent if exc.smtp_code >= 500 else _Transient)(f"SMTP {exc.smtp_code}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _Uncertain(f"the connection ended during the send ({exc.__class__.__name__})") from exc
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            server.close()


def _log_send(message: EmailMessage) -> None:
    # Development without SMTP settings: the email goes to the log (and the /dev/mail page reads the outbox).
    text = message.get_body(preferencelist=("plain",))
    log.info("email (not sent, no SMTP_HOST) to %s: %s\n%s", message["To"], message["Subject"],
             text.get_content() if text is not None else "")


_WORDS = {
    _Permanent: "The mail server refused this email for good ({}). Check the address with the member, then retry.",
    _Transient: "The mail server could not take it yet ({}); it is tried again later.",
    _Uncertain: "The connection ended while sending ({}): it may have arrived. Check with the member before "
                "sending it again.",
}


def send_due(limit: int = 50, *, lease_seconds: float = 120) -> MailReport:
    """Send up to `limit` due emails, one at a time; return what happened. Commits (it is a worker): each email's
    lease, then its outcome, each in its own short transaction."""
    report = MailReport()
    via = transport()
    if via is None:
        pending = db.session.scalar(sa.select(sa.func.count()).where(_due(utcnow())))
        if pending:
            log.warning("%s emails wait: set SMTP_HOST (and MAIL_FROM) to send them", pending)
            report.deferred = pending or 0
        return report
    timeout = float(_setting("SMTP_TIMEOUT", 20))
    if lease_seconds < 6 * timeout + 5:
        raise ValueError("lease_seconds must exceed 6 × SMTP_TIMEOUT + 5 s (an SMTP session's few answers)")
    for _ in range(limit):
        # One email per lease: a worker killed mid-send leaves one email in doubt, not a batch never tried.
        ids, lease = _claim(1, lease_seconds)
        db.session.commit()
        if not ids:
            break
        row_id = ids[0]
        report.claimed += 1
        # Read afresh: the worker's session lives for the whole process, and outcomes are written with UPDATEs.
        row = db.session.scalars(sa.select(OutboxMail).where(OutboxMail.id == row_id)
                                 .execution_options(populate_existing=True)).one()
        attempts = row.attempts + 1
        try:
            message = build_message(row)
            if via == "smtp":
                _smtp_send(message)
            else:
                _log_send(message)
        except _Transient as exc:
            give_up = attempts >= int(_setting("MAIL_MAX_ATTEMPTS", MAX_ATTEMPTS))
            words = _WORDS[_Transient].format(exc)
            if give_up:
                words = f"{words} It failed {attempts} times: check the mail settings, then retry."
            if _finish(row_id, lease, report, attempts=attempts, last_error=words,
                       status="failed" if give_up else "pending",
                       next_attempt_at=utcnow() + timedelta(seconds=backoff_seconds(attempts))):
                report.failed += give_up
                report.retrying += not give_up
            report.errors.append(f"email {row_id}: {exc}")
        except (_Permanent, _Uncertain) as exc:
            if _finish(row_id, lease, report, attempts=attempts, status="failed",
                       last_error=_WORDS[type(exc)].format(exc)):
                report.failed += 1
            report.errors.append(f"email {row_id}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug or a broken attachment: a person looks at it
            db.session.rollback()
            log.exception("building or sending email %s failed", row_id)
            if _finish(row_id, lease, report, attempts=attempts, status="failed",
                       last_error=f"The tool could not send it ({exc.__class__.__name__}); see the log."):
                report.failed += 1
        else:
            if _finish(row_id, lease, report, attempts=attempts, status="sent", sent_at=utcnow(), sent_via=via,
                       last_error=None):
                report.sent += 1
        db.session.commit()
    return report


def send_all_due(limit: int = 50, *, lease_seconds: float = 120, max_rounds: int = 100) -> MailReport:
    """Send batches until nothing is due now."""
    total = MailReport()
    for _ in range(max_rounds):
        report = send_due(limit, lease_seconds=lease_seconds)
        for name in ("claimed", "sent", "retrying", "failed", "deferred", "lease_lost"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors.extend(report.errors[:20])
        if report.claimed == 0 or report.deferred == report.claimed:
            break
    return total


