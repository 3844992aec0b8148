"""The certificate's rules, from ledger entries and program.yaml alone."""
from decimal import Decimal
from pathlib import Path

import pytest

from lti_tool.catalog import load_catalog
from lti_tool.services.rules import compute_progress

CATALOG = load_catalog(Path(__file__).resolve().parent.parent / "content")
ELECTIVES = [m.slug for m in CATALOG.modules_in("specialized")]


def progress(*entries, catalog=CATALOG):
    """Progress from (slug, hours) or (slug, hours, kind) entries; a self-paced completion unless a kind is given."""
    return compute_progress(catalog, [(e[0], Decimal(str(e[1])), e[2] if len(e) > 2 else "module_completion")
                                      for e in entries])


FULL = [("bargaining-foundations", 6), ("democratized-bargaining", 6)] + [(slug, 3) for slug in ELECTIVES[:4]]


def test_exactly_24_hours_meets_the_rules():
    result = progress(*FULL)
    assert result.met and result.total_hours == 24 and result.what_is_left == []


def test_three_electives_are_not_enough_even_with_enough_hours_elsewhere():
    result = progress(*FULL[:-1], ("bargaining-foundations", 6))
    assert not result.met
    assert result.what_is_left == ["1 more Specialized Topics elective"]
    assert result.total_hours == 21


def test_two_electives_short_is_said_in_plain_words():
    result = progress(*FULL[:-2])
    assert result.what_is_left == ["2 more Specialized Topics electives"]


def test_partial_hours_accumulate_toward_a_group():
    result = progress(("bargaining-foundations", 2), ("bargaining-foundations", 2.5))
    foundations = result.groups[0]
    assert foundations.hours == Decimal("4.5") and not foundations.met
    assert "1.5 more hours of Bargaining Foundations" in result.what_is_left


def test_a_module_counts_at_most_its_own_hours():
    # self-paced and again as a workshop: 6 hours, not 12
    result = progress(("bargaining-foundations", 6), ("bargaining-foundations", 6))
    assert result.groups[0].hours == 6


def test_hours_above_a_groups_requirement_do_not_fill_another_group():
    result = progress(*[(slug, 3) for slug in ELECTIVES[:8]])
    specialized = next(g for g in result.groups if g.id == "specialized")
    assert specialized.hours == 24 and specialized.counted_hours == 12
    assert result.total_hours == 12 and not result.met
    assert result.what_is_left == ["6 more hours of Bargaining Foundations", "6 more hours of Democratized Bargaining"]


def test_a_partial_elective_adds_hours_but_is_not_a_distinct_elective():
    result = progress(*FULL[:-1], (ELECTIVES[4], 1.5))
    specialized = next(g for g in result.groups if g.id == "specialized")
    assert specialized.hours == Decimal("10.5") and len(specialized.complete_modules) == 3


def test_a_reversal_takes_hours_away():
    result = progress(*FULL, (ELECTIVES[0], -3))
    assert not result.met and result.what_is_left == ["1 more Specialized Topics elective"]


@pytest.mark.parametrize("entries", [[], [("no-longer-in-catalog", 6)]])
def test_nothing_or_unknown_modules_count_nothing(entries):
    result = progress(*entries)
    assert result.total_hours == 0 and len(result.what_is_left) == 3
