"""The member's pages, through a real launch: catalog, module, sections, activities, knowledge check."""
import re

import pytest
from werkzeug.datastructures import MultiDict

from lti_tool.rendering import render_markdown
from tests.conftest import recorded_sql
from tests.platform import LTI

MODULE = "esp-bargaining"


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def member_home(platform, member_launch):
    """Launch as a registered member; return the landing URL (/l/<launch id>/)."""
    return member_launch(platform)


def test_catalog_lists_modules_by_requirement_group_with_hours(app, client, member_home):
    from lti_tool.catalog import current_catalog

    with app.app_context():
        module_count = len(current_catalog().modules)
    html = text(client.get(member_home))
    for heading in ("Bargaining Foundations", "Democratized Bargaining", "Specialized Topics"):
        assert f">{heading}</h2>" in html
    assert "at least 4 different modules" in html
    assert "Education Support Professionals" in html and "3 hours" in html and "6 hours" in html
    assert html.count("Not started") == module_count


def test_module_page_shows_objectives_hours_sections_and_progress(client, member_home):
    html = text(client.get(member_home + f"modules/{MODULE}"))
    assert "What you will be able to do" in html and "Specialized Topics · 3 hours" in html
    assert 'value="0"' in html and "0% of this module done" in html
    assert "Start:" in html


def test_sections_record_visits_and_link_previous_and_next(client, member_home):
    module_html = text(client.get(member_home + f"modules/{MODULE}"))
    first = re.search(r'href="([^"]+/sections/[^"]+)">Start', module_html).group(1)
    html = text(client.get(first))
    assert 'rel="next"' in html and 'rel="prev"' not in html
    second = re.search(r'rel="next" href="([^"]+)"', html).group(1)
    html = text(client.get(second))
    assert 'rel="prev"' in html
    overview = text(client.get(member_home + f"modules/{MODULE}"))
    assert overview.count('class="visited"') == 2 and "Continue:" in overview


def _first_activity_form(client, member_home):
    overview = text(client.get(member_home + f"modules/{MODULE}"))
    for href in re.findall(r'href="([^"]+/sections/[^"]+)"', overview):
        html = text(client.get(href))
        match = re.search(r'<form method="post" action="([^"]+/activities/[^"]+)">', html)
        if match:
            return href, html, match.group(1)
    raise AssertionError("no activity found")


def test_activity_answers_are_saved_and_shown_again(client, member_home):
    section_url, html, action = _first_activity_form(client, member_home)
    names = re.findall(r'<(?:textarea|input type="text") id="[^"]+" name="([a-z0-9_]+)"', html)
    assert names
    missing = client.post(action, data={"csrf_token": csrf(html)})
    assert missing.status_code == 422 and "Please answer this before saving." in text(missing)
    answers = {name: f"Our local's answer for {name}" for name in names}
    saved = client.post(action, data={"csrf_token": csrf(html), **answers})
    assert saved.status_code == 303
    again = text(client.get(saved.location.split("#")[0]))
    assert "are saved." in again
    assert all(f"Our local&#39;s answer for {name}" in again for name in names)


def test_activity_form_needs_csrf(client, member_home):
    _, _, action = _first_activity_form(client, member_home)
    assert client.post(action, data={"anything": "x"}).status_code == 400


def test_knowledge_check_feedback_retake_and_completion(app, client, member_home):
    from lti_tool.catalog import current_catalog

    with app.app_context():
        module = current_catalog().module(MODULE)
    check_url = member_home + f"modules/{MODULE}/check"
    form = text(client.get(check_url))
    token = csrf(form)
    incomplete = client.post(check_url, data={"csrf_token": token})
    assert incomplete.status_code == 422 and "Please answer every question" in text(incomplete)
    wrong = {q.id: str(next(i for i, c in enumerate(q.choices) if not c.correct))
             for q in module.knowledge_check.questions}
    result = text(client.post(check_url, data={"csrf_token": token, **wrong}))
    assert "You scored 0%" in result and "Not quite." in result and "Retake the knowledge check" in result
    right = [(q.id, str(i)) for q in module.knowledge_check.questions for i, c in enumerate(q.choices) if c.correct]
    result = text(client.post(check_url, data=MultiDict([("csrf_token", token)] + right)))
    assert "You scored 100%" in result and "You passed." in result
    assert "visit every section and answer every required activity" in result  # not complete yet

    # finish: every section and every required activity
    for section in module.sections:
        client.get(member_home + f"modules/{MODULE}/sections/{section.slug}")
    for activity in module.activities:
        client.post(member_home + f"modules/{MODULE}/activities/{activity.slug}",
                    data={"csrf_token": token, **{f.name: "done" for f in activity.fields}})
    overview = text(client.get(member_home + f"modules/{MODULE}"))
    assert "You completed this module" in overview and "100% of this module done" in overview
    assert "Complete</span>" in text(client.get(member_home))


