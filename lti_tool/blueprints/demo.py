"""A built-in demo LMS (development only): its course page, launches, gradebook and roster, and the services it
offers the tool (token, AGS, NRPS). It signs real id_tokens and goes through the tool's real endpoints."""
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from lti_tool import grades_worker, transaction
from lti_tool.extensions import csrf
from lti_tool.lti.ags import LINE_ITEM_CONTAINER_TYPE, LINE_ITEM_TYPE, RESULT_CONTAINER_TYPE
from lti_tool.lti.claims import Scope
from lti_tool.lti.nrps import MEMBERSHIP_MEDIA_TYPE
from lti_tool.lti.registration import tool_urls
from lti_tool.services import demo_lms, passback
from lti_tool.services.demo_lms import CLIENT_ID, DEPLOYMENT_ID, PEOPLE, DemoError

bp = Blueprint("demo", __name__, url_prefix="/demo")


def _json(body, status: int = 200, mimetype: str = "application/json"):
    return current_app.response_class(current_app.json.dumps(body), status=status, mimetype=mimetype)


def _refused(error: DemoError):
    transaction.abandon()
    return _json(error.body(), error.status)


def _outbox():
    platform = demo_lms.demo_platform()
    return passback.outbox_status() if platform is not None else None


@bp.get("/")
def index():
    """Show the demo course: its launch buttons and the links placed in it, each launched as anyone on the roster."""
    return render_template("demo/index.html", course=demo_lms.COURSE, people=PEOPLE, members=demo_lms.members(),
                           links=demo_lms.placed_links())


@bp.post("/start")
def start():
    """Begin a launch as the chosen person: the LMS sends the browser to the tool's login."""
    person_key = request.form.get("as", "")
    target = request.form.get("link", "")
    if person_key == demo_lms.DEEP_LINK:  # the "Deep link as instructor" button
        person_key, target = "instructor", demo_lms.DEEP_LINK
    try:
        hint = demo_lms.message_hint(target, person_key)
    except DemoError as exc:
        abort(400, description=exc.description)
    platform = demo_lms.ensure_demo_platform()
    base = current_app.config["PUBLIC_BASE_URL"]
    params = {"iss": platform.issuer, "login_hint": person_key, "lti_message_hint": hint,
              "target_link_uri": tool_urls(base)["launch"], "client_id": CLIENT_ID,
              "lti_deployment_id": DEPLOYMENT_ID}
    return redirect(f"{tool_urls(base)['login']}?{urlencode(params)}", code=303)


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize():
    """Play the platform's OIDC authorization endpoint: sign an id_token and post it to the tool."""
    params = request.values
    base = current_app.config["PUBLIC_BASE_URL"]
    if params.get("client_id") != CLIENT_ID or params.get("redirect_uri") != tool_urls(base)["launch"]:
        abort(400, description="The demo LMS only launches the tool's own launch URL with its own client id.")
    if params.get("response_type") != "id_token" or params.get("scope") != "openid" or not params.get("nonce"):
        abort(400, description="Not an OIDC implicit-flow authorization request.")
    hint = params.get("lti_message_hint", demo_lms.COURSE_NAVIGATION)
    target = hint.removeprefix(demo_lms.PLACED) if hint.startswith(demo_lms.PLACED) else hint
    try:
        hint = demo_lms.message_hint(target, params.get("login_hint", ""))
    except DemoError as exc:
        abort(400, description=exc.description)
    id_token = demo_lms.sign(demo_lms.launch_claims(params["login_hint"], hint, params["nonce"]))
    return render_template("demo/auto_post.html", action=params["redirect_uri"],
                           fields={"id_token": id_token, "state": params.get("state", "")})


@bp.post("/deep-link-return")
@csrf.exempt
def deep_link_return():
    """Receive the tool's deep-linking response, check its signature, and place its links in the course."""
    try:
        links, new = demo_lms.receive_deep_link_response(request.form.get("JWT", ""))
    except DemoError as exc:
        abort(400, description=exc.description)
    return render_template("demo/deep_link_return.html", links=links, new=new, members=demo_lms.members(),
                           people=PEOPLE)


