"""The four statements of law and arithmetic the review found wrong must not come back anywhere members read them.

Wrong answers in a knowledge check (the distractors) state the misconceptions on purpose and are left out.
"""
import re
from pathlib import Path

import pytest

from lti_tool.catalog import load_catalog

CONTENT = Path(__file__).resolve().parent.parent / "content"
CATALOG = load_catalog(CONTENT)

#: Key phrases of the old claims, as the modules wrote them.
OLD_CLAIMS = {
    "school contracts go to town meeting or the council within 30 days": [
        r"for municipal and school employees",
        r"cost items (?:in a public-sector contract )?must be funded by the appropriating body",
        r"has to be appropriated by town meeting or the city council",
        r"the appropriating body funds the cost items",
        r"must ask the appropriating body to fund them within 30 days",
        r"(?:town or city|town meeting or city council) funds the cost items",
        r"the school committee bargains and the town meeting or city council funds",
        r"If (?:the )?cost items are\s+not funded, they return to the table",
        r"If the Legislature does not fund the cost items, they go back to the parties",
    ],
    "a January raise costs about half a year in a September contract year": [
        r"about half, or roughly \$50,500", r"\$150,500",
    ],
    "layoffs to save money are a managerial decision, bargainable only for impacts": [
        r"how many positions to fund",
    ],
    "the union may not use district email without the district's agreement": [
        r"unless the district has agreed",
        r"not employer email or district messaging systems, for union business",
        r"do not use employer resources \(email",
        r"avoid employer email systems for union surveys",
    ],
}


def member_facing_texts():
    """Yield (where, text) for everything members and facilitators read, except knowledge-check distractors."""
    yield "program.yaml", CATALOG.program.description
    for name, card in CATALOG.cards.items():
        yield f"cards/{name}.md", card
    for m in CATALOG.modules:
        yield f"{m.slug}: summary and objectives", " ".join([m.summary, *m.objectives, m.audience_prek12,
                                                             m.audience_higher_ed])
        for s in m.sections:
            yield f"{m.slug}/{s.file}", s.markdown
        yield f"{m.slug}/facilitator guide", m.facilitator_guide
        for a in m.activities:
            yield f"{m.slug} activity {a.slug}", " ".join([a.instructions, *(f.label + " " + (f.help or "")
                                                                             for f in a.fields)])
        for q in m.knowledge_check.questions:
            yield f"{m.slug} question {q.id}", " ".join([q.feedback, *(c.text for c in q.choices if c.correct)])


@pytest.mark.parametrize("claim", sorted(OLD_CLAIMS))
def test_an_old_wrong_claim_does_not_return(claim):
    found = [f"{where}: '{match.group(0)}'" for where, text in member_facing_texts()
             for pattern in OLD_CLAIMS[claim] for match in re.finditer(pattern, " ".join(text.split()))]
    assert found == [], f"The old claim ({claim}) is back in: " + "; ".join(found)


def test_each_corrected_item_is_a_knowledge_check_question_with_the_misconception_as_a_distractor():
    def question(slug, qid):
        return next(q for q in CATALOG.module(slug).knowledge_check.questions if q.id == qid)

    funding = question("bargaining-foundations", "school-contract-funding")
    assert any("within 30 days" in c.text and not c.correct for c in funding.choices)
    split = question("bargaining-foundations", "split-raise-months")
    assert [c.correct for c in split.choices if "$150,500" in c.text] == [False]
    assert [c.correct for c in split.choices if "$167,300" in c.text] == [True]
    layoffs = question("bargaining-foundations", "layoffs-decision-and-impacts")
    assert any("Only bargaining over the impacts" in c.text and not c.correct for c in layoffs.choices)
    assert sum(c.correct for c in layoffs.choices) == 2
    email = question("democratized-bargaining", "union-email-rights")
    assert any("needs the district's agreement" in c.text and not c.correct for c in email.choices)


def test_the_phrase_list_would_catch_the_old_text():
    old_foundations = ("Within 30 days after the agreement is signed, the employer must ask the appropriating body "
                       "for the money; cost items must be funded by the appropriating body: town meeting or city "
                       "council for municipal and school employees.")
    assert any(re.search(p, old_foundations) for p in OLD_CLAIMS["school contracts go to town meeting or the "
                                                                  "council within 30 days"])
