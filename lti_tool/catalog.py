"""The program and its modules, loaded from content/ through marshmallow into frozen objects.

Loading fails fast: a ContentError names the file, the field and what is wrong. Each module's content
version is a hash of all its files, which completions record.
"""
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path

import yaml
from marshmallow import Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

# libyaml's C loader parses content about three times faster than the pure-Python one; same safe subset.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG = validate.Regexp(SLUG_PATTERN, error="must be lowercase letters, digits and hyphens")
FIELD_NAME = validate.Regexp(r"^[a-z][a-z0-9_]*$", error="must be lowercase_with_underscores")
DELIVERY_MODES = ("self_paced", "workshop")
#: The kinds of credit the ledger records (its entry sources, less reversals, which count as what they reverse).
CREDIT_KINDS = ("module_completion", "workshop_grade", "admin_adjustment")
#: `{{law:<id>}}` after a statement of law; `{{card:<name>}}` alone on a line includes a card.
LAW_REF = re.compile(r"\{\{law:([^{}]*)\}\}")
CARD_LINE = re.compile(r"^[ \t]*\{\{card:([^{}]*)\}\}[ \t]*$", re.MULTILINE)
CARD_REF = re.compile(r"\{\{card:([^{}]*)\}\}")
DEFAULT_READING_GRADE = 9.0


class ContentError(ValueError):
    """A content file that cannot be used, with the file, the field and the problem."""


# -- the data, frozen --
@dataclass(frozen=True)
class RequirementGroup:
    id: str
    title: str
    description: str
    required_hours: float
    min_distinct_modules: int = 0
    #: Which kinds of ledger credit fill this group (program.yaml `counts`; every kind unless it says otherwise).
    counts: tuple[str, ...] = CREDIT_KINDS


@dataclass(frozen=True)
class Program:
    name: str
    description: str
    contact_name: str
    contact_email: str
    total_hours: float
    groups: tuple[RequirementGroup, ...]
    #: Member-facing sections above this reading grade are flagged by `content check`.
    reading_grade_max: float = DEFAULT_READING_GRADE

    def group(self, group_id: str) -> RequirementGroup:
        """Return the requirement group with this id."""
        return next(g for g in self.groups if g.id == group_id)


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    file: str
    markdown: str


@dataclass(frozen=True)
class ActivityField:
    name: str
    label: str
    type: str
    help: str | None
    required: bool


@dataclass(frozen=True)
class Activity:
    slug: str
    title: str
    kind: str
    section: str
    required: bool
    instructions: str
    fields: tuple[ActivityField, ...]


@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    kind: str
    choices: tuple[Choice, ...]
    feedback: str


@dataclass(frozen=True)
class KnowledgeCheck:
    pass_mark: float
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Module:
    slug: str
    title: str
    group: str
    credit_hours: float
    summary: str
    objectives: tuple[str, ...]
    audience_prek12: str
    audience_higher_ed: str
    delivery_modes: tuple[str, ...]
    sections: tuple[Section, ...]
    activities: tuple[Activity, ...]
    knowledge_check: KnowledgeCheck
    facilitator_guide: str
    #: A hash of every file of the module: completions record which text they were earned on.
    content_version: str

    def section(self, slug: str) -> Section | None:
        """Return the section with this slug, if any."""
        return next((s for s in self.sections if s.slug == slug), None)


@dataclass(frozen=True)
class LawEntry:
    id: str
    statement: str
    citation: str
    cites: tuple[str, ...]
    source: str
    reviewed_on: date
    reviewed_by: str
    #: The register file the entry came from (the register, or a file in register-additions/).
    file: str = "legal-register.yaml"

    @property
    def forms(self) -> tuple[str, ...]:
        """Return every form in which content may write this citation."""
        return tuple(dict.fromkeys((self.citation, *self.cites)))


