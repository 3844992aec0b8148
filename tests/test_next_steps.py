"""A member's next steps, through real launches: the catalog's summary (hours so far, the next module, the
workshops coming up in the member's courses) and the progress page's next module per requirement group."""
import re
from datetime import date, timedelta

from lti_tool.extensions import db
from lti_tool.services import ledger
from tests.test_workshops import account_id, make_workshop, text

FOUNDATIONS = "bargaining-foundations"
CONTRACT_COSTING = "contract-costing"


def _summary(html: str) -> str:
    section = html.split('id="next-steps"')[1].split("</section>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


def _adjust(app, sub, slug, hours, ref):
    with app.app_context():
        ledger.record_hours(account_id=account_id(app, sub), module_slug=slug, hours=hours,
                            source="admin_adjustment", source_ref=ref, reason="Earned before the tool")
        db.session.commit()


def test_a_new_member_is_told_where_to_start(client, platform, member_launch):
    home = member_launch(platform)
    summary = _summary(text(client.get(home)))
    assert "0 of 24 hours so far" in summary
    assert "Start here: Bargaining Foundations · 6 hours Still to do" in summary
    assert "No workshop is scheduled in your courses yet." in summary
    assert f'/modules/{FOUNDATIONS}"' in text(client.get(home)).split('id="next-steps"')[1].split("</section>")[0]


def test_a_started_module_comes_first_and_hours_count(app, client, platform, member_launch):
    home = member_launch(platform)
    _adjust(app, "user-member-1", FOUNDATIONS, 6, "adj:f")
    overview = text(client.get(home + f"modules/{CONTRACT_COSTING}"))
    first_section = re.search(r'href="([^"]+/sections/[^"]+)">Start', overview).group(1)
    client.get(first_section)
    summary = _summary(text(client.get(home)))
    assert "6 of 24 hours so far" in summary
    assert "Continue: Contract Costing and Economic Indicators · 3 hours · Specialized Topics" in summary
    assert "Still to do: 6 more hours of Democratized Bargaining; 4 more Specialized Topics electives." in summary


def test_the_catalog_cards_are_short(client, platform, member_launch):
    html = text(client.get(member_launch(platform)))
    # The long description lives on the module page; the card keeps its first sentence.
    assert "Learn to put honest dollar figures on economic proposals" in html
    assert "and Chapter 70 state aid." not in html
    # Each group's paragraph no longer repeats its cards.
    assert "such as educator compensation, contract costing" not in html


def test_progress_page_links_the_next_step_of_each_group(app, client, platform, member_launch):
    home = member_launch(platform)
    _adjust(app, "user-member-1", FOUNDATIONS, 6, "adj:f")
    html = text(client.get(home + "progress"))
    foundations = html.split('id="g-foundations-next"')[1].split("</p>")[0]
    assert "This requirement is met." in foundations
    democratized = html.split('id="g-democratized-next"')[1].split("</p>")[0]
    assert "Start Democratized Bargaining" in democratized and "/modules/democratized-bargaining" in democratized
    specialized = html.split('id="g-specialized-next"')[1].split("</p>")[0]
    assert "/modules/" in specialized and "3 hours" in specialized


def test_upcoming_workshops_of_the_members_courses_only(app, client, platform, member_launch):
    today = date.today()
    soon = make_workshop(app, platform, event="Regional training", venue="Union hall",
                         day=today + timedelta(days=10))
    make_workshop(app, platform, event="Last year's conference", day=today - timedelta(days=365))
    make_workshop(app, platform, event="Someone else's course", day=today + timedelta(days=3),
                  context_id="course-999")
    summary_html = text(client.get(member_launch(platform))).split('id="next-steps"')[1].split("</section>")[0]
    summary = " ".join(re.sub(r"<[^>]+>", " ", summary_html).split())
    assert "Bargaining Foundations · " + (today + timedelta(days=10)).strftime("%b %-d, %Y").replace(" 0", " ") \
        + " · Regional training, Union hall" in summary
    assert f"/workshops/{soon}/attend" in summary_html
    assert "Last year's conference" not in summary and "Someone else's course" not in summary


def test_instructors_catalog_has_no_member_summary(client, platform, do_launch):
    home = do_launch(platform, "instructor").location
    html = text(client.get(home + "catalog"))
    assert 'id="next-steps"' not in html and "Course home" in html
