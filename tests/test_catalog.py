"""The program rules and the modules in content/, and how a broken file is reported."""
import re
import shutil
from pathlib import Path

import pytest

from lti_tool.catalog import ContentError, load_catalog

CONTENT = Path(__file__).resolve().parent.parent / "content"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(CONTENT)


@pytest.fixture
def content_copy(tmp_path):
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    return target


def test_program_rules_come_from_program_yaml(catalog):
    program = catalog.program
    assert program.total_hours == 24
    groups = {g.id: g for g in program.groups}
    assert groups["foundations"].required_hours == 6
    assert groups["democratized"].required_hours == 6
    assert groups["specialized"].required_hours == 12 and groups["specialized"].min_distinct_modules == 4


def test_the_catalog_has_the_core_modules_and_at_least_eight_electives(catalog):
    foundations = catalog.modules_in("foundations")
    democratized = catalog.modules_in("democratized")
    electives = catalog.modules_in("specialized")
    assert [m.credit_hours for m in foundations] == [6] and len(foundations[0].sections) >= 6
    assert [m.credit_hours for m in democratized] == [6] and len(democratized[0].sections) >= 6
    assert len(electives) >= 8 and all(len(m.sections) >= 3 and m.credit_hours == 3 for m in electives)


@pytest.mark.parametrize("slug", sorted(p.name for p in (CONTENT / "modules").iterdir()))
def test_each_module_has_substance_for_its_hours(catalog, slug):
    module = catalog.module(slug)
    words = sum(len(re.findall(r"\w+", s.markdown)) for s in module.sections)
    words += len(re.findall(r"\w+", module.facilitator_guide))
    words += sum(len(re.findall(r"\w+", a.instructions)) for a in module.activities)
    assert words >= 1000 * module.credit_hours
    assert any(a.required for a in module.activities)
    assert 6 <= len(module.knowledge_check.questions) <= 10
    assert {q.kind for q in module.knowledge_check.questions} == {"single", "multiple"}
    assert module.knowledge_check.pass_mark == 0.8


def _edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("file, old, new, expected", [
    ("modules/contract-costing/module.yaml", "credit_hours: 3", "credit_hours: -2",
     "contract-costing/module.yaml: credit_hours: Must be greater than or equal to 0.5"),
    ("modules/contract-costing/module.yaml", "group: specialized", "group: electives",
     "contract-costing/module.yaml: group: must be one of the groups in program.yaml"),
    ("modules/contract-costing/module.yaml", "slug: contract-costing", "slug: Contract Costing",
     "module.yaml: slug: must be lowercase letters"),
    ("modules/contract-costing/module.yaml", "kind: worksheet", "kind: quiz",
     "contract-costing/module.yaml: activities[0].kind: Must be one of"),
    ("modules/contract-costing/module.yaml", "file: sections/01-why-cost-a-contract.md",
     "file: sections/99-missing.md", "file sections/99-missing.md of section why-cost-a-contract is missing"),
    ("modules/contract-costing/module.yaml", "section: breakage-rollups-and-real-raises",
     "section: no-such-section", "activity costing-exercise names section 'no-such-section'"),
    ("program.yaml", "total_hours: 24", "total_hours: 10", "program.yaml: total_hours: the groups need more hours"),
    ("program.yaml", "email: bargaining@massteacher.org", "email: not-an-email",
     "program.yaml: contact.email: Not a valid email address"),
])
def test_a_broken_file_is_reported_with_file_and_field(content_copy, file, old, new, expected):
    _edit(content_copy / file, old, new)
    with pytest.raises(ContentError) as error:
        load_catalog(content_copy)
    assert expected in str(error.value)


def test_single_answer_question_with_two_correct_choices_is_refused(content_copy):
    path = content_copy / "modules/power-mapping/module.yaml"
    text = path.read_text()
    # make every choice of the first single-answer question correct
    start = text.index("kind: single")
    end = text.index("feedback:", start)
    path.write_text(text[:start] + text[start:end].replace("correct: true", "correct: false")
                    .replace("- text:", "- correct: true\n          text:") + text[end:])
    with pytest.raises(ContentError, match="exactly one correct choice"):
        load_catalog(content_copy)


def test_invalid_yaml_names_the_file(content_copy):
    (content_copy / "modules/esp-bargaining/module.yaml").write_text("slug: [unclosed\n")
    with pytest.raises(ContentError, match="esp-bargaining/module.yaml: not valid YAML"):
        load_catalog(content_copy)


def test_content_version_changes_when_a_section_changes(content_copy, catalog):
    before = catalog.module("impact-bargaining").content_version
    section = next((content_copy / "modules/impact-bargaining/sections").iterdir())
    section.write_text(section.read_text() + "\nOne more sentence.\n")
    after = load_catalog(content_copy).module("impact-bargaining").content_version
    assert before != after
    assert load_catalog(CONTENT).module("impact-bargaining").content_version == before


def test_content_check_command(runner, content_copy):
    result = runner.invoke(args=["content", "check"])
    folders = [p for p in (CONTENT / "modules").iterdir() if p.is_dir()]
    assert result.exit_code == 0 and f"Content is valid: {len(folders)} modules." in result.output
    _edit(content_copy / "modules/contract-costing/module.yaml", "credit_hours: 3", "credit_hours: 300")
    result = runner.invoke(args=["content", "check", "--content-dir", str(content_copy)])
    assert result.exit_code != 0 and "credit_hours" in result.output
