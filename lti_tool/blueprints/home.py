"""The tool's own front page at `/`: what it is and the addresses an LMS admin registers it with."""
from flask import Blueprint, current_app, render_template

from lti_tool.lti.registration import tool_urls

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    """Point people at what they can do here."""
    return render_template("index.html", demo=current_app.config["DEMO_PLATFORM"],
                           urls=tool_urls(current_app.config["PUBLIC_BASE_URL"]))
