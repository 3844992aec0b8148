"""Workshops: the instructor's grading page (roster, attendance, grades, sign-in sheet, check-in code) and the
member's check-in page."""

import segno
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from lti_tool import transaction
from lti_tool.auth import held_launches, launch_required
from lti_tool.blueprints import workshop_forms
from lti_tool.extensions import db, limiter
from lti_tool.lti.claims import ToolRole
from lti_tool.models import Account
from lti_tool.services import roster as roster_service
from lti_tool.services import workshops as workshop_service

bp = Blueprint("workshops", __name__)

#: Wrong check-in codes a member may enter before waiting; counted per LMS account, not per address, because a
#: whole room checks in through one venue network. Only refused codes count.
CHECK_IN_ATTEMPTS = "5 per minute; 20 per hour"
#: The QR address takes no login: per network address, generous enough for a room scanning at once.
CHECK_IN_LINKS = "120 per minute"
_TOO_MANY_CODES = ("Too many wrong codes: wait a few minutes, then enter the code shown in the room again. If it "
                   "still does not work, ask the instructor to mark you present.")


def _workshop_or_404(public_id: str):
    workshop = workshop_service.workshop_in_course(public_id, g.launch.course_id)
    if workshop is None:
        abort(404, description="There is no such workshop in this course.")
    module = workshop_service.module_for(workshop)
    if module is None:
        abort(404, description=f"The module '{workshop.module_slug}' of this workshop is not in the catalog.")
    return workshop, module


def _gradable(workshop, *, lock: bool = False):
    """Return the roster, the workshop's records, and the accounts the page lists (the LMS's learners, and
    anyone already recorded)."""
    # The roster is read from the LMS before anything is written or locked: a network call must not hold
    # row locks, and on SQLite a write would hold the database while the access token is cached.
    roster = roster_service.load_roster(g.launch)
    if lock:
        workshop_service.lock_for_grading(workshop)
    records = workshop_service.records_by_account(workshop)
    accounts = list(roster.learners)
    listed = {a.id for a in accounts}
    for account_id in records:
        if account_id not in listed:
            accounts.append(db.session.get_one(Account, account_id))
            listed.add(account_id)
    return roster, records, accounts, listed


def _render(workshop, module, roster, accounts, records, form, *, errors=None, problems=(), problem_errors=None,
            sheet_error=None, notice=None, general_errors=(), status=200):
    learner_ids = {a.id for a in roster.learners}
    gradebook_notice, _ = workshop_service.gradebook_notice(workshop, g.launch)
    code = workshop_service.current_code(workshop)
    return render_template(
        "workshops/grade.html", launch=g.launch, workshop=workshop, module=module, roster=roster,
        accounts=accounts, records=records, form=form, errors=errors or {}, problems=problems,
        problem_errors=problem_errors or {}, sheet_error=sheet_error, general_errors=general_errors, notice=notice,
        learner_ids=learner_ids,
        results=workshop_service.RESULTS, gradebook_notice=gradebook_notice, check_in_code=code,
        column_label=workshop_service.column_label(workshop, module),
        scores=workshop_service.score_statuses(workshop, g.launch, module, accounts)), status


