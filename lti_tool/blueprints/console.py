"""The staff's console: platforms, keys, launch log, gradebook queue, emails, offerings and program reports
(program admins only).

Views parse, call the same services as the CLI, commit once, and render.
"""
from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from lti_tool import transaction
from lti_tool.blueprints.admin import program_admin_required
from lti_tool.catalog import current_catalog
from lti_tool.lti.registration import tool_urls
from lti_tool.services import (
    exports,
    gradebook_queue,
    invitations,
    launch_log,
    mail,
    offerings,
    platforms,
    reports,
    tool_keys,
)

bp = Blueprint("console", __name__, url_prefix="/l/<launch_id>/admin")


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _actor() -> int:
    return g.launch.account_id


# -- platforms ---------------------------------------------------------------------------------------------------

def _platforms_page(status: int = 200, **extra):
    base_url = current_app.config["PUBLIC_BASE_URL"]
    return render_template(
        "admin/platforms.html", launch=g.launch, platforms=platforms.all_platforms(),
        last_launches=launch_log.last_launches(), urls=tool_urls(base_url),
        invitations=invitations.all_invitations()[:50], invitation_status=invitations.status, **extra), status


@bp.get("/platforms")
@program_admin_required
def platforms_page(launch_id: str):
    """List the registrations with what to paste into an LMS, and the Dynamic Registration links."""
    return _platforms_page()


@bp.post("/platforms/<int:platform_id>/check")
@program_admin_required
def check(launch_id: str, platform_id: int):
    """Fetch the platform's key set and configuration and say what is wrong."""
    try:
        platform, result = platforms.check(platform_id, actor_account_id=_actor(), via="console")
    except platforms.PlatformError as exc:
        abort(404, description=str(exc))
    return _platforms_page(check=result, checked=platform)


@bp.post("/platforms/<int:platform_id>/disable")
@program_admin_required
def disable(launch_id: str, platform_id: int):
    """Refuse every launch through a registration, with a reason."""
    if platform_id == g.launch.platform_id:
        flash("You are signed in through this registration: disable it from another one, or with "
              "`flask --app lti_tool platform disable`.", "error")
        return redirect(url_for("console.platforms_page", launch_id=launch_id), code=303)
    return _platform_action(lambda: platforms.disable_platform(
        platform_id, reason=request.form.get("reason", ""), actor_account_id=_actor()),
        "Registration {name} is disabled: its launches are refused.")


@bp.post("/platforms/<int:platform_id>/enable")
@program_admin_required
def enable(launch_id: str, platform_id: int):
    """Accept launches through a disabled registration again."""
    return _platform_action(lambda: platforms.enable_platform(platform_id, actor_account_id=_actor()),
                            "Registration {name} is enabled.")


def _platform_action(action, success: str):
    try:
        platform = action()
    except platforms.PlatformError as exc:
        transaction.abandon()
        flash(str(exc), "error")
    else:
        flash(success.format(name=platform.name), "success")
    return redirect(url_for("console.platforms_page", launch_id=g.launch.id), code=303)


@bp.post("/registration-links")
@program_admin_required
def create_link(launch_id: str):
    """Make a one-time Dynamic Registration link and show it this once."""
    try:
        lifetime = invitations.parse_lifetime(request.form.get("expires_in", "") or "7d")
        created = invitations.create(request.form.get("name", ""), current_app.config["PUBLIC_BASE_URL"], lifetime,
                                     actor_account_id=_actor(), via="console")
    except invitations.InvitationError as exc:
        transaction.abandon()
        return _platforms_page(400, link_error=str(exc))
    # Shown in this answer only: the tool keeps just a hash of the link's secret.
    return _platforms_page(new_link=created)


@bp.post("/registration-links/<int:invitation_id>/revoke")
@program_admin_required
def revoke_link(launch_id: str, invitation_id: int):
    """Withdraw an unused Dynamic Registration link."""
    try:
        invitation = invitations.revoke(invitation_id, actor_account_id=_actor(), via="console")
    except invitations.InvitationError as exc:
        transaction.abandon()
        flash(exc.message, "error")
    else:
        flash(f"The link for {invitation.name} is revoked.", "success")
    return redirect(url_for("console.platforms_page", launch_id=launch_id), code=303)


# -- keys --------------------------------------------------------------------------------------------------------