def test_placed_link_with_a_module_parameter_opens_that_module(client, platform, member_launch):
    platform.claim_overrides = {LTI + "custom": {"module": "power-mapping"}}
    home = member_launch(platform)
    landed = client.get(home)
    assert landed.status_code == 302 and landed.location.endswith("/modules/power-mapping")


def test_unknown_module_and_section_are_404(client, member_home):
    assert client.get(member_home + "modules/no-such-module").status_code == 404
    assert client.get(member_home + f"modules/{MODULE}/sections/no-such-section").status_code == 404


def test_facilitator_guide_is_for_instructors_only(client, platform, do_launch, app, member_home):
    assert client.get(member_home + f"modules/{MODULE}/facilitator-guide").status_code == 403
    instructor = app.test_client()
    home = do_launch(platform, "instructor", browser=instructor).location
    guide = instructor.get(home + f"modules/{MODULE}/facilitator-guide")
    assert guide.status_code == 200 and "Facilitator guide" in text(guide)


def test_progress_is_per_person_and_never_shown_to_another(app, client, platform, member_launch, member_home):
    first_section = re.search(r'href="([^"]+/sections/[^"]+)">Start',
                              text(client.get(member_home + f"modules/{MODULE}"))).group(1)
    client.get(first_section)
    other = app.test_client()
    platform.users["member"].sub = "another-member"
    other_home = member_launch(platform, browser=other)
    assert "0% of this module done" in text(other.get(other_home + f"modules/{MODULE}"))
    assert "0% of this module done" not in text(client.get(member_home + f"modules/{MODULE}"))


def test_markdown_is_rendered_safely():
    html = str(render_markdown("## Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) **bold**"))
    assert "<h2>Title</h2>" in html and "<strong>bold</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html  # shown as text, never run
    assert 'href="javascript' not in html


def test_the_catalog_reads_progress_once_for_all_modules_and_shows_each(app, client, member_home):
    """The catalog shows every module's progress from one query per kind of record, not one per module."""
    module_html = text(client.get(member_home + f"modules/{MODULE}"))
    client.get(re.search(r'href="([^"]+/sections/[^"]+)">Start', module_html).group(1))
    with recorded_sql(app) as statements:
        html = text(client.get(member_home + "catalog"))
    assert "% done" in html  # the started module shows its share done
    for table in ("section_visits", "activity_answers", "quiz_attempts", "module_completions"):
        assert sum(f"FROM {table}" in s for s in statements) == 1, (table, len(statements))
    # Visits, answers and knowledge-check scores come back together, in one round trip.
    reading = {table: [s for s in statements if f"FROM {table}" in s]
               for table in ("section_visits", "activity_answers", "quiz_attempts")}
    assert reading["section_visits"] == reading["activity_answers"] == reading["quiz_attempts"]


def test_the_last_section_opened_completes_the_module_and_its_page_says_so(app, client, member_home):
    """When a section visit is the last step, that very page shows the module complete, and it is recorded once."""
    import sqlalchemy as sa

    from lti_tool.catalog import current_catalog
    from lti_tool.extensions import db
    from lti_tool.models import LedgerEntry, ModuleCompletion

    with app.app_context():
        module = current_catalog().module(MODULE)
    token = csrf(text(client.get(member_home + f"modules/{MODULE}/check")))
    right = [(q.id, str(i)) for q in module.knowledge_check.questions for i, c in enumerate(q.choices) if c.correct]
    client.post(member_home + f"modules/{MODULE}/check", data=MultiDict([("csrf_token", token)] + right))
    for activity in module.activities:
        client.post(member_home + f"modules/{MODULE}/activities/{activity.slug}",
                    data={"csrf_token": token, **{f.name: "done" for f in activity.fields}})
    *first, last = module.sections
    for section in first:
        assert "· complete" not in text(client.get(member_home + f"modules/{MODULE}/sections/{section.slug}"))
    page = text(client.get(member_home + f"modules/{MODULE}/sections/{last.slug}"))
    assert "100% of this module done · complete" in page
    again = text(client.get(member_home + f"modules/{MODULE}/sections/{last.slug}"))
    assert "100% of this module done · complete" in again
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ModuleCompletion)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.module_slug == MODULE)) == 1


def test_reading_a_section_again_writes_nothing(app, client, member_home):
    """Only the first visit of a section is written: members reread sections, and a write would queue them on
    SQLite's one write lock for nothing."""
    module_html = text(client.get(member_home + f"modules/{MODULE}"))
    first = re.search(r'href="([^"]+/sections/[^"]+)">Start', module_html).group(1)

    def kinds(statements):
        return {s.lstrip().split(None, 1)[0].upper() for s in statements}

    with recorded_sql(app) as statements:
        assert client.get(first).status_code == 200
    assert "INSERT" in kinds(statements)  # the first visit is recorded
    with recorded_sql(app) as statements:
        assert client.get(first).status_code == 200
    assert kinds(statements) == {"SELECT"}, statements
    overview = text(client.get(member_home + f"modules/{MODULE}"))
    assert overview.count('class="visited"') == 1
