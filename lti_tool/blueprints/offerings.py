"""The public course offerings: a page, a printable PDF and an iCalendar feed (no sign-in; nothing personal)."""
from flask import Blueprint, current_app, render_template

from lti_tool.offerings_documents import describe_date, render_ics, render_pdf
from lti_tool.services.offerings import offerings

bp = Blueprint("offerings", __name__)


@bp.get("/offerings")
def page():
    """Show the modules by requirement group and the published workshops, upcoming first."""
    return render_template("offerings/offerings.html", offer=offerings(), describe_date=describe_date)


@bp.get("/offerings.pdf")
def pdf():
    """Download the offerings as a printable PDF."""
    response = current_app.make_response(render_pdf(offerings(), base_url=current_app.config["PUBLIC_BASE_URL"]))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = 'inline; filename="Bargaining-Certificate-offerings.pdf"'
    return response


@bp.get("/offerings.ics")
def calendar():
    """Subscribe to the published workshops as a calendar."""
    response = current_app.make_response(render_ics(offerings(), base_url=current_app.config["PUBLIC_BASE_URL"]))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = 'inline; filename="bargaining-certificate-workshops.ics"'
    return response