@bp.get("/keys")
@program_admin_required
def keys_page(launch_id: str):
    """Show the active and previous signing keys with their ages."""
    return render_template("admin/keys.html", launch=g.launch, keys=tool_keys.key_rows(),
                           jwks_url=tool_urls(current_app.config["PUBLIC_BASE_URL"])["jwks"])


@bp.post("/keys/rotate")
@program_admin_required
def rotate_keys(launch_id: str):
    """Make a new signing key; the previous one stays published."""
    key = tool_keys.rotate(actor_account_id=_actor(), via="console")
    flash(f"New active key {key.kid}. The key set publishes it and the previous key, so nothing signed "
          "before stops working.", "success")
    return redirect(url_for("console.keys_page", launch_id=launch_id), code=303)


# -- launch log --------------------------------------------------------------------------------------------------

@bp.get("/launches")
@program_admin_required
def launches_page(launch_id: str):
    """Show recent launches and refused launches, by platform and reason."""
    days = current_app.config["LAUNCH_LOG_DAYS"]
    platform_id = _int_arg("platform")
    reason = request.args.get("reason", "")[:50] or None
    return render_template(
        "admin/launches.html", launch=g.launch, days=days, platforms=platforms.all_platforms(),
        platform_id=platform_id, reason=reason, reasons=launch_log.reasons_seen(days),
        refusals=launch_log.refusals(platform_id=platform_id, reason=reason, days=days),
        launches=launch_log.recent_launches(platform_id=platform_id, days=days) if not reason else [])


# -- gradebook queue ---------------------------------------------------------------------------------------------

@bp.get("/gradebook")
@program_admin_required
def gradebook_page(launch_id: str):
    """Show the scores by course and platform and status, with the LMS's answer."""
    asked = request.args.get("status", "")
    status = asked if asked in gradebook_queue.STATUSES else None
    platform_id, course_id = _int_arg("platform"), _int_arg("course")
    return render_template(
        "admin/gradebook.html", launch=g.launch, statuses=gradebook_queue.STATUSES, status=status,
        platform_id=platform_id, course_id=course_id, platforms=platforms.all_platforms(),
        counts=gradebook_queue.counts_by_course(),
        scores=gradebook_queue.scores(status=status, platform_id=platform_id, course_id=course_id))


def _score_ids() -> list[int]:
    ids = [v for v in request.form.getlist("score_id") if v.isdigit()]
    if len(ids) > 500:
        abort(400, description="Choose at most 500 scores at a time.")
    return [int(v) for v in ids]


def _back_to_queue():
    back = request.form.get("back") or ""
    # Only back to a page of this launch (never an address the form was given from elsewhere).
    if not back.startswith(f"/l/{g.launch.id}/admin/gradebook"):
        back = url_for("console.gradebook_page", launch_id=g.launch.id)
    return redirect(back, code=303)


@bp.post("/gradebook/retry")
@program_admin_required
def retry_scores(launch_id: str):
    """Send the chosen failed scores again."""
    ids = _score_ids()
    if not ids:
        flash("Choose the scores to retry.", "error")
        return _back_to_queue()
    count = gradebook_queue.retry(ids, actor_account_id=_actor())
    flash(f"{count} score(s) will be sent again in a moment." if count else
          "Nothing to retry: only failed scores can be retried.", "success")
    return _back_to_queue()


@bp.post("/gradebook/discard")
@program_admin_required
def discard_scores(launch_id: str):
    """Stop sending the chosen scores, with a reason."""
    try:
        count = gradebook_queue.discard(_score_ids(), reason=request.form.get("reason", ""),
                                        actor_account_id=_actor())
    except gradebook_queue.QueueError as exc:
        transaction.abandon()
        flash(str(exc), "error")
        return _back_to_queue()
    flash(f"{count} score(s) discarded: they will not be sent." if count else
          "Nothing was discarded: only failed or waiting scores that are not being sent right now can be.", "success")
    return _back_to_queue()


# -- emails ------------------------------------------------------------------------------------------------------

@bp.get("/emails")
@program_admin_required
def emails_page(launch_id: str):
    """Count the emails by status, list the failed ones, and preview the reminders on request."""
    # The preview reads every registered member's progress: only when asked for.
    preview = mail.send_reminders(dry_run=True) if request.args.get("preview") else None
    return render_template("admin/emails.html", launch=g.launch, counts=mail.status_counts(), failed=mail.failed(),
                           preview=preview, interval_days=mail.REMINDER_INTERVAL_DAYS)


