"""Gradebook sync: the scores an LMS refused, for the course's instructors and the program admins, with retry."""
from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import Schema, ValidationError, fields, validate

from lti_tool.auth import launch_required
from lti_tool.lti.claims import ToolRole
from lti_tool.services import passback

bp = Blueprint("grades", __name__, url_prefix="/l/<launch_id>/grades")


class RetrySchema(Schema):
    score_id = fields.Integer(load_default=None, validate=validate.Range(min=1))
    all = fields.Boolean(load_default=False)


def _sees_all() -> bool:
    """Program admins (an LMS admin launch by a person granted program access) see every course."""
    person = g.launch.account.person
    return g.launch.role == ToolRole.ADMIN and person is not None and person.program_admin


def _scope() -> int | None:
    """Return the course whose scores this launch may see and retry (None: all of them)."""
    if _sees_all():
        return None
    if g.launch.course_id is None:
        abort(403, description="Open the tool from a course to see its gradebook scores.")
    return g.launch.course_id


@bp.get("/failed")
@launch_required(ToolRole.INSTRUCTOR)
def failed_scores(launch_id: str):
    """List the scores the LMS refused, with its answer and a retry button."""
    course_id = _scope()
    return render_template("grades/failed.html", launch=g.launch, scores=passback.failed_scores(course_id),
                           all_courses=course_id is None)


@bp.post("/retry")
@launch_required(ToolRole.INSTRUCTOR)
def retry(launch_id: str):
    """Queue one failed score (or all that this launch may see) to be sent again."""
    course_id = _scope()
    try:
        form = RetrySchema().load({k: v for k, v in request.form.items() if k in ("score_id", "all")})
    except ValidationError as exc:
        abort(400, description="That retry request could not be read: " +
                               "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.messages_dict.items()))
    if form["all"]:
        count = passback.retry_all_failed(course_id)
    elif form["score_id"]:
        count = passback.retry([form["score_id"]], course_id=course_id)
    else:
        abort(400, description="Choose a score to retry.")
    if count:
        flash(f"{count} score{'s' if count != 1 else ''} will be sent to the gradebook again in a moment.",
              "success")
    else:
        flash("Nothing to retry: that score was already sent, queued again, or is not in this course.", "success")
    return redirect(url_for("grades.failed_scores", launch_id=launch_id), code=303)
