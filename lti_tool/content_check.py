"""`content check` beyond the schemas: every cited law is in the legal register, every reference resolves, and
each member-facing section's reading grade is measured (textstat) against the level program.yaml sets.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

import textstat

from lti_tool.catalog import (
    CARD_REF,
    LAW_REF,
    SLUG_PATTERN,
    Catalog,
    ContentError,
    LegalRegister,
    line_of,
    load_catalog,
    load_register,
)

#: A citation of a statute section, a regulation, a session law or a case, as module text writes them.
CITATION = re.compile(r"""
    (?:\b(?:M\.\s?G\.\s?L\.|G\.\s?L\.)\s*)?(?:\bc\.\s*|\bch\.\s*|\bchapters?\s+)\d+[A-Z]?,?\s*
        (?:§§?|\bsections?\b|\bsec\.)\s*\d+[A-Z]?(?:\([a-z0-9]+\))*           # chapter and section
  | §§?\s*\d+[A-Z]?(?:\([a-z0-9]+\))*(?:\s*[-–]\s*\d+[A-Z]?)?                 # a section sign
  | \bsections?\s+\d+[A-Z]?(?:\([a-z0-9]+\))*(?:\s*[-–]\s*\d+[A-Z]?)?\b       # "section 19" written out
  | \b\d+\s+CMR\s+\d+(?:\.\d+)*                                              # a regulation
  | \b\d+\s+Mass\.(?:\s+App\.\s+Ct\.)?\s+\d+                                 # a case in the reporters
  | \b\d+\s+(?:U\.\s?S\.|S\.\s?Ct\.|F\.\s?(?:2d|3d|4th|Supp\.)|N\.E\.(?:2d|3d)?)\s+\d+  # federal and regional reporters
  | \b\d+\s+U\.\s?S\.\s?C\.\s*§*\s*\d+                                         # the U.S. Code
  | \bSt\.\s*\d{4},\s*c\.\s*\d+                                              # a session law
  | \b[A-Z][\w'&.-]*\s+v\.\s+[A-Z][\w'&.-]*                                  # a case name
""", re.VERBOSE)

#: Files whose text members or instructors read.
TEXT_GLOBS = ("program.yaml", "cards/*.md", "modules/*/module.yaml", "modules/*/*.md", "modules/*/sections/*.md")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.file else self.message


@dataclass(frozen=True)
class Readability:
    module: str
    file: str
    grade: float
    above: bool


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    #: Register entries that no module or card refers to.
    unused: list[str] = field(default_factory=list)
    readability: list[Readability] = field(default_factory=list)
    catalog: Catalog | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _forms_pattern(forms) -> re.Pattern:
    # A registered form matches wherever module text writes it, across a line break, but not as part of a longer
    # citation: "§ 9" does not cover "§ 9A", "§ 7(b)" or "§§ 9". Longest forms first, so "c.150E §9A" wins over "§9A".
    bodies = [r"\s+".join(re.escape(part) for part in form.split())
              for form in sorted(set(forms), key=len, reverse=True)]
    return re.compile(r"(?<![\w§])(?:" + "|".join(bodies) + r")(?![\w(])")


def unregistered_citations(text: str, register: LegalRegister) -> list[tuple[int, str]]:
    """Return (character index, citation) for each citation in text that no register entry lists."""
    forms = [f for e in register.entries for f in e.forms]
    masked = _forms_pattern(forms).sub(lambda m: " " * len(m.group(0)), text) if forms else text
    return [(m.start(), " ".join(m.group(0).split())) for m in CITATION.finditer(masked)]


_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def empty_table_headers(text: str) -> list[int]:
    """Return the line numbers of Markdown table header rows with an empty cell (a screen reader announces nothing)."""
    lines = text.splitlines()
    found = []
    for number, (line, below) in enumerate(zip(lines, lines[1:], strict=False), 1):
        if "|" in line and _TABLE_DELIMITER.match(below):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if any(not c for c in cells):
                found.append(number)
    return found


def _text_files(content_dir: Path) -> list[Path]:
    files = {p for pattern in TEXT_GLOBS for p in content_dir.glob(pattern) if p.is_file()}
    return sorted(files)


def plain_text(markdown: str) -> str:
    """Return a section's prose as sentences for a readability formula: no markup, one sentence per item."""
    lines: list[str] = []
    for line in markdown.splitlines():
        line = LAW_REF.sub("", line).strip()
        if not line or re.fullmatch(r"\|?[\s:|-]+\|?", line):
            continue
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            lines.extend(c if c.endswith((".", "?", "!", ":")) else c + "." for c in cells if c)
            continue
        line = re.sub(r"^(#+|[-*+]|\d+[.)])\s+", "", line)
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[*_`>]", "", text)
    # A heading or list item without a full stop is still a sentence of its own.
    text = re.sub(r"(?<![.?!:;,])\n", ".\n", text)
    return text


def reading_grade(markdown: str) -> float:
    """Return the Flesch-Kincaid grade level of a section's prose."""
    text = plain_text(markdown)
    return round(float(textstat.flesch_kincaid_grade(text)), 1) if text.strip() else 0.0


def check_content(content_dir: Path | str) -> Report:
    """Check content_dir: schemas, register references, cited law, unused entries and reading grades."""
    content_dir = Path(content_dir)
    report = Report()
    try:
        register = load_register(content_dir)
    except ContentError as exc:
        report.problems.append(Problem("", 0, str(exc)))
        return report
    cards = {p.stem for p in (content_dir / "cards").glob("*.md")}
    used: set[str] = set()
    for path in _text_files(content_dir):
        name = str(path.relative_to(content_dir))
        text = path.read_text(encoding="utf-8")
        for match in LAW_REF.finditer(text):
            used.add(match.group(1))
            if register.entry(match.group(1)) is None:
                report.problems.append(Problem(name, line_of(text, match.start()),
                                               f"{match.group(0)} names no entry of the legal register"))
        for match in CARD_REF.finditer(text):
            if match.group(1) not in cards or SLUG_PATTERN.match(match.group(1)) is None:
                report.problems.append(Problem(name, line_of(text, match.start()),
                                               f"{match.group(0)} names no card in content/cards/"))
        if path.suffix == ".md":
            for number in empty_table_headers(text):
                report.problems.append(Problem(name, number, "a table header cell is empty: give every column a "
                                                             "heading, so screen readers can name it"))
        for index, citation in unregistered_citations(text, register):
            report.problems.append(Problem(
                name, line_of(text, index),
                f"cites '{citation}', which no entry of the legal register lists: add it to the `cites` of the "
                "entry it refers to (or add an entry) and put {{law:<id>}} after the statement"))
    report.unused = sorted(e.id for e in register.entries if e.id not in used)
    if report.problems:
        return report
    try:
        catalog = load_catalog(content_dir)
    except ContentError as exc:
        report.problems.append(Problem("", 0, str(exc)))
        return report
    report.catalog = catalog
    limit = catalog.program.reading_grade_max
    for module in catalog.modules:
        for section in module.sections:
            grade = reading_grade(section.markdown)
            report.readability.append(Readability(module=module.slug, file=f"modules/{module.slug}/{section.file}",
                                                  grade=grade, above=grade > limit))
    return report

