"""The member's side: the catalog, a module's overview, its sections and activities, the knowledge check."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from lti_tool import transaction
from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.lti import tool_launch
from lti_tool.lti.claims import ToolRole
from lti_tool.rendering import render_content
from lti_tool.services import certificates as certificate_service
from lti_tool.services import ledger as ledger_service
from lti_tool.services import next_steps as next_steps_service
from lti_tool.services import passback
from lti_tool.services import people as people_service
from lti_tool.services import progress as progress_service

bp = Blueprint("member", __name__)

#: How members read each kind of credit when a requirement group counts only some of them.
CREDIT_KIND_NAMES = {"module_completion": "self-paced modules", "workshop_grade": "graded workshops",
                     "admin_adjustment": "hours added by the program"}

def _module_or_404(slug: str):
    module = current_catalog().module(slug)
    if module is None:
        abort(404, description=f"There is no module '{slug}' in the catalog.")
    return module


def _course_id():
    return g.launch.course_id


def _person_id() -> int:
    return g.launch.account.person_id


def _finish_if_done(module, progress=None) -> bool:
    """Record the module's completion once every rule is met and queue its gradebook scores; True that time."""
    if progress_service.finish_if_done(g.launch.account_id, module, _course_id(), progress) is None:
        return False
    passback.queue_completion_scores(g.launch, module)
    return True


@bp.get("/l/<launch_id>/")
@launch_required(ToolRole.MEMBER)
def home(launch_id: str):
    """Land a launch: first the registration form (once), then a placed module or the catalog."""
    if g.launch.role == ToolRole.MEMBER and people_service.registration_for(_person_id()) is None:
        return redirect(url_for("member.registration", launch_id=launch_id, first="1"))
    placement = tool_launch.of(g.launch).placement
    if placement.placed_workshop:
        # A placed workshop: its instructors grade it, its members check in and see their result.
        endpoint = "workshops.attend" if g.launch.role == ToolRole.MEMBER else "workshops.grade"
        return redirect(url_for(endpoint, launch_id=launch_id, public_id=placement.placed_workshop))
    slug = placement.module
    if slug and current_catalog().module(slug):
        return redirect(url_for("member.module", launch_id=launch_id, slug=slug))
    if g.launch.role != ToolRole.MEMBER and g.launch.course_id is not None:
        # The course link (or any link that places no module): instructors land on their course's home.
        return redirect(url_for("instructor.course_home", launch_id=launch_id))
    return _render_catalog()


@bp.get("/l/<launch_id>/catalog")
@launch_required(ToolRole.MEMBER)
def catalog_page(launch_id: str):
    """List the modules by requirement group, with hours and the member's progress."""
    return _render_catalog()


def _render_catalog():
    catalog = current_catalog()
    progress = progress_service.modules_progress(g.launch.account_id, catalog.modules)
    steps = next_steps_service.next_steps(g.launch.account, g.launch.course_id, progress)
    return render_template("member/catalog.html", launch=g.launch, catalog=catalog, progress=progress, steps=steps)


@bp.get("/l/<launch_id>/modules/<slug>")
@launch_required(ToolRole.MEMBER)
def module(launch_id: str, slug: str):
    """Show a module: objectives, hours, sections, activities, knowledge check and progress."""
    module = _module_or_404(slug)
    progress = progress_service.module_progress(g.launch.account_id, module)
    next_section = next((s for s in module.sections if s.slug not in progress.visited), module.sections[0])
    return render_template("member/module.html", launch=g.launch, module=module, progress=progress,
                           next_section=next_section,
                           group=current_catalog().program.group(module.group))


def _render_section(module, current, errors=None, drafts=None, status=200, progress=None):
    index = module.sections.index(current)
    progress = progress or progress_service.module_progress(g.launch.account_id, module)
    answers = {**progress.answers, **(drafts or {})}
    return render_template(
        "member/section.html", launch=g.launch, module=module, section=current, progress=progress,
        answers=answers, body=render_content(current.markdown, current_catalog().register), number=index + 1,
        previous=module.sections[index - 1] if index > 0 else None,
        next=module.sections[index + 1] if index + 1 < len(module.sections) else None,
        activities=[a for a in module.activities if a.section == current.slug], errors=errors or {}), status


@bp.get("/l/<launch_id>/modules/<slug>/sections/<section_slug>")
@launch_required(ToolRole.MEMBER)
def section(launch_id: str, slug: str, section_slug: str):
    """Show one section with its activities; opening it counts as visiting it."""
    module = _module_or_404(slug)
    current = module.section(section_slug)
    if current is None:
        abort(404, description=f"Module '{module.title}' has no section '{section_slug}'.")
    progress = progress_service.module_progress(g.launch.account_id, module)
    if current.slug not in progress.visited:  # a first visit writes; reading a section again writes nothing
        progress_service.visit_section(g.launch.account_id, module, current.slug)
        progress = progress_service.module_progress(g.launch.account_id, module)
        if _finish_if_done(module, progress):
            progress = progress_service.module_progress(g.launch.account_id, module)  # now with its completion
    return _render_section(module, current, progress=progress)


