"""The member's side: the catalog, a module's overview, its sections and activities, the knowledge check."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.lti.claims import ToolRole
from lti_tool.rendering import render_markdown
from lti_tool.services import progress as progress_service

bp = Blueprint("member", __name__)

#: The custom parameter a placed link carries to open one module (set by deep linking).
MODULE_PARAMETER = "module"


def _module_or_404(slug: str):
    module = current_catalog().module(slug)
    if module is None:
        abort(404, description=f"There is no module '{slug}' in the catalog.")
    return module


def _course_id():
    return g.launch.course_id


@bp.get("/l/<launch_id>/")
@launch_required(ToolRole.MEMBER)
def home(launch_id: str):
    """Land a launch: a placed module opens directly; otherwise show the catalog."""
    link = g.launch.resource_link
    slug = (link.custom or {}).get(MODULE_PARAMETER) if link else None
    if slug and current_catalog().module(slug):
        return redirect(url_for("member.module", launch_id=launch_id, slug=slug))
    return _render_catalog()


@bp.get("/l/<launch_id>/catalog")
@launch_required(ToolRole.MEMBER)
def catalog_page(launch_id: str):
    """List the modules by requirement group, with hours and the member's progress."""
    return _render_catalog()


def _render_catalog():
    catalog = current_catalog()
    progress = {m.slug: progress_service.module_progress(g.launch.account_id, m) for m in catalog.modules}
    return render_template("member/catalog.html", launch=g.launch, catalog=catalog, progress=progress)


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


def _render_section(module, current, errors=None, drafts=None, status=200):
    index = module.sections.index(current)
    progress = progress_service.module_progress(g.launch.account_id, module)
    answers = {**progress.answers, **(drafts or {})}
    return render_template(
        "member/section.html", launch=g.launch, module=module, section=current, progress=progress,
        answers=answers, body=render_markdown(current.markdown), number=index + 1,
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
    progress_service.visit_section(g.launch.account_id, module, current.slug)
    progress_service.complete_if_done(g.launch.account_id, module, _course_id())
    db.session.commit()
    return _render_section(module, current)


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
        db.session.rollback()
        draft = {f.name: request.form.get(f.name, "") for f in activity.fields}
        return _render_section(module, current, errors={activity.slug: exc.errors},
                               drafts={activity.slug: draft}, status=422)
    was_complete = progress_service.module_progress(g.launch.account_id, module).complete
    completion = progress_service.complete_if_done(g.launch.account_id, module, _course_id())
    db.session.commit()
    flash(f"Your answers to “{activity.title}” are saved.", "success")
    if completion is not None and not was_complete:
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
            progress_service.complete_if_done(g.launch.account_id, module, _course_id())
            db.session.commit()
    progress = progress_service.module_progress(g.launch.account_id, module)
    return render_template("member/check.html", launch=g.launch, module=module, progress=progress, result=result,
                           errors=errors, form=request.form if errors else None), (422 if errors else 200)


@bp.get("/l/<launch_id>/modules/<slug>/facilitator-guide")
@launch_required(ToolRole.INSTRUCTOR)
def facilitator_guide(launch_id: str, slug: str):
    """Show instructors how to run the module as a live workshop."""
    module = _module_or_404(slug)
    return render_template("member/guide.html", launch=g.launch, module=module,
                           body=render_markdown(module.facilitator_guide))


@bp.get("/l/<launch_id>/deep-link")
@launch_required(ToolRole.INSTRUCTOR)
def deep_link(launch_id: str):
    """Show the instructor's deep-linking launch (the module picker arrives with the instructor tools)."""
    return render_template("member/deep_link.html", launch=g.launch)