@bp.get("/gradebook")
def gradebook():
    """Show the demo course's gradebook (the scores the tool sent, per member and column) and the tool's queue."""
    return render_template("demo/gradebook.html", course=demo_lms.COURSE, book=demo_lms.gradebook(),
                           outbox=_outbox(), background=current_app.config.get("GRADES_BACKGROUND_SYNC")
                           and not current_app.config.get("TESTING"))


@bp.post("/gradebook/send")
def send_grades():
    """Send the tool's queued scores now (what the grade worker does every few seconds in development)."""
    report = grades_worker.send_all_due()
    flash(f"Gradebook sync: {report.summary()}.", "success")
    return redirect(url_for("demo.gradebook"), code=303)


@bp.get("/people")
def people():
    """Show the course roster the demo LMS serves to the tool (NRPS)."""
    return render_template("demo/people.html", course=demo_lms.COURSE, roster=demo_lms.memberships())


# -- the services the demo LMS offers the tool -------------------------------------------------------------------

@bp.post("/token")
@csrf.exempt
def token():
    """OAuth2 client credentials: an access token for a client assertion the tool signed with its published key."""
    try:
        return _json(demo_lms.issue_token(request.form))
    except DemoError as exc:
        return _refused(exc)


@bp.route("/lineitems", methods=["GET", "POST"])
@csrf.exempt
def lineitems():
    """The course's AGS line item container: list (filtered) or create a gradebook column."""
    try:
        if request.method == "GET":
            demo_lms.authorize(request.headers.get("Authorization"), Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY)
            found = demo_lms.line_items(request.args.get("resource_link_id"), request.args.get("resource_id"),
                                        request.args.get("tag"))
            return _json([demo_lms.line_item_json(i) for i in found], mimetype=LINE_ITEM_CONTAINER_TYPE)
        demo_lms.authorize(request.headers.get("Authorization"), Scope.AGS_LINEITEM)
        item = demo_lms.create_line_item(request.get_json(silent=True, force=True))
        return _json(demo_lms.line_item_json(item), 201, mimetype=LINE_ITEM_TYPE)
    except DemoError as exc:
        return _refused(exc)


@bp.get("/lineitems/<int:item_id>")
@csrf.exempt
def lineitem(item_id: int):
    """One gradebook column."""
    try:
        demo_lms.authorize(request.headers.get("Authorization"), Scope.AGS_LINEITEM, Scope.AGS_LINEITEM_READONLY)
        return _json(demo_lms.line_item_json(demo_lms.line_item(item_id)), mimetype=LINE_ITEM_TYPE)
    except DemoError as exc:
        return _refused(exc)


@bp.post("/lineitems/<int:item_id>/scores")
@csrf.exempt
def scores(item_id: int):
    """Take a member's score for a column (the latest by timestamp stands)."""
    try:
        demo_lms.authorize(request.headers.get("Authorization"), Scope.AGS_SCORE)
        item = demo_lms.line_item(item_id)
        demo_lms.record_score(item, request.content_type, request.get_json(silent=True, force=True))
        return "", 204
    except DemoError as exc:
        return _refused(exc)


@bp.get("/lineitems/<int:item_id>/results")
@csrf.exempt
def results(item_id: int):
    """The column's results."""
    try:
        demo_lms.authorize(request.headers.get("Authorization"), Scope.AGS_RESULT_READONLY)
        return _json(demo_lms.results(demo_lms.line_item(item_id)), mimetype=RESULT_CONTAINER_TYPE)
    except DemoError as exc:
        return _refused(exc)


@bp.get("/memberships")
@csrf.exempt
def memberships():
    """The course roster (NRPS): the instructor and the members."""
    try:
        demo_lms.authorize(request.headers.get("Authorization"), Scope.NRPS_MEMBERSHIP)
        return _json(demo_lms.memberships(), mimetype=MEMBERSHIP_MEDIA_TYPE)
    except DemoError as exc:
        return _refused(exc)