@bp.post("/l/<launch_id>/modules/<slug>/activities/<activity_slug>")
@launch_required(ToolRole.MEMBER)
def save_activity(launch_id: str, slug: str, activity_slug: str):
    """Save the member's answers to an activity; they stay visible on the section page."""
    module = _module_or_404(slug)
    activity = next((a for a in module.activities if a.slug == activity_slug), None)
    if activity is None:
        abort(404, description=f"Module '{module.title}' has no activity '{activity_slug}'.")
    current = module.section(activity.section)
    try:
        progress_service.save_activity_answers(g.launch.account_id, module, activity, request.form)
    except progress_service.AnswerError as exc:
        transaction.abandon()
        draft = {f.name: request.form.get(f.name, "") for f in activity.fields}
        return _render_section(module, current, errors={activity.slug: exc.errors},
                               drafts={activity.slug: draft}, status=422)
    finished = _finish_if_done(module)
    flash(f"Your answers to “{activity.title}” are saved.", "success")
    if finished:
        flash(f"You completed {module.title}: {module.credit_hours:g} hours.", "success")
    return redirect(url_for("member.section", launch_id=launch_id, slug=slug, section_slug=current.slug)
                    + f"#activity-{activity.slug}", code=303)


@bp.route("/l/<launch_id>/modules/<slug>/check", methods=["GET", "POST"])
@launch_required(ToolRole.MEMBER)
def knowledge_check(launch_id: str, slug: str):
    """Take the knowledge check; after an attempt, show each answer's feedback and allow a retake."""
    module = _module_or_404(slug)
    result, errors = None, {}
    if request.method == "POST":
        chosen = {q.id: request.form.getlist(q.id) for q in module.knowledge_check.questions}
        try:
            result = progress_service.grade_knowledge_check(g.launch.account_id, module, chosen)
        except progress_service.AnswerError as exc:
            errors = exc.errors
        else:
            _finish_if_done(module)
    progress = progress_service.module_progress(g.launch.account_id, module)
    return render_template("member/check.html", launch=g.launch, module=module, progress=progress, result=result,
                           errors=errors, form=request.form if errors else None), (422 if errors else 200)


@bp.get("/l/<launch_id>/modules/<slug>/facilitator-guide")
@launch_required(ToolRole.INSTRUCTOR)
def facilitator_guide(launch_id: str, slug: str):
    """Show instructors how to run the module as a live workshop."""
    module = _module_or_404(slug)
    return render_template("member/guide.html", launch=g.launch, module=module,
                           body=render_content(module.facilitator_guide, current_catalog().register))


@bp.route("/l/<launch_id>/registration", methods=["GET", "POST"])
@launch_required(ToolRole.MEMBER)
def registration(launch_id: str):
    """The program's brief registration form: asked once at the first launch, editable later."""
    current = people_service.registration_for(_person_id())
    values: dict | None  # the form as posted, or what is known already
    errors, values = {}, None
    if request.method == "POST":
        try:
            people_service.save_registration(_person_id(), request.form)
        except people_service.RegistrationInvalid as exc:
            transaction.abandon()
            errors, values = exc.errors, request.form
        else:
            flash("Your registration is saved." if current else "Thank you for registering.", "success")
            return redirect(url_for("member.home", launch_id=launch_id), code=303)
    if values is None:
        account = g.launch.account
        values = ({k: getattr(current, k) for k in people_service.RegistrationSchema().fields} if current else
                  {"name": account.display_name if account.name or account.given_name else "",
                   "email": account.email or ""})
    return render_template("member/registration.html", launch=g.launch, values=values, errors=errors,
                           first=current is None, jobs=people_service.JOB_CATEGORIES,
                           sectors=people_service.SECTORS, experience=people_service.EXPERIENCE), \
        (422 if errors else 200)


@bp.get("/l/<launch_id>/progress")
@launch_required(ToolRole.MEMBER)
def progress_page(launch_id: str):
    """Show the member's progress toward the certificate, entry by entry, and the certificate when earned."""
    person_ledger = ledger_service.person_ledger(_person_id())
    catalog = current_catalog()
    return render_template("member/progress.html", launch=g.launch, ledger=person_ledger, catalog=catalog,
                           all_credit_kinds=CREDIT_KIND_NAMES,
                           counted_kinds=lambda group: " and ".join(CREDIT_KIND_NAMES[k] for k in group.counts),
                           certificate=certificate_service.certificate_for(_person_id()),
                           steps=next_steps_service.next_steps(g.launch.account, g.launch.course_id,
                                                               progress=person_ledger.progress),
                           accounts=people_service.accounts_of(_person_id()))


@bp.route("/l/<launch_id>/link-accounts", methods=["GET", "POST"])
@launch_required(ToolRole.MEMBER)
def link_accounts(launch_id: str):
    """Join this LMS account with the member's account in another LMS, by a one-time code."""
    code, error = None, None
    if request.method == "POST":
        if request.form.get("action") == "make":
            code = people_service.create_link_code(g.launch.account_id)
        else:
            try:
                people_service.redeem_link_code(request.form.get("code", ""), g.launch.account_id)
            except people_service.PeopleError as exc:
                transaction.abandon()
                error = str(exc)
            else:
                flash("Your accounts are linked: your hours from both LMSs now count together.", "success")
                return redirect(url_for("member.progress_page", launch_id=launch_id), code=303)
    return render_template("member/link_accounts.html", launch=g.launch, code=code, error=error,
                           accounts=people_service.accounts_of(_person_id())), (422 if error else 200)
