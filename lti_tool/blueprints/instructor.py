"""The instructor's home for a course: placed content, workshops, members' progress, gradebook sync, guides."""
from flask import Blueprint, abort, current_app, g, render_template

from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.lti.claims import ToolRole
from lti_tool.services import course_home as course_home_service
from lti_tool.services import passback

bp = Blueprint("instructor", __name__)


@bp.get("/l/<launch_id>/course")
@launch_required(ToolRole.INSTRUCTOR)
def course_home(launch_id: str):
    """Show the course's instructors what is placed, each workshop's grading, the members and the gradebook."""
    if g.launch.course_id is None:
        abort(404, description="This launch is not in a course, so there is no course home. Open the tool from "
                               "a link in your course.")
    home = course_home_service.course_home(g.launch)
    on_demo = g.launch.platform.registered_by == "demo" and "demo.index" in current_app.view_functions
    return render_template("instructor/course_home.html", launch=g.launch, home=home, catalog=current_catalog(),
                           progress_label=passback.PROGRESS_LABEL, on_demo=on_demo)
