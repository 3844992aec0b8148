"""Which kinds of credit fill each requirement group, as program.yaml says: the rules, the ledger, the pages."""
import dataclasses
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from lti_tool.catalog import CREDIT_KINDS, ContentError, load_catalog
from lti_tool.extensions import db
from lti_tool.services import exports, ledger
from lti_tool.services.rules import compute_progress

CONTENT = Path(__file__).resolve().parent.parent / "content"
CATALOG = load_catalog(CONTENT)
ELECTIVES = [m.slug for m in CATALOG.modules_in("specialized")][:4]
CORE = [("bargaining-foundations", 6), ("democratized-bargaining", 6)]


def with_counts(catalog, **counts):
    """Return the catalog with some groups counting only the given kinds of credit."""
    groups = tuple(dataclasses.replace(g, counts=tuple(counts.get(g.id, g.counts))) for g in catalog.program.groups)
    return dataclasses.replace(catalog, program=dataclasses.replace(catalog.program, groups=groups))


def progress(catalog, *entries):
    return compute_progress(catalog, [(slug, Decimal(str(hours)), kind) for slug, hours, kind in entries])


def test_by_default_every_kind_of_credit_counts_in_every_group():
    assert all(g.counts == CREDIT_KINDS for g in CATALOG.program.groups)
    kinds = ["module_completion", "workshop_grade", "admin_adjustment", "module_completion"]
    result = progress(CATALOG, *[(s, h, "workshop_grade") for s, h in CORE],
                      *[(slug, 3, kind) for slug, kind in zip(ELECTIVES, kinds, strict=True)])
    assert result.met and result.total_hours == 24


@pytest.mark.parametrize("kind, counted", [("workshop_grade", True), ("module_completion", False),
                                           ("admin_adjustment", False)])
def test_electives_that_count_only_as_workshops(kind, counted):
    catalog = with_counts(CATALOG, specialized=["workshop_grade"])
    result = progress(catalog, *[(s, h, "module_completion") for s, h in CORE], *[(s, 3, kind) for s in ELECTIVES])
    specialized = next(g for g in result.groups if g.id == "specialized")
    assert result.met is counted
    assert specialized.hours == (12 if counted else 0)
    assert result.what_is_left == ([] if counted else ["4 more Specialized Topics electives"])
    # The ledger's own total per module is unchanged: only what counts toward the group differs.
    assert result.module_hours[ELECTIVES[0]] == 3


def test_a_group_can_count_two_kinds_and_leave_out_the_third():
    catalog = with_counts(CATALOG, foundations=["module_completion", "workshop_grade"])
    adjusted = progress(catalog, ("bargaining-foundations", 6, "admin_adjustment"))
    assert adjusted.groups[0].hours == 0 and adjusted.what_is_left[0] == "6 more hours of Bargaining Foundations"
    mixed = progress(catalog, ("bargaining-foundations", 2, "module_completion"),
                     ("bargaining-foundations", 4, "workshop_grade"), ("bargaining-foundations", 6, "admin_adjustment"))
    assert mixed.groups[0].hours == 6 and mixed.groups[0].met


def test_a_reversal_counts_as_the_kind_it_cancels():
    catalog = with_counts(CATALOG, specialized=["workshop_grade"])
    result = progress(catalog, *[(s, 3, "workshop_grade") for s in ELECTIVES], (ELECTIVES[0], -3, "workshop_grade"),
                      (ELECTIVES[0], 3, "module_completion"))
    assert result.what_is_left[-1] == "1 more Specialized Topics elective"


SPECIALIZED_COUNTS = "    min_distinct_modules: 4\n    counts: [module_completion, workshop_grade, admin_adjustment]"


def test_program_yaml_publishes_the_programs_contact():
    assert CATALOG.program.contact_email == "bargaining@massteacher.org"


def _content_with(tmp_path, old, new):
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    program = target / "program.yaml"
    text = program.read_text()
    assert old in text
    program.write_text(text.replace(old, new, 1))
    return target


@pytest.mark.parametrize("counts, expected", [
    ("[workshop_grade, attendance]", "program.yaml: groups[2].counts[1]: Must be one of"),
    ("[]", "program.yaml: groups[2].counts: must name at least one kind of credit"),
])
def test_program_yaml_refuses_an_unknown_or_empty_list_of_credit_kinds(tmp_path, counts, expected):
    content = _content_with(tmp_path, SPECIALIZED_COUNTS, f"    min_distinct_modules: 4\n    counts: {counts}")
    with pytest.raises(ContentError, match=re.escape(expected)):
        load_catalog(content)


def test_the_ledger_pages_and_export_follow_program_yaml(app, tmp_path, make_account, client, platform,
                                                         member_launch):
    content = _content_with(tmp_path, SPECIALIZED_COUNTS, "    min_distinct_modules: 4\n    counts: [workshop_grade]")
    app.extensions["catalog"] = load_catalog(content)
    home = member_launch(platform)
    with app.app_context():
        from lti_tool.models import Account
        account = db.session.query(Account).one()
        person_id = account.person_id
        for slug, hours in CORE:
            ledger.record_hours(account_id=account.id, module_slug=slug, hours=hours, source="module_completion",
                                source_ref=f"completion:{slug}")
        for slug in ELECTIVES[:3]:
            ledger.record_hours(account_id=account.id, module_slug=slug, hours=3, source="workshop_grade",
                                source_ref=f"grade:{slug}")
        self_paced = ledger.record_hours(account_id=account.id, module_slug=ELECTIVES[3], hours=3,
                                         source="module_completion", source_ref="completion:elective")
        workshop = ledger.record_hours(account_id=account.id, module_slug=ELECTIVES[0], hours=3,
                                       source="workshop_grade", source_ref="grade:again")
        ledger.reverse_entry(workshop.id, reason="Recorded twice", actor_account_id=None)
        db.session.commit()
        by_query = ledger.person_progress(person_id)
        by_entries = ledger.person_ledger(person_id).progress
        rows = list(exports.progress_rows(app.extensions["catalog"]))
        for result in (by_query, by_entries):
            assert result.what_is_left == ["1 more Specialized Topics elective"]
            assert next(g for g in result.groups if g.id == "specialized").hours == 9
        header, row = rows[0], rows[1]
        assert Decimal(row[header.index("specialized_hours")]) == 9 and row[header.index("requirements_met")] == "no"
        assert ledger.person_ledger(person_id).counts(self_paced, app.extensions["catalog"]) is False
    page = client.get(home + "progress").get_data(as_text=True)
    assert "Only graded workshops count toward Specialized Topics." in page
    assert page.count("Does not count toward Specialized Topics") == 1
    assert "Still to do: 1 more Specialized Topics elective." in page