@bp.route("/l/<launch_id>/workshops/<public_id>", methods=["GET", "POST"])
@launch_required(ToolRole.INSTRUCTOR)
def grade(launch_id: str, public_id: str):
    """Show the workshop's roster with attendance and grades; save them, import a sign-in sheet, bulk-mark."""
    workshop, module = _workshop_or_404(public_id)
    roster, records, accounts, listed = _gradable(workshop, lock=request.method == "POST")
    workshop_service.link_to_launch(workshop, g.launch)
    ids = [a.id for a in accounts]
    if request.method == "GET":
        return _render(workshop, module, roster, accounts, records,
                       workshop_forms.form_from_records(ids, records))

    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    action = form.pop("action", "save")
    problems = workshop_service.problems_from_form(form)

    if action == "import":
        upload = request.files.get("sheet")
        if upload is None or not upload.filename:
            return _render(workshop, module, roster, accounts, records, form, problems=problems,
                           sheet_error="Choose the sign-in sheet (a CSV file) to import.", status=422)
        try:
            sheet = workshop_service.read_sign_in_sheet(upload.read(), accounts, module)
        except workshop_service.SheetError as exc:
            return _render(workshop, module, roster, accounts, records, form, problems=problems,
                           sheet_error=str(exc), status=422)
        applied = workshop_forms.apply_sheet(form, [(m.account_id, m.row.hours) for m in sheet.matched])
        notice = (f"The sign-in sheet matched {applied} member{'s' if applied != 1 else ''} (marked present below). "
                  + (f"{len(sheet.problems)} row{'s' if len(sheet.problems) != 1 else ''} "
                     f"need{'s' if len(sheet.problems) == 1 else ''} "
                     "your choice. " if sheet.problems else "")
                  + "Nothing is saved yet: review the roster and save.")
        return _render(workshop, module, roster, accounts, records, form, problems=list(problems) + sheet.problems,
                       notice=notice)

    matches, still_open, problem_errors = workshop_service.resolve_problems(
        form, problems, ids, module, require_all=action != "apply")
    workshop_forms.apply_sheet(form, matches)
    open_problems = [p for _, p in still_open]
    if action == "apply":
        return _render(workshop, module, roster, accounts, records, _renumbered(form, still_open),
                       problems=open_problems, problem_errors=_reindexed(problem_errors, still_open),
                       notice="Your choices are marked below. Nothing is saved yet: review the roster and save.",
                       status=422 if problem_errors else 200)
    if action == "mark_all_present":
        workshop_forms.mark_all_present(form, ids)
    elif action == "complete_all_present":
        workshop_forms.complete_all_present(form, ids, module)

    graded = {account_id for account_id, r in records.items() if r.result}
    values, errors = workshop_forms.parse_grade_rows(form, ids, module, graded)
    general = []
    if workshop_forms.rows_of_others(form, listed):
        general.append("The form has rows for people who are no longer on the course roster; nothing was saved. "
                       "Reload the page and enter the grades again.")
    blocked_message, blocked = workshop_service.gradebook_notice(workshop, g.launch)
    if blocked and blocked_message and any(v.result for v in values.values()):
        general.append(blocked_message)
    if errors or problem_errors or general:
        transaction.abandon()
        return _render(workshop, module, roster, accounts, records, _renumbered(form, still_open),
                       errors=errors, problems=open_problems, problem_errors=_reindexed(problem_errors, still_open),
                       general_errors=general, status=422)
    counts = workshop_service.save_grades(workshop, [(a, values[a.id], records.get(a.id)) for a in accounts],
                                          grader=g.launch.account, launch=g.launch)
    flash(_saved_message(counts), "success")
    return redirect(url_for("workshops.grade", launch_id=launch_id, public_id=public_id), code=303)


def _renumbered(form: dict, still_open) -> dict:
    """Keep only the sheet rows still open, numbered from 0 again, in the form the page re-renders."""
    kept = {k: v for k, v in form.items() if not k.startswith(("sheet-", "resolve-"))}
    for new, (old, _) in enumerate(still_open):
        if form.get(f"resolve-{old}"):
            kept[f"resolve-{new}"] = form[f"resolve-{old}"]
    return kept


def _reindexed(errors: dict, still_open) -> dict:
    positions = {old: new for new, (old, _) in enumerate(still_open)}
    return {positions[n]: message for n, message in errors.items() if n in positions}


def _saved_message(counts: dict) -> str:
    parts = []
    if counts["graded"]:
        parts.append(f"{counts['graded']} grade{'s' if counts['graded'] != 1 else ''} saved and sent to the "
                     "gradebook queue")
    if counts["attendance"]:
        parts.append(f"attendance saved for {counts['attendance']} member{'s' if counts['attendance'] != 1 else ''}")
    return ("; ".join(parts).capitalize() + ".") if parts else "Nothing had changed: nothing was saved."


