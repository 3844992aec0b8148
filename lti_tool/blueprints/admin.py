"""Program admins: find a person, see their ledger, adjust, reverse, merge, split, revoke, export, audit."""
import uuid
from functools import wraps

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, stream_with_context, url_for

from lti_tool import transaction
from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.lti.claims import ToolRole
from lti_tool.models import Account, AuditEvent, Person
from lti_tool.services import certificates as certificate_service
from lti_tool.services import exports, ledger, people

bp = Blueprint("admin", __name__, url_prefix="/l/<launch_id>/admin")


def program_admin_required(view):
    """Require an LMS admin launch by a person granted program-admin access."""

    @launch_required(ToolRole.ADMIN)
    @wraps(view)
    def wrapped(*args, **kwargs):
        person = g.launch.account.person
        if person is None or not person.program_admin:
            abort(403, description="Program administration is for people granted access by the tool's operator "
                                   "(`flask --app lti_tool admins grant --platform <LMS> --sub <your LMS user id>`).")
        return view(*args, **kwargs)

    return wrapped


def _person_or_404(person_id: int) -> Person:
    person = db.session.get(Person, person_id)
    if person is None:
        abort(404, description="There is no such person.")
    return person


def _back(launch_id, person_id):
    return redirect(url_for("admin.person", launch_id=launch_id, person_id=person_id), code=303)


@bp.get("/")
@program_admin_required
def people_list(launch_id: str):
    """Find people by name, email or certificate number."""
    query = request.args.get("q", "")
    found = people.find_people(query)
    return render_template("admin/people.html", launch=g.launch, query=query, found=found)


@bp.get("/people/<int:person_id>")
@program_admin_required
def person(launch_id: str, person_id: int):
    """Show a person's registration, accounts, ledger, progress and certificate, with the admin actions."""
    subject = _person_or_404(person_id)
    return render_template(
        "admin/person.html", launch=g.launch, person=subject, ledger=ledger.person_ledger(person_id),
        registration=people.registration_for(person_id), certificate=certificate_service.certificate_for(person_id),
        catalog=current_catalog(), request_id=str(uuid.uuid4()),
        reversed_ids={e.reverses_entry_id for e in ledger.entries_for_person(person_id) if e.reverses_entry_id})


def _run(action, launch_id, person_id, success):
    """Run an admin action in the request's transaction; `success` is the message, or makes it from the result."""
    try:
        result = action()
    except (ledger.LedgerError, people.PeopleError, certificate_service.CertificateError) as exc:
        transaction.abandon()
        flash(str(exc), "error")
    else:
        flash(success(result) if callable(success) else success, "success")
    return _back(launch_id, person_id)


@bp.post("/people/<int:person_id>/adjust")
@program_admin_required
def adjust(launch_id: str, person_id: int):
    """Add hours by hand, with a reason."""
    _person_or_404(person_id)
    form = request.form

    def act():
        adjustment = ledger.adjust(person_id=person_id, module_slug=form.get("module", ""),
                                   hours=form.get("hours", ""), reason=form.get("reason", ""),
                                   actor_account_id=g.launch.account_id, request_id=form.get("request_id", ""))
        if adjustment.written:
            certificate_service.evaluate(person_id)
        return adjustment

    return _run(act, launch_id, person_id, lambda adjustment: "The adjustment is recorded." if adjustment.written
                else "This adjustment was already recorded (the form was sent twice): nothing new was written.")


@bp.post("/people/<int:person_id>/entries/<int:entry_id>/reverse")
@program_admin_required
def reverse(launch_id: str, person_id: int, entry_id: int):
    """Reverse one ledger entry, with a reason."""
    _person_or_404(person_id)
    if entry_id not in {e.id for e in ledger.entries_for_person(person_id)}:
        abort(404, description="That entry is not in this person's ledger.")

    def act():
        ledger.reverse_entry(entry_id, reason=request.form.get("reason", ""), actor_account_id=g.launch.account_id)
        certificate_service.evaluate(person_id)

    return _run(act, launch_id, person_id, "The entry is reversed.")


@bp.post("/people/<int:person_id>/merge")
@program_admin_required
def merge(launch_id: str, person_id: int):
    """Merge another person into this one, with a reason."""
    _person_or_404(person_id)
    try:
        other_id = int(request.form.get("other_person_id", ""))
    except ValueError:
        flash("Give the number of the person to merge into this one.", "error")
        return _back(launch_id, person_id)
    return _run(lambda: people.admin_merge(person_id, other_id, reason=request.form.get("reason", ""),
                                           actor_account_id=g.launch.account_id),
                launch_id, person_id, f"Person {other_id} is merged into this person.")


@bp.post("/people/<int:person_id>/accounts/<int:account_id>/split")
@program_admin_required
def split(launch_id: str, person_id: int, account_id: int):
    """Split an account off into a person of its own, with a reason."""
    subject = _person_or_404(person_id)
    if account_id not in {a.id for a in subject.accounts}:
        abort(404, description="That account is not this person's.")
    return _run(lambda: people.split_account(account_id, reason=request.form.get("reason", ""),
                                             actor_account_id=g.launch.account_id),
                launch_id, person_id, "The account is split off into a person of its own.")


@bp.post("/people/<int:person_id>/certificate/revoke")
@program_admin_required
def revoke(launch_id: str, person_id: int):
    """Revoke the person's certificate, with a reason."""
    certificate = certificate_service.certificate_for(_person_or_404(person_id).id)
    if certificate is None:
        abort(404, description="This person has no certificate.")
    return _run(lambda: certificate_service.revoke(certificate.number, reason=request.form.get("reason", ""),
                                                   actor_account_id=g.launch.account_id),
                launch_id, person_id, f"Certificate {certificate.number} is revoked.")


def _csv(rows, filename: str) -> Response:
    return Response(stream_with_context(exports.as_csv(rows)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/export/progress.csv")
@program_admin_required
def export_progress(launch_id: str):
    """Export every person's progress as CSV."""
    return _csv(exports.progress_rows(current_catalog()), "bargaining-certificate-progress.csv")


@bp.get("/export/registrations.csv")
@program_admin_required
def export_registrations(launch_id: str):
    """Export every registration as CSV."""
    return _csv(exports.registration_rows(), "bargaining-certificate-registrations.csv")


@bp.get("/audit")
@program_admin_required
def audit_log(launch_id: str):
    """Show the latest admin actions."""
    events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(500)).all()
    actors = {a.id: a for a in db.session.scalars(sa.select(Account).where(
        Account.id.in_({e.actor_account_id for e in events if e.actor_account_id})))}
    return render_template("admin/audit.html", launch=g.launch, events=events, actors=actors)
