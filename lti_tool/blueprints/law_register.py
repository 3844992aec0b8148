"""The legal register for program admins: every statement of law the modules rely on, its source and review."""
from datetime import date, timedelta

from flask import Blueprint, g, render_template

from lti_tool.blueprints.admin import program_admin_required
from lti_tool.catalog import current_catalog, law_usage

bp = Blueprint("law_register", __name__, url_prefix="/l/<launch_id>/admin/law-register")

#: An entry not checked against its source for this long is shown as due for review.
REVIEW_INTERVAL = timedelta(days=365)


@bp.get("/")
@program_admin_required
def register_page(launch_id: str):
    """List the register's entries with their citations, sources, review dates and where modules use them."""
    catalog = current_catalog()
    entries = sorted(catalog.register.entries, key=lambda e: (e.reviewed_on, e.id))
    return render_template("admin/law_register.html", launch=g.launch, entries=entries, usage=law_usage(catalog),
                           due_before=date.today() - REVIEW_INTERVAL, cards=catalog.cards)