def _back_to_emails():
    return redirect(url_for("console.emails_page", launch_id=g.launch.id), code=303)


@bp.post("/emails/retry")
@program_admin_required
def retry_emails(launch_id: str):
    """Send the chosen failed emails again at the worker's next pass."""
    ids = [v for v in request.form.getlist("mail_id") if v.isdigit()]
    if len(ids) > 500:
        abort(400, description="Choose at most 500 emails at a time.")
    if not ids:
        flash("Choose the emails to retry.", "error")
        return _back_to_emails()
    count = mail.retry(ids, actor_account_id=_actor())
    flash(f"{count} email(s) will be sent again in a moment." if count else
          "Nothing to retry: only failed emails can be retried.", "success")
    return _back_to_emails()


@bp.post("/emails/reminders")
@program_admin_required
def send_reminders(launch_id: str):
    """Queue a reminder to each member one requirement from the certificate not reminded lately."""
    report = mail.send_reminders(dry_run=False, actor_account_id=_actor())
    queued = len(report.queued)
    if queued:
        flash(f"{queued} reminder(s) queued: the mail worker sends them in a moment.", "success")
    else:
        flash("No reminder queued: nobody is one requirement from the certificate, or they were all reminded in "
              f"the last {mail.REMINDER_INTERVAL_DAYS} days.", "success")
    return _back_to_emails()


# -- offerings ---------------------------------------------------------------------------------------------------

@bp.get("/offerings")
@program_admin_required
def offerings_page(launch_id: str):
    """List the placed workshops, upcoming first, and whether each is listed on /offerings."""
    return render_template("admin/offerings.html", launch=g.launch, workshops=offerings.placed_workshops())


@bp.post("/offerings/<int:workshop_id>/publish")
@program_admin_required
def publish_workshop(launch_id: str, workshop_id: int):
    """List a workshop on the public offerings."""
    return _set_public(workshop_id, True)


@bp.post("/offerings/<int:workshop_id>/unpublish")
@program_admin_required
def unpublish_workshop(launch_id: str, workshop_id: int):
    """Take a workshop off the public offerings."""
    return _set_public(workshop_id, False)


def _set_public(workshop_id: int, public: bool):
    try:
        workshop = offerings.set_public(workshop_id, public, actor_account_id=_actor())
    except offerings.OfferingsError as exc:
        transaction.abandon()
        flash(str(exc), "error")
    else:
        when = workshop.session_date.isoformat() if workshop.session_date else "no date yet"
        where = "is listed on" if public else "is taken off"
        flash(f"The workshop {workshop.event_name} ({when}) {where} the public offerings.", "success")
    return redirect(url_for("console.offerings_page", launch_id=g.launch.id), code=303)


# -- reports -----------------------------------------------------------------------------------------------------

def _report(slug: str) -> reports.Report:
    if slug not in reports.REPORTS:
        abort(404, description="There is no such report.")
    return reports.build(slug, current_catalog())


@bp.get("/reports")
@program_admin_required
def reports_page(launch_id: str):
    """List the program reports."""
    return render_template("admin/reports.html", launch=g.launch, reports=reports.REPORTS)


@bp.get("/reports/<slug>")
@program_admin_required
def report_page(launch_id: str, slug: str):
    """Show one report as a table (and a chart where one reads better)."""
    return render_template("admin/report.html", launch=g.launch, report=_report(slug), reports=reports.REPORTS)


@bp.get("/reports/<slug>.csv")
@program_admin_required
def report_csv(launch_id: str, slug: str):
    """Export one report as formula-safe CSV."""
    report = _report(slug)
    return Response(exports.as_csv(report.csv_rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="bargaining-certificate-{slug}.csv"'})


@bp.get("/reports/<slug>.svg")
@program_admin_required
def report_chart(launch_id: str, slug: str):
    """Draw one report's chart as SVG."""
    report = _report(slug)
    if report.chart is None:
        abort(404, description="This report has no chart.")
    # An image, never a document: no scripts, no outside addresses, even if opened on its own.
    return Response(reports.chart_svg(report), mimetype="image/svg+xml",
                    headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                             "X-Content-Type-Options": "nosniff"})
