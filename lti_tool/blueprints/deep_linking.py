"""The instructor's deep-linking picker: choose modules and workshops, answer the LMS with a signed response."""
from flask import Blueprint, abort, current_app, g, render_template, request

from lti_tool import transaction
from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.lti import deep_linking, tool_launch
from lti_tool.lti.claims import ToolRole
from lti_tool.lti.registration import tool_urls
from lti_tool.services import passback, placements
from lti_tool.wording import with_article

bp = Blueprint("deep_linking", __name__)


def _request_or_refuse() -> deep_linking.DeepLinkRequest:
    request_ = tool_launch.of(g.launch).deep_link
    if request_ is None:
        abort(403, description="This page answers the LMS when you add content to a course (a deep-linking "
                               "launch). Open it from your course's “add an activity”, “external tool” or "
                               "assignment settings.")
    if not request_.accepts_resource_links:
        abort(400, description="Your LMS asked for content this tool does not make here "
                               f"({', '.join(request_.accept_types) or 'none'}); the tool places links to its "
                               "modules (LTI resource links). Add the tool from the course's activity or "
                               "assignment settings instead.")
    return request_


def _render_picker(link_request, errors=None, form=None, status=200):
    return render_template("deep_linking/picker.html", launch=g.launch, catalog=current_catalog(),
                           link_request=link_request, modes=placements.MODES, errors=errors or {},
                           form_error=(errors or {}).get(placements.FORM_ERROR), form=form,
                           column_kinds=placements.COLUMN_KINDS,
                           has_progress_column=passback.has_progress_column(g.launch.course_id),
                           progress_label=passback.PROGRESS_LABEL, with_article=with_article), status


@bp.route("/l/<launch_id>/deep-link", methods=["GET", "POST"])
@launch_required(ToolRole.INSTRUCTOR)
def picker(launch_id: str):
    """Let the instructor pick modules to place, each self-paced or as a graded workshop; answer the LMS."""
    link_request = _request_or_refuse()
    if g.launch.deep_link_answered_at is not None:
        abort(409, description="This request to add content was already answered. To add more, start again "
                               "from your course's activity or assignment settings.")
    if request.method == "GET":
        return _render_picker(link_request)
    catalog = current_catalog()
    if not placements.claim_answer(g.launch.id):
        abort(409, description="This request to add content was already answered. To add more, start again "
                               "from your course's activity or assignment settings.")
    wants_progress = request.form.get("progress_column") == "1"
    try:
        if wants_progress and g.launch.course_id is None:
            raise placements.PlacementInvalid({placements.FORM_ERROR: "The progress column belongs to a course: "
                                                                      "open the tool from inside the course."})
        choices = placements.parse_choices(request.form, catalog, accept_multiple=link_request.accept_multiple,
                                           progress_column=wants_progress)
        placed = placements.place(choices, course_id=g.launch.course_id, account_id=g.launch.account_id)
    except placements.PlacementInvalid as exc:
        transaction.abandon()
        return _render_picker(link_request, errors=exc.errors, form=request.form, status=422)
    if wants_progress:
        # The column itself is made by the grade worker, once, when the first member's hours are sent.
        passback.add_progress_column(g.launch.course_id, g.launch.account_id)
    launch_url = tool_urls(current_app.config["PUBLIC_BASE_URL"])["launch"]
    # A platform that says accept_lineitem: false makes no gradebook columns from the response.
    items = [placements.content_item(p, launch_url, with_line_item=link_request.accept_lineitem) for p in placed]
    message = f"Added {len(items)} Bargaining Certificate item{'' if len(items) == 1 else 's'}."
    if wants_progress:
        message += f" The gradebook gets a “{passback.PROGRESS_LABEL}” column with each member's hours."
    token = deep_linking.sign_response(g.launch.platform, link_request, items, message=message)
    return render_template("deep_linking/response.html", launch=g.launch, return_url=link_request.return_url,
                           token=token, items=items, progress_column=wants_progress,
                           progress_label=passback.PROGRESS_LABEL)
