"""The legal register, cards and `content check`: every cited law registered, every reference resolved."""
import re
import shutil
from pathlib import Path

import pytest

from lti_tool.catalog import ContentError, load_catalog
from lti_tool.content_check import check_content, reading_grade
from lti_tool.rendering import render_content, spell_out_first_shorthand

CONTENT = Path(__file__).resolve().parent.parent / "content"
CATALOG = load_catalog(CONTENT)


@pytest.fixture
def content(tmp_path):
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def line_number(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def run_check(runner, content, *extra):
    return runner.invoke(args=["content", "check", "--content-dir", str(content), *extra])


def test_the_shipped_content_passes_the_check_and_uses_every_entry():
    report = check_content(CONTENT)
    assert report.problems == [] and report.unused == []
    assert len(report.readability) == sum(len(m.sections) for m in CATALOG.modules)
    above = [f"{r.file}: {r.grade}" for r in report.readability if r.above]
    assert above == [], "sections read above program.yaml's reading_grade_max"


def test_an_unregistered_statute_section_fails_with_file_and_line(runner, content):
    section = content / "modules/impact-bargaining/sections/03-notice-and-demand.md"
    section.write_text(section.read_text() + "\nThe employer must also post notices (c.150E §11).\n")
    result = run_check(runner, content)
    assert result.exit_code != 0
    expected = (f"modules/impact-bargaining/sections/03-notice-and-demand.md:{line_number(section, '§11')}: "
                "cites 'c.150E §11', which no entry of the legal register lists")
    assert expected in result.output


@pytest.mark.parametrize("added, cited", [
    ("See Janus v. AFSCME, 585 U.S. 878 (2018).", "Janus v. AFSCME"),
    ("See School Committee of Boston v. Boston Teachers Union, 378 Mass. 65.", "378 Mass. 65"),
    ("See 456 CMR 15.03 for filing deadlines.", "456 CMR 15.03"),
    ("Chapter 150E, section 10 lists the prohibited practices.", "Chapter 150E, section 10"),
])
def test_unregistered_cases_regulations_and_spelled_out_sections_fail(runner, content, added, cited):
    guide = content / "modules/power-mapping/facilitator-guide.md"
    guide.write_text(guide.read_text() + f"\n{added}\n")
    result = run_check(runner, content)
    assert result.exit_code != 0
    assert f"modules/power-mapping/facilitator-guide.md:{line_number(guide, added[:20])}: cites" in result.output
    assert cited.split()[-1] in result.output


def test_a_registered_form_does_not_cover_a_longer_citation(runner, content):
    # "§9" is registered (the impasse steps); "§9B" is another section and must be registered on its own.
    section = content / "modules/bargaining-foundations/sections/10-impasse-and-midterm.md"
    section.write_text(section.read_text() + "\nA new rule (§9B) may apply.\n")
    result = run_check(runner, content)
    assert result.exit_code != 0 and "cites '§9B'" in result.output


def test_a_citation_in_a_question_feedback_is_checked_with_its_yaml_line(runner, content):
    module = content / "modules/esp-bargaining/module.yaml"
    text = module.read_text()
    first_feedback = re.search(r"\n      feedback: >\n        ", text)
    module.write_text(text[:first_feedback.end()] + "Under c.71 §42, dismissal needs notice. " +
                      text[first_feedback.end():])
    result = run_check(runner, content)
    assert f"modules/esp-bargaining/module.yaml:{line_number(module, 'c.71 §42')}: cites 'c.71 §42'" in result.output


def test_a_dangling_law_reference_fails_with_file_and_line(runner, content):
    section = content / "modules/contract-costing/sections/02-salary-math.md"
    section.write_text(section.read_text() + "\nRaises compound {{law:no-such-entry}}.\n")
    result = run_check(runner, content)
    assert result.exit_code != 0
    assert (f"modules/contract-costing/sections/02-salary-math.md:{line_number(section, 'no-such-entry')}: "
            "{{law:no-such-entry}} names no entry of the legal register") in result.output
    with pytest.raises(ContentError, match=r"02-salary-math.md:\d+: \{\{law:no-such-entry\}\} names no entry"):
        load_catalog(content)  # and the tool does not start on it


def test_a_dangling_card_fails_with_file_and_line(runner, content):
    section = content / "modules/power-mapping/sections/05-targets-tactics-and-upkeep.md"
    edit(section, "{{card:strike-ban}}", "{{card:strike-bans}}")
    result = run_check(runner, content)
    assert result.exit_code != 0
    assert (f"modules/power-mapping/sections/05-targets-tactics-and-upkeep.md:"
            f"{line_number(section, 'strike-bans')}: {{{{card:strike-bans}}}} names no card") in result.output
    with pytest.raises(ContentError, match="content/cards/strike-bans.md is missing"):
        load_catalog(content)


def test_a_card_must_stand_on_its_own_line(content):
    section = content / "modules/power-mapping/sections/05-targets-tactics-and-upkeep.md"
    edit(section, "{{card:strike-ban}}", "See this: {{card:strike-ban}}")
    with pytest.raises(ContentError, match=r"05-targets-tactics-and-upkeep.md:\d+: \{\{card:strike-ban\}\} must "
                                           "stand alone on its own line"):
        load_catalog(content)


def test_entries_no_module_uses_are_listed(runner, content):
    with (content / "legal-register.yaml").open("a") as register:
        register.write("""
  - id: c150e-2-rights
    statement: Public employees may form and join unions.
    citation: "M.G.L. c. 150E, § 2"
    source: https://malegislature.gov/Laws/GeneralLaws/PartI/TitleXXI/Chapter150E/Section2
    reviewed: {on: 2026-11-28, by: "Curriculum team"}
""")
    result = run_check(runner, content)
    assert result.exit_code == 0, result.output
    assert "Register entries no module uses: c150e-2-rights" in result.output


@pytest.mark.parametrize("old, new, expected", [
    ("  - id: c150e-9a-strike-ban", "  - id: C150E 9A", "legal-register.yaml: entries[12].id: must be lowercase"),
    ("    source: https://malegislature.gov/Laws/GeneralLaws/PartI/TitleXXI/Chapter150E/Section9A\n",
     "    source: not a web address\n", "entries[12].source: Not a valid URL"),
    ("    reviewed: {on: 2026-11-28, by: \"Curriculum team\"}\n\n  - id: c150e-9a-voluntary-tasks",
     "    reviewed: {on: someday, by: \"Curriculum team\"}\n\n  - id: c150e-9a-voluntary-tasks",
     "entries[12].reviewed.on: Not a valid date"),
    ("  - id: c150e-9a-voluntary-tasks", "  - id: c150e-9a-strike-ban",
     "entry ids must be unique (c150e-9a-strike-ban"),
])
def test_the_register_is_validated_like_every_content_file(content, old, new, expected):
    edit(content / "legal-register.yaml", old, new)
    with pytest.raises(ContentError, match=re.escape(expected)):
        load_catalog(content)


def test_register_additions_are_read_until_folded_in(runner, content):
    additions = content / "register-additions"
    additions.mkdir()
    (additions / "school-municipal-finances.yaml").write_text("""entries:
  - id: c59-21c-new-growth-only
    statement: A city or town's property tax levy may rise by at most 2.5% a year, plus new growth.
    citation: "M.G.L. c. 59, § 21C"
    cites: ["c.59 §21C"]
    source: https://malegislature.gov/Laws/GeneralLaws/PartI/TitleIX/Chapter59/Section21C
    reviewed: {on: 2026-11-28, by: "Curriculum team"}
""")
    section = content / "modules/contract-costing/sections/04-reading-the-budget.md"
    section.write_text(section.read_text()
                       + "\nThe levy limit (c.59 §21C) caps growth {{law:c59-21c-new-growth-only}}.\n")
    result = run_check(runner, content)
    assert result.exit_code == 0, result.output
    entry = load_catalog(content).register.entry("c59-21c-new-growth-only")
    assert entry.file == "register-additions/school-municipal-finances.yaml"
    (additions / "again.yaml").write_text((additions / "school-municipal-finances.yaml").read_text())
    with pytest.raises(ContentError, match="id 'c59-21c-new-growth-only' is already in"):
        load_catalog(content)


def test_a_card_is_written_once_and_its_correction_reaches_every_section(content):
    including = [(m.slug, s.slug) for m in CATALOG.modules for s in m.sections
                 if "{{card:strike-ban}}" in (CONTENT / "modules" / m.slug / s.file).read_text()]
    assert len(including) >= 7  # the strike ban was restated about nine times; now it is written once
    before = {m.slug: m.content_version for m in CATALOG.modules}
    edit(content / "cards/strike-ban.md", "Public employees in Massachusetts may not strike.",
         "Public employees in Massachusetts may not strike, ever.")
    corrected = load_catalog(content)
    for slug, section in including:
        assert "may not strike, ever." in corrected.module(slug).section(section).markdown
    changed = {m.slug for m in corrected.modules if m.content_version != before[m.slug]}
    assert {slug for slug, _ in including} <= changed
    assert "pensions-retirement-security" not in changed


def test_a_law_reference_renders_as_a_linked_source_note():
    html = str(render_content("Strikes are banned (c.150E §9A) {{law:c150e-9a-strike-ban}}.", CATALOG.register))
    assert ('<span class="law-source">(Source: <a href="https://malegislature.gov/Laws/GeneralLaws/PartI/TitleXXI/'
            'Chapter150E/Section9A" rel="noopener noreferrer">M.G.L. c. 150E, § 9A</a>)</span>') in html
    assert "{{law" not in html


def test_the_first_statute_shorthand_on_a_page_is_spelled_out_for_screen_readers():
    text = "Strikes are banned (c.150E §9A). Later: §9A and c.32B."
    assert spell_out_first_shorthand(text) == ("Strikes are banned (chapter 150E, section 9A (c.150E §9A)). "
                                               "Later: §9A and c.32B.")
    assert spell_out_first_shorthand("Under §§21-23 of c.32B") == (
        "Under sections 21 to 23 (§§21-23) of chapter 32B (c.32B)")
    assert spell_out_first_shorthand("No statute here.") == "No statute here."
    assert spell_out_first_shorthand("Arbitration (c.150E, section 8).") == "Arbitration (chapter 150E, section 8)."


def test_the_section_page_shows_source_notes_and_cards(client, platform, member_launch):
    home = member_launch(platform)
    html = client.get(home + "modules/bargaining-foundations/sections/law-and-process").get_data(as_text=True)
    assert "{{" not in html
    assert html.count('class="law-source"') >= 8
    assert ">M.G.L. c. 71, § 34</a>" in html and ">School Committee of Newton v. Labor Relations Commission, " \
                                                 "388 Mass. 557 (1983)</a>" in html
    assert "The strike ban." in html and "Decisions, impacts and layoffs." in html
    assert "(chapter 150E, section 8)" in html  # the page's first shorthand, read aloud as words


def test_feedback_shows_its_source_notes(client, platform, member_launch):
    home = member_launch(platform)
    page = client.get(home + "modules/power-mapping/check").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    result = client.post(home + "modules/power-mapping/check", data={"csrf_token": token}).get_data(as_text=True)
    assert "{{law:" not in result
    questions = re.findall(r'name="([a-z0-9-]+)" value="0"', page)
    graded = client.post(home + "modules/power-mapping/check",
                         data={"csrf_token": token, **{q: "0" for q in questions}}).get_data(as_text=True)
    assert 'class="law-source"' in graded and ">M.G.L. c. 150E, § 7(b), last sentence</a>" in graded


def test_reading_grade_is_measured_and_flagged_above_program_yaml(runner, content):
    assert reading_grade("The cat sat. The dog ran.") < 3
    assert reading_grade("Notwithstanding any contrary provision, the appropriating authority's determination "
                         "regarding supplementary compensation constitutes a nondelegable managerial prerogative.") > 15
    edit(content / "program.yaml", "reading_grade_max: 9", "reading_grade_max: 4")
    result = run_check(runner, content)
    assert result.exit_code == 0
    assert re.search(r"modules/bargaining-foundations/sections/02-law-and-process.md: grade \d+\.\d  ABOVE 4",
                     result.output)
    strict = run_check(runner, content, "--strict-reading")
    assert strict.exit_code != 0 and "read above grade 4" in strict.output


def test_an_empty_table_header_cell_fails_with_file_and_line(runner, content):
    section = content / "modules/educator-compensation/sections/04-comparables-and-schedule-proposals.md"
    edit(section, "| MA lane | District A | District B |", "| | District A | District B |")
    result = run_check(runner, content)
    assert result.exit_code != 0
    assert (f"modules/educator-compensation/sections/04-comparables-and-schedule-proposals.md:"
            f"{line_number(section, '| | District A')}: a table header cell is empty") in result.output


def test_no_section_asks_members_to_mark_changes_by_strikethrough_alone():
    proposals = CATALOG.module("bargaining-foundations").section("platform-and-proposals").markdown
    assert "[DELETE:" in proposals and "Screen readers do not announce" in proposals
