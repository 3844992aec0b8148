"""Workshops: the instructor's grading page (roster, attendance, grades, sign-in sheet, check-in code) and the
member's check-in page."""
from dataclasses import dataclass

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
from lti_tool.catalog import Module
from lti_tool.extensions import db, limiter
from lti_tool.lti.claims import ToolRole
from lti_tool.models import Account, Workshop, WorkshopRecord
from lti_tool.services import roster as roster_service
from lti_tool.services import workshops as workshop_service
from lti_tool.services.roster import Roster
from lti_tool.services.workshops import messages

bp = Blueprint("workshops", __name__)

#: Wrong check-in codes a member may enter before waiting; counted per LMS account, not per address, because a
#: whole room checks in through one venue network. Only refused codes count.
CHECK_IN_ATTEMPTS = "5 per minute; 20 per hour"
#: The QR address takes no login: per network address, generous enough for a room scanning at once.
CHECK_IN_LINKS = "120 per minute"


def _workshop_or_404(public_id: str):
    workshop = workshop_service.workshop_in_course(public_id, g.launch.course_id)
    if workshop is None:
        abort(404, description="There is no such workshop in this course.")
    module = workshop_service.module_for(workshop)
    if module is None:
        abort(404, description=f"The module '{workshop.module_slug}' of this workshop is not in the catalog.")
    return workshop, module


@dataclass
class GradingPage:
    """The grading page's workshop and the people it lists: the LMS's learners, and anyone already recorded."""

    workshop: Workshop
    module: Module
    roster: Roster
    records: dict[int, WorkshopRecord]
    accounts: list[Account]

    @classmethod
    def load(cls, workshop: Workshop, module: Module, *, lock: bool = False) -> "GradingPage":
        # The roster is read from the LMS before anything is written or locked: a network call must not hold
        # row locks, and on SQLite a write would hold the database while the access token is cached.
        roster = roster_service.load_roster(g.launch)
        if lock:
            workshop_service.lock_for_grading(workshop)
        records = workshop_service.records_by_account(workshop)
        accounts = list(roster.learners)
        listed = {a.id for a in accounts}
        accounts += [db.session.get_one(Account, account_id) for account_id in records if account_id not in listed]
        return cls(workshop, module, roster, records, accounts)

    @property
    def account_ids(self) -> list[int]:
        return [a.id for a in self.accounts]

    @property
    def graded(self) -> set[int]:
        """The accounts that already have a grade (it can be changed, not removed)."""
        return {account_id for account_id, record in self.records.items() if record.result}

    def render(self, form: dict, *, problems=(), problem_errors=None, errors=None, sheet_error=None, notice=None,
               general_errors=(), status=200):
        workshop, module = self.workshop, self.module
        gradebook_notice, _ = workshop_service.gradebook_notice(workshop, g.launch)
        return render_template(
            "workshops/grade.html", launch=g.launch, workshop=workshop, module=module, roster=self.roster,
            accounts=self.accounts, records=self.records, form=form, errors=errors or {}, problems=problems,
            problem_errors=problem_errors or {}, sheet_error=sheet_error, general_errors=general_errors,
            notice=notice, learner_ids={a.id for a in self.roster.learners}, results=workshop_service.RESULTS,
            gradebook_notice=gradebook_notice, check_in_code=workshop_service.current_code(workshop),
            column_label=workshop_service.column_label(workshop, module),
            scores=workshop_service.score_statuses(workshop, g.launch, module, self.accounts)), status

    def render_posted(self, posted: workshop_forms.PostedGrading, **kwargs):
        return self.render(posted.form, problems=posted.problems, problem_errors=posted.problem_errors, **kwargs)


