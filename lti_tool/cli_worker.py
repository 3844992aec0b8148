"""`flask --app lti_tool worker run`, `mail ...` and `workshops ...`: the worker that sends everything due
(gradebook scores and emails), the mail outbox, and publishing workshops on the offerings."""
import signal
import threading
import time

import click
from flask.cli import AppGroup

from lti_tool import grades_worker, mail_worker
from lti_tool.extensions import db
from lti_tool.services import mail, offerings

worker_cli = AppGroup("worker", help="The background worker: gradebook scores and emails.")
mail_cli = AppGroup("mail", help="Emails to members (the mail outbox).")
workshops_cli = AppGroup("workshops", help="Workshops on the public offerings.")


def run_once(*, limit: int = 200, concurrency: int = 8, lease_seconds: float = 60,
             mail_lease_seconds: float = 180) -> tuple[grades_worker.SendReport, mail_worker.MailReport]:
    """Send every score and email that is due now; return both reports."""
    scores = grades_worker.send_all_due(limit, concurrency=concurrency, lease_seconds=lease_seconds)
    emails = mail_worker.send_all_due(lease_seconds=mail_lease_seconds)
    return scores, emails


@worker_cli.command("run")
@click.option("--once", is_flag=True, help="One pass over everything due, then stop.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between passes.")
@click.option("--concurrency", type=click.IntRange(min=1, max=128), default=8, show_default=True,
              help="Scores sent at once.")
@click.option("--lease-seconds", type=click.FloatRange(min=1), default=60, show_default=True,
              help="How long a batch of scores is reserved for this worker (see `grades sync --help`).")
def run(once, interval, concurrency, lease_seconds):
    """Send the scores and emails that are due, every --interval seconds (or once)."""
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        # A process manager's SIGTERM ends the loop after the pass in flight, not in the middle of a send.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        try:
            scores, emails = run_once(concurrency=concurrency, lease_seconds=lease_seconds)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        if scores.claimed or emails.claimed or emails.deferred or once:
            click.echo(f"{time.strftime('%H:%M:%S')} scores: {scores.summary()}; emails: {emails.summary()}")
            for error in (scores.errors + emails.errors)[:20]:
                click.echo(f"  {error}")
        if once:
            return
        try:
            if stop.wait(interval):
                return
        except KeyboardInterrupt:
            return


@mail_cli.command("remind")
@click.option("--dry-run", is_flag=True, help="Only list who would get a reminder.")
def remind(dry_run):
    """Queue a reminder to each registered member one requirement from the certificate (at most every 30 days)."""
    report = mail.send_reminders(dry_run=dry_run)
    db.session.commit()
    verb = "would get" if dry_run else "queued for"
    click.echo(f"Reminders {verb} {len(report.queued)} member(s):")
    for candidate in report.queued:
        click.echo(f"  person {candidate.person_id} ({candidate.email}): {'; '.join(candidate.what_is_left)}")
    if report.recently_reminded:
        click.echo(f"{len(report.recently_reminded)} member(s) had a reminder in the last "
                   f"{mail.REMINDER_INTERVAL_DAYS} days and are left out.")
    if not dry_run and report.queued:
        click.echo("The worker (`worker run`) sends them.")


@mail_cli.command("status")
def status():
    """Count the emails by status and list the failed ones."""
    for name, count in mail.status_counts().items():
        click.echo(f"{name}: {count}")
    for row in mail.failed():
        click.echo(f"  failed {row.id} ({row.kind}, person {row.person_id}): {row.last_error}")


@mail_cli.command("retry")
@click.option("--id", "mail_ids", type=int, multiple=True, help="A failed email's number (repeatable).")
@click.option("--all-failed", is_flag=True, help="Every failed email.")
def retry(mail_ids, all_failed):
    """Send failed emails again at the worker's next pass."""
    if not mail_ids and not all_failed:
        raise click.ClickException("Give --id N (repeatable) or --all-failed.")
    count = mail.retry([row.id for row in mail.failed()] if all_failed else mail_ids)
    db.session.commit()
    click.echo(f"{count} email(s) queued again.")


def _publish(workshop_id: int, public: bool) -> None:
    try:
        workshop = offerings.set_public(workshop_id, public, actor_account_id=None)
    except offerings.OfferingsError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    where = "listed on" if public else "taken off"
    click.echo(f"Workshop {workshop.id} ({workshop.event_name}, {workshop.session_date or 'no date'}) is {where} "
               "the public offerings.")


@workshops_cli.command("publish")
@click.argument("workshop_id", type=int)
def publish(workshop_id):
    """List a workshop on /offerings, its PDF and calendar."""
    _publish(workshop_id, True)


@workshops_cli.command("unpublish")
@click.argument("workshop_id", type=int)
def unpublish(workshop_id):
    """Take a workshop off the public offerings."""
    _publish(workshop_id, False)


@workshops_cli.command("list")
def list_workshops():
    """List the workshops with their numbers, dates and whether they are public."""
    import sqlalchemy as sa

    from lti_tool.models import Workshop

    for workshop in db.session.scalars(sa.select(Workshop).order_by(Workshop.session_date, Workshop.id)):
        click.echo(f"{workshop.id}\t{workshop.session_date or 'no date'}\t{workshop.module_slug}\t"
                   f"{workshop.event_name}\t{workshop.venue or ''}\t{'public' if workshop.public else 'not listed'}")