@dataclass(frozen=True)
class LegalRegister:
    entries: tuple[LawEntry, ...] = ()

    @cached_property
    def _by_id(self) -> dict[str, LawEntry]:
        return {e.id: e for e in self.entries}

    def entry(self, entry_id: str) -> LawEntry | None:
        """Return the entry with this id, if any."""
        return self._by_id.get(entry_id)


@dataclass(frozen=True)
class Catalog:
    program: Program
    modules: tuple[Module, ...]
    register: LegalRegister = field(default_factory=LegalRegister)
    #: Card name -> its Markdown, as included into sections at load time.
    cards: dict[str, str] = field(default_factory=dict)

    @cached_property
    def _by_slug(self) -> dict[str, Module]:
        return {m.slug: m for m in self.modules}

    def module(self, slug: str) -> Module | None:
        """Return the module with this slug, if any."""
        return self._by_slug.get(slug)

    def modules_in(self, group_id: str) -> list[Module]:
        """Return the modules of one requirement group, in title order."""
        return sorted((m for m in self.modules if m.group == group_id), key=lambda m: m.title)


# -- the schemas --
class _Strict(Schema):
    class Meta:
        ordered = True


class GroupSchema(_Strict):
    id = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1))
    required_hours = fields.Float(required=True, validate=validate.Range(min=0.5, max=100))
    min_distinct_modules = fields.Integer(load_default=0, validate=validate.Range(min=0, max=50))
    counts = fields.List(fields.String(validate=validate.OneOf(CREDIT_KINDS)), load_default=lambda: list(CREDIT_KINDS),
                         validate=validate.Length(min=1, error="must name at least one kind of credit"))

    @post_load
    def make(self, data, **kwargs):
        data["description"] = data["description"].strip()
        data["counts"] = tuple(dict.fromkeys(data["counts"]))
        return RequirementGroup(**data)


class ContactSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1))
    email = fields.Email(required=True)


class ProgramSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1))
    contact = fields.Nested(ContactSchema, required=True)
    total_hours = fields.Float(required=True, validate=validate.Range(min=1, max=500))
    reading_grade_max = fields.Float(load_default=DEFAULT_READING_GRADE, validate=validate.Range(min=1, max=20))
    groups = fields.List(fields.Nested(GroupSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def check(self, data, **kwargs):
        ids = [g.id for g in data.get("groups", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("group ids must be unique", "groups")
        if sum(g.required_hours for g in data.get("groups", [])) > data.get("total_hours", 0):
            raise ValidationError("the groups need more hours than total_hours", "total_hours")

    @post_load
    def make(self, data, **kwargs):
        return Program(name=data["name"], description=data["description"].strip(),
                       contact_name=data["contact"]["name"], contact_email=data["contact"]["email"],
                       total_hours=data["total_hours"], groups=tuple(data["groups"]),
                       reading_grade_max=data["reading_grade_max"])


class SectionSchema(_Strict):
    slug = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    file = fields.String(required=True, validate=validate.Regexp(r"^sections/[\w.-]+\.md$",
                                                                 error="must be sections/<name>.md"))


class ActivityFieldSchema(_Strict):
    name = fields.String(required=True, validate=FIELD_NAME)
    label = fields.String(required=True, validate=validate.Length(min=1, max=300))
    type = fields.String(required=True, validate=validate.OneOf(["text", "textarea"]))
    help = fields.String(load_default=None)
    required = fields.Boolean(load_default=True)

    @post_load
    def make(self, data, **kwargs):
        return ActivityField(**data)


class ActivitySchema(_Strict):
    slug = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(["worksheet", "reflection"]))
    section = fields.String(required=True, validate=SLUG)
    required = fields.Boolean(load_default=True)
    instructions = fields.String(required=True, validate=validate.Length(min=1))
    fields_ = fields.List(fields.Nested(ActivityFieldSchema), data_key="fields", required=True,
                          validate=validate.Length(min=1))

    @validates_schema
    def check(self, data, **kwargs):
        names = [f.name for f in data.get("fields_", [])]
        if len(names) != len(set(names)):
            raise ValidationError("field names must be unique within the activity", "fields")

    @post_load
    def make(self, data, **kwargs):
        return Activity(slug=data["slug"], title=data["title"], kind=data["kind"], section=data["section"],
                        required=data["required"], instructions=data["instructions"].strip(),
                        fields=tuple(data["fields_"]))


class ChoiceSchema(_Strict):
    text = fields.String(required=True, validate=validate.Length(min=1))
    correct = fields.Boolean(load_default=False)

    @post_load
    def make(self, data, **kwargs):
        return Choice(**data)


class QuestionSchema(_Strict):
    id = fields.String(required=True, validate=SLUG)
    prompt = fields.String(required=True, validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(["single", "multiple"]))
    choices = fields.List(fields.Nested(ChoiceSchema), required=True, validate=validate.Length(min=2, max=10))
    feedback = fields.String(required=True, validate=validate.Length(min=1))

    @validates_schema
    def check(self, data, **kwargs):
        correct = sum(1 for c in data.get("choices", []) if c.correct)
        if data.get("kind") == "single" and correct != 1:
            raise ValidationError(f"a single-answer question needs exactly one correct choice (has {correct})",
                                  "choices")
        if data.get("kind") == "multiple" and correct < 1:
            raise ValidationError("a multiple-answer question needs at least one correct choice", "choices")

    @post_load
    def make(self, data, **kwargs):
        return Question(id=data["id"], prompt=data["prompt"].strip(), kind=data["kind"],
                        choices=tuple(data["choices"]), feedback=data["feedback"].strip())


class KnowledgeCheckSchema(_Strict):
    pass_mark = fields.Float(load_default=0.8, validate=validate.Range(min=0.1, max=1))
    questions = fields.List(fields.Nested(QuestionSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def check(self, data, **kwargs):
        ids = [q.id for q in data.get("questions", [])]
        if len(ids) != len(set(ids)):
            raise ValidationError("question ids must be unique", "questions")

    @post_load
    def make(self, data, **kwargs):
        return KnowledgeCheck(pass_mark=data["pass_mark"], questions=tuple(data["questions"]))


class AudienceSchema(_Strict):
    prek12 = fields.String(required=True, validate=validate.Length(min=1))
    higher_ed = fields.String(required=True, validate=validate.Length(min=1))


class ModuleSchema(_Strict):
    slug = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    group = fields.String(required=True)
    credit_hours = fields.Float(required=True, validate=validate.Range(min=0.5, max=12))
    summary = fields.String(required=True, validate=validate.Length(min=1))
    objectives = fields.List(fields.String(validate=validate.Length(min=1)), required=True,
                             validate=validate.Length(min=1, max=10))
    audience = fields.Nested(AudienceSchema, required=True)
    delivery_modes = fields.List(fields.String(validate=validate.OneOf(DELIVERY_MODES)), required=True,
                                 validate=validate.Length(min=1))
    sections = fields.List(fields.Nested(SectionSchema), required=True, validate=validate.Length(min=1))
    activities = fields.List(fields.Nested(ActivitySchema), load_default=list)
    knowledge_check = fields.Nested(KnowledgeCheckSchema, required=True)
    facilitator_guide = fields.String(required=True, validate=validate.Regexp(r"^[\w.-]+\.md$"))

    def __init__(self, group_ids, **kwargs):
        super().__init__(**kwargs)
        self.group_ids = group_ids

    @validates_schema
    def check(self, data, **kwargs):
        if data.get("group") not in self.group_ids:
            raise ValidationError(f"must be one of the groups in program.yaml ({', '.join(self.group_ids)})",
                                  "group")
        hours = data.get("credit_hours")
        if hours is not None and round(hours * 4) != hours * 4:
            raise ValidationError("must be in steps of 0.25 hours", "credit_hours")
        slugs = [s["slug"] for s in data.get("sections", [])]
        if len(slugs) != len(set(slugs)):
            raise ValidationError("section slugs must be unique", "sections")
        for activity in data.get("activities", []):
            if activity.section not in slugs:
                raise ValidationError(f"activity {activity.slug} names section '{activity.section}', which is "
                                      "not in sections", "activities")
        activity_slugs = [a.slug for a in data.get("activities", [])]
        if len(activity_slugs) != len(set(activity_slugs)):
            raise ValidationError("activity slugs must be unique", "activities")


class _YamlDate(fields.Date):
    """A date written plainly in YAML (which the loader already turned into a date) or as an ISO string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        return super()._deserialize(value, attr, data, **kwargs)


class ReviewedSchema(_Strict):
    on = _YamlDate(required=True)
    by = fields.String(required=True, validate=validate.Length(min=1, max=200))

    @pre_load
    def yaml_on(self, data, **kwargs):
        # YAML 1.1 reads a bare `on:` key as the boolean true; the register format writes `{on: ..., by: ...}`.
        if isinstance(data, dict) and True in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class LawEntrySchema(_Strict):
    id = fields.String(required=True, validate=SLUG)
    statement = fields.String(required=True, validate=validate.Length(min=1))
    citation = fields.String(required=True, validate=validate.Length(min=1, max=300))
    cites = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list)
    source = fields.Url(required=True, schemes={"https", "http"})
    reviewed = fields.Nested(ReviewedSchema, required=True)


class RegisterSchema(_Strict):
    entries = fields.List(fields.Nested(LawEntrySchema), required=True)

    @validates_schema
    def check(self, data, **kwargs):
        ids = [e["id"] for e in data.get("entries", [])]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValidationError(f"entry ids must be unique ({', '.join(duplicates)} repeated)", "entries")


def _describe(error: ValidationError, path: str = "") -> list[str]:
    messages = error.messages if isinstance(error, ValidationError) else error
    out = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, int):
                    walk(value, f"{prefix}[{key}]")
                else:
                    walk(value, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, list) and all(isinstance(x, str) for x in node):
            out.append(f"{prefix or '(file)'}: {' '.join(node)}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{prefix}[{i}]")
        else:
            out.append(f"{prefix or '(file)'}: {node}")

    walk(messages, path)
    return out


def _read_yaml(path: Path):
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: the file is missing") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{path}: not valid YAML ({exc})") from exc


def _load(schema: Schema, data, path: Path):
    if not isinstance(data, dict):
        raise ContentError(f"{path}: must be a YAML mapping")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ContentError(f"{path}: " + "; ".join(_describe(exc))) from exc


def load_program(content_dir: Path) -> Program:
    """Load and validate program.yaml."""
    path = content_dir / "program.yaml"
    return _load(ProgramSchema(), _read_yaml(path), path)


def _register_files(content_dir: Path) -> list[Path]:
    main = content_dir / "legal-register.yaml"
    additions = sorted((content_dir / "register-additions").glob("*.yaml"))
    return ([main] if main.is_file() else []) + additions


def load_register(content_dir: Path) -> LegalRegister:
    """Load the legal register and any register-additions/*.yaml not yet folded into it."""
    entries: list[LawEntry] = []
    seen: dict[str, Path] = {}
    for path in _register_files(content_dir):
        data = _load(RegisterSchema(), _read_yaml(path), path)
        for raw in data["entries"]:
            if raw["id"] in seen:
                raise ContentError(f"{path}: entries: id '{raw['id']}' is already in {seen[raw['id']]}")
            seen[raw["id"]] = path
            entries.append(LawEntry(
                id=raw["id"], statement=" ".join(raw["statement"].split()), citation=raw["citation"].strip(),
                cites=tuple(c.strip() for c in raw["cites"]), source=raw["source"], reviewed_on=raw["reviewed"]["on"],
                reviewed_by=raw["reviewed"]["by"].strip(), file=str(path.relative_to(content_dir))))
    return LegalRegister(entries=tuple(entries))


def load_cards(content_dir: Path, register: LegalRegister) -> dict[str, str]:
    """Load content/cards/<name>.md: legal facts written once and included by sections."""
    cards = {}
    for path in sorted((content_dir / "cards").glob("*.md")):
        text = path.read_text(encoding="utf-8").strip()
        if SLUG_PATTERN.match(path.stem) is None:
            raise ContentError(f"{path}: a card's file name must be lowercase letters, digits and hyphens")
        if CARD_REF.search(text):
            raise ContentError(f"{path}: a card cannot include another card")
        check_law_refs(path, text, register)
        cards[path.stem] = text
    return cards


def line_of(text: str, index: int) -> int:
    """Return the 1-based line number of a character index."""
    return text.count("\n", 0, index) + 1


def check_law_refs(path: Path, text: str, register: LegalRegister, first_line: int = 1) -> None:
    """Refuse a `{{law:<id>}}` that names no register entry, with the file and line."""
    for match in LAW_REF.finditer(text):
        if register.entry(match.group(1)) is None:
            raise ContentError(f"{path}:{first_line + line_of(text, match.start()) - 1}: {{{{law:{match.group(1)}}}}} "
                               "names no entry of the legal register (content/legal-register.yaml)")


def include_cards(path: Path, text: str, cards: dict[str, str]) -> str:
    """Replace each `{{card:<name>}}` line with the card; refuse an unknown card or one not on a line of its own."""
    def card(match):
        name = match.group(1)
        if name not in cards:
            raise ContentError(f"{path}:{line_of(text, match.start(1))}: {{{{card:{name}}}}} names no card "
                               f"(content/cards/{name}.md is missing)")
        return cards[name]

    expanded = CARD_LINE.sub(card, text)
    stray = CARD_REF.search(expanded)
    if stray:
        raise ContentError(f"{path}:{line_of(text, text.find(stray.group(0)))}: {stray.group(0)} must stand alone "
                           "on its own line")
    return expanded


def _yaml_law_refs(path: Path, register: LegalRegister) -> None:
    text = path.read_text(encoding="utf-8")
    check_law_refs(path, text, register)


def load_module(folder: Path, program: Program, register: LegalRegister | None = None,
                cards: dict[str, str] | None = None) -> Module:
    """Load and validate one module folder."""
    register = register or LegalRegister()
    cards = cards if cards is not None else {}
    path = folder / "module.yaml"
    data = _load(ModuleSchema([g.id for g in program.groups]), _read_yaml(path), path)
    if data["slug"] != folder.name:
        raise ContentError(f"{path}: slug: '{data['slug']}' must equal the folder name '{folder.name}'")
    digest = hashlib.sha256(path.read_bytes())
    sections = []
    for raw in data["sections"]:
        file = folder / raw["file"]
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ContentError(f"{path}: sections: file {raw['file']} of section {raw['slug']} is missing") from exc
        if re.search(r"^# ", text, re.MULTILINE):
            raise ContentError(f"{file}: headings start at level 2 (##); the page gives the section its title")
        check_law_refs(file, text, register)
        # Cards are included here, so the content version (and every completion) reflects the card's text.
        text = include_cards(file, text, cards)
        digest.update(raw["file"].encode() + b"\0" + text.encode())
        sections.append(Section(slug=raw["slug"], title=raw["title"], file=raw["file"], markdown=text))
    guide_file = folder / data["facilitator_guide"]
    try:
        guide = guide_file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: facilitator_guide: file {data['facilitator_guide']} is missing") from exc
    check_law_refs(guide_file, guide, register)
    guide = include_cards(guide_file, guide, cards)
    _yaml_law_refs(path, register)
    plain = [("summary", data["summary"]), *((f"objectives[{i}]", o) for i, o in enumerate(data["objectives"]))]
    for q in data["knowledge_check"].questions:
        plain += [(f"question {q.id}: prompt", q.prompt), *((f"question {q.id}: choice", c.text) for c in q.choices)]
    for where, value in plain:
        if LAW_REF.search(value) or CARD_REF.search(value):
            raise ContentError(f"{path}: {where}: a {{{{law:...}}}} or {{{{card:...}}}} reference belongs in a "
                               "section, a question's feedback or an activity's instructions")
    digest.update(guide.encode())
    return Module(
        slug=data["slug"], title=data["title"], group=data["group"], credit_hours=data["credit_hours"],
        summary=data["summary"].strip(), objectives=tuple(o.strip() for o in data["objectives"]),
        audience_prek12=data["audience"]["prek12"].strip(), audience_higher_ed=data["audience"]["higher_ed"].strip(),
        delivery_modes=tuple(dict.fromkeys(data["delivery_modes"])), sections=tuple(sections),
        activities=tuple(data["activities"]), knowledge_check=data["knowledge_check"], facilitator_guide=guide,
        content_version=digest.hexdigest()[:16],
    )


@dataclass(frozen=True)
class Usage:
    module_slug: str
    module_title: str
    where: str


def law_usage(catalog: Catalog) -> dict[str, list[Usage]]:
    """Return, for each register entry, the module pages that cite it (cards count where they are included)."""
    usage: dict[str, list[Usage]] = {e.id: [] for e in catalog.register.entries}

    def note(text: str, module, where: str):
        for entry_id in dict.fromkeys(m.group(1) for m in LAW_REF.finditer(text)):
            if entry_id in usage:
                usage[entry_id].append(Usage(module.slug, module.title, where))

    for module in catalog.modules:
        for section in module.sections:
            note(section.markdown, module, section.title)
        note(module.facilitator_guide, module, "Facilitator guide")
        note(" ".join(q.feedback for q in module.knowledge_check.questions), module, "Knowledge check")
        note(" ".join(a.instructions for a in module.activities), module, "Activities")
    return usage


def current_catalog() -> Catalog:
    """Return the catalog the running app loaded at start."""
    from flask import current_app

    return current_app.extensions["catalog"]


#: Catalogs already loaded in this process, by folder and the size and modification time of every file in it:
#: the catalog is read-only, so apps built in one process (tests, gunicorn's preload) parse content once.
_LOADED: dict[tuple, "Catalog"] = {}


def _fingerprint(content_dir: Path) -> tuple:
    files = sorted(p for p in content_dir.rglob("*") if p.is_file())
    return (str(content_dir.resolve()),) + tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def load_catalog(content_dir: Path | str) -> Catalog:
    """Return the catalog under content_dir, parsed once per process while its files are unchanged."""
    content_dir = Path(content_dir)
    key = _fingerprint(content_dir)
    if key not in _LOADED:
        if len(_LOADED) >= 8:  # tests build small throw-away content folders; keep the cache small
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = _load_catalog(content_dir)
    return _LOADED[key]


def _load_catalog(content_dir: Path) -> Catalog:
    """Load the program and every module under content_dir; raise ContentError on the first problem."""
    program = load_program(content_dir)
    register = load_register(content_dir)
    cards = load_cards(content_dir, register)
    modules_dir = content_dir / "modules"
    folders = sorted(p for p in modules_dir.iterdir() if p.is_dir()) if modules_dir.is_dir() else []
    modules = tuple(load_module(folder, program, register, cards) for folder in folders)
    for group in program.groups:
        available = [m for m in modules if m.group == group.id]
        if group.min_distinct_modules and len(available) < group.min_distinct_modules:
            raise ContentError(f"{content_dir / 'program.yaml'}: groups: {group.id} needs "
                               f"{group.min_distinct_modules} distinct modules but content has {len(available)}")
    return Catalog(program=program, modules=modules, register=register, cards=cards)
