"""Where a launch lands: for now, who you are, in which course and in which role."""
from flask import Blueprint, g, render_template

from lti_tool.auth import launch_required
from lti_tool.lti.claims import ToolRole

bp = Blueprint("member", __name__)


@bp.get("/l/<launch_id>/")
@launch_required(ToolRole.MEMBER)
def home(launch_id: str):
    """Show the launched user who they are, where, and as what."""
    return render_template("member/home.html", launch=g.launch)


@bp.get("/l/<launch_id>/deep-link")
@launch_required(ToolRole.INSTRUCTOR)
def deep_link(launch_id: str):
    """Show the instructor's deep-linking launch (the module picker arrives with the catalog)."""
    return render_template("member/home.html", launch=g.launch, deep_linking=True)
