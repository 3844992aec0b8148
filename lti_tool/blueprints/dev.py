"""Development pages that go with the demo LMS: the emails the tool wrote (only when the demo is on)."""
from flask import Blueprint, flash, redirect, render_template, url_for

from lti_tool import mail_worker
from lti_tool.services import mail

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/mail")
def mail_page():
    """Show the latest emails the tool queued, as members would read them, and whether they went out."""
    return render_template("dev/mail.html", emails=mail.recent(), counts=mail.status_counts(),
                           transport=mail_worker.transport())


@bp.post("/mail/send")
def send_mail():
    """Send the queued emails now (what the worker does every few seconds)."""
    report = mail_worker.send_all_due()
    flash(f"Emails: {report.summary()}.", "success")
    return redirect(url_for("dev.mail_page"), code=303)