@bp.route("/l/<launch_id>/workshops/<public_id>", methods=["GET", "POST"])
@launch_required(ToolRole.INSTRUCTOR)
def grade(launch_id: str, public_id: str):
    """Show the workshop's roster with attendance and grades; save them, import a sign-in sheet, bulk-mark."""
    workshop, module = _workshop_or_404(public_id)
    page = GradingPage.load(workshop, module, lock=request.method == "POST")
    workshop_service.link_to_launch(workshop, g.launch)
    if request.method == "GET":
        return page.render(workshop_forms.form_from_records(page.account_ids, page.records))

    posted = workshop_forms.PostedGrading.read(request.form)
    if posted.action == "import":
        return _import_sheet(page, posted)
    posted.resolve_sheet_rows(page.account_ids, module)
    if posted.action == "apply":
        return page.render_posted(posted, notice=messages.CHOICES_MARKED, status=422 if posted.problem_errors else 200)
    posted.apply_bulk_action(page.account_ids, module)

    values, errors = workshop_forms.parse_grade_rows(posted.form, page.account_ids, module, page.graded)
    general = _reasons_not_to_save(page, posted, values)
    if errors or posted.problem_errors or general:
        transaction.abandon()
        return page.render_posted(posted, errors=errors, general_errors=general, status=422)
    counts = workshop_service.save_grades(
        workshop, [(a, values[a.id], page.records.get(a.id)) for a in page.accounts],
        grader=g.launch.account, launch=g.launch)
    flash(messages.grades_saved(counts["graded"], counts["attendance"]), "success")
    return redirect(url_for("workshops.grade", launch_id=launch_id, public_id=public_id), code=303)


def _import_sheet(page: GradingPage, posted: workshop_forms.PostedGrading):
    """Read an uploaded sign-in sheet into the form (marked present, not saved) and list the rows to resolve."""
    upload = request.files.get("sheet")
    if upload is None or not upload.filename:
        return page.render(posted.form, problems=posted.problems, sheet_error=messages.CHOOSE_SHEET, status=422)
    try:
        sheet = workshop_service.read_sign_in_sheet(upload.read(), page.accounts, page.module)
    except workshop_service.SheetError as exc:
        return page.render(posted.form, problems=posted.problems, sheet_error=str(exc), status=422)
    applied = workshop_forms.apply_sheet(posted.form, [(m.account_id, m.row.hours) for m in sheet.matched])
    return page.render(posted.form, problems=[*posted.problems, *sheet.problems],
                       notice=messages.sheet_imported(applied, len(sheet.problems)))


def _reasons_not_to_save(page: GradingPage, posted: workshop_forms.PostedGrading, values) -> list[str]:
    """Say why the whole form cannot be saved as it is (beyond the errors of single rows)."""
    reasons = []
    if workshop_forms.rows_of_others(posted.form, set(page.account_ids)):
        reasons.append(messages.ROSTER_CHANGED)
    blocked_message, blocked = workshop_service.gradebook_notice(page.workshop, g.launch)
    if blocked and blocked_message and any(v.result for v in values.values()):
        reasons.append(blocked_message)
    return reasons


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
               deduct_when=lambda response: response.status_code == 422, error_message=messages.TOO_MANY_CODES)
def attend(launch_id: str, public_id: str):
    """Show a member the workshop and their attendance and result; check in with the room's code."""
    workshop, module = _workshop_or_404(public_id)
    error = None
    if request.method == "POST":
        if g.launch.role != ToolRole.MEMBER:
            abort(403, description=messages.CHECK_IN_ONLY_FOR_MEMBERS)
        try:
            _, new = workshop_service.check_in(workshop, g.launch.account_id, request.form.get("code", ""))
        except workshop_service.CheckInError as exc:
            transaction.abandon()
            error = str(exc)
        else:
            flash(messages.CHECKED_IN if new else messages.ALREADY_CHECKED_IN, "success")
            return redirect(url_for("workshops.attend", launch_id=launch_id, public_id=public_id), code=303)
    record = workshop_service.records_by_account(workshop).get(g.launch.account_id)
    return render_template("workshops/attend.html", launch=g.launch, workshop=workshop, module=module, record=record,
                           error=error, code=request.form.get("code") or request.args.get("code", ""),
                           results=workshop_service.RESULTS), (422 if error else 200)


@bp.get("/check-in/<code>")
@limiter.limit(CHECK_IN_LINKS, error_message=messages.TOO_MANY_CHECK_IN_LINKS)
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