@bp.post("/l/<launch_id>/workshops/<public_id>/check-in-code")
@launch_required(ToolRole.INSTRUCTOR)
def new_check_in_code(launch_id: str, public_id: str):
    """Make a new check-in code for the session (the earlier one stops working)."""
    workshop, _ = _workshop_or_404(public_id)
    workshop_service.new_check_in_code(workshop)
    return redirect(url_for("workshops.check_in_code", launch_id=launch_id, public_id=public_id), code=303)


@bp.get("/l/<launch_id>/workshops/<public_id>/check-in-code")
@launch_required(ToolRole.INSTRUCTOR)
def check_in_code(launch_id: str, public_id: str):
    """Show the session's check-in code large, with a QR code of the check-in address, for the room's screen."""
    workshop, module = _workshop_or_404(public_id)
    code = workshop_service.current_code(workshop)
    qr, address = None, None
    if code is not None:
        address = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for("workshops.check_in_link",
                                                                              code=code.code)
        svg = segno.make(address, error="m").svg_inline(scale=8, border=2, dark="#000", light="#fff",
                                                        omitsize=True, svgclass="qr")
        # segno's SVG is built from our own address only; it is shown as an image with a text alternative.
        qr = Markup(svg.replace("<svg ", '<svg role="img" aria-labelledby="qr-label" ', 1))
    checked_in = sum(1 for r in workshop_service.records_by_account(workshop).values()
                     if r.attended and r.attendance_source == "check_in")
    return render_template("workshops/check_in_code.html", launch=g.launch, workshop=workshop, module=module,
                           code=code, qr=qr, address=address, checked_in=checked_in)


@bp.route("/l/<launch_id>/workshops/<public_id>/attend", methods=["GET", "POST"])
@launch_required(ToolRole.MEMBER)
@limiter.limit(CHECK_IN_ATTEMPTS, methods=["POST"], key_func=lambda: f"check-in:{g.launch.account_id}",
               deduct_when=lambda response: response.status_code == 422, error_message=_TOO_MANY_CODES)
def attend(launch_id: str, public_id: str):
    """Show a member the workshop and their attendance and result; check in with the room's code."""
    workshop, module = _workshop_or_404(public_id)
    error = None
    if request.method == "POST":
        if g.launch.role != ToolRole.MEMBER:
            abort(403, description="Check-in is for the workshop's members; instructors record attendance on the "
                                   "grading page.")
        try:
            _, new = workshop_service.check_in(workshop, g.launch.account_id, request.form.get("code", ""))
        except workshop_service.CheckInError as exc:
            transaction.abandon()
            error = str(exc)
        else:
            flash("You are checked in. Your instructor records your hours after the session." if new
                  else "You were already checked in.", "success")
            return redirect(url_for("workshops.attend", launch_id=launch_id, public_id=public_id), code=303)
    record = workshop_service.records_by_account(workshop).get(g.launch.account_id)
    return render_template("workshops/attend.html", launch=g.launch, workshop=workshop, module=module, record=record,
                           error=error, code=request.form.get("code") or request.args.get("code", ""),
                           results=workshop_service.RESULTS), (422 if error else 200)


@bp.get("/check-in/<code>")
@limiter.limit(CHECK_IN_LINKS, error_message="Too many check-in requests from this network: wait a minute and "
                                             "try again.")
def check_in_link(code: str):
    """Open the check-in of the QR code: in this browser's launch of that course, or say how to get there."""
    workshop = workshop_service.workshop_for_code(code)
    if workshop is not None:
        # Only a launch this browser already holds (auth.py's check: fresh, of the account it last launched as),
        # as a member, in the workshop's own course, may check in.
        for launch in held_launches():
            if launch.course_id == workshop.course_id and launch.role == ToolRole.MEMBER:
                return redirect(url_for("workshops.attend", launch_id=launch.id, public_id=workshop.public_id,
                                        code=code.upper()))
    return render_template("workshops/check_in_link.html", code=code.upper()[:12])
