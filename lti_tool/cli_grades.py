"""`flask --app lti_tool grades ...`: send queued scores to the LMS gradebooks, see and retry the outbox."""
import signal
import threading
import time

import click
from flask.cli import AppGroup

from lti_tool import grades_worker
from lti_tool.services import passback
from lti_tool.transaction import command_transaction

grades_cli = AppGroup("grades", help="Scores for the LMS gradebooks (the AGS outbox).")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "none"


@grades_cli.command("sync")
@click.option("--loop", is_flag=True, help="Keep going, a round every --interval seconds (for a process manager).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between rounds with --loop.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="Scores per batch.")
@click.option("--concurrency", type=click.IntRange(min=1, max=128), default=8, show_default=True,
              help="Scores sent at once.")
@click.option("--lease-seconds", type=click.FloatRange(min=1), default=60, show_default=True,
              help="How long a batch is reserved for this worker (a killed worker's batch is free after it); "
                   "more than 4 × LTI_HTTP_TIMEOUT + 6 s, since every send ends 5 s before its lease.")
def sync(loop, interval, limit, concurrency, lease_seconds):
    """Send the scores that are due; print what happened."""
    stop = threading.Event()
    if loop and threading.current_thread() is threading.main_thread():
        # A process manager's SIGTERM ends the loop after the round in flight, not in the middle of it.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last_housekeeping: float | None = None
    while True:
        if loop and grades_worker.housekeeping_due(last_housekeeping):
            # A long-running worker keeps the login records small, so no scheduler is needed for them.
            last_housekeeping = time.monotonic()
            grades_worker.housekeeping()
        try:
            report = grades_worker.send_all_due(limit, concurrency=concurrency, lease_seconds=lease_seconds)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        if report.claimed or not loop:
            click.echo(f"{time.strftime('%H:%M:%S')} {report.summary()}")
            for error in report.errors:
                click.echo(f"  {error}")
        if not loop:
            return
        try:
            if stop.wait(interval):
                return
        except KeyboardInterrupt:
            return


@grades_cli.command("status")
def status():
    """Count the outbox's scores by status; show the oldest pending and the next retry."""
    state = passback.outbox_status()
    for name, count in state.counts.items():
        click.echo(f"{name}: {count}")
    click.echo(f"due now: {state.due_now}")
    click.echo(f"being sent (leased): {state.leased}")
    click.echo(f"oldest pending: {_when(state.oldest_pending)}")
    click.echo(f"next attempt: {_when(state.next_attempt)}")


@grades_cli.command("retry")
@click.option("--id", "score_ids", type=int, multiple=True, help="A failed score's number (repeatable).")
@click.option("--all-failed", is_flag=True, help="Every failed score.")
def retry(score_ids, all_failed):
    """Send failed scores again at the next sync, each with a new timestamp (it replaces what the LMS has)."""
    with command_transaction():
        if not score_ids and not all_failed:
            raise click.ClickException("Give --id N (repeatable) or --all-failed.")
        count = passback.retry_all_failed() if all_failed else passback.retry(score_ids)
    click.echo(f"{count} score(s) queued again.")
    if score_ids and count < len(set(score_ids)):
        click.echo("Only failed scores can be retried; the others are pending, sent or unknown.")
