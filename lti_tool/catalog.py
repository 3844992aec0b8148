"""The program and its modules, loaded from content/ through marshmallow into frozen objects.

Loading fails fast: a ContentError names the file, the field and what is wrong. Each module's content
version is a hash of all its files, which completions record.
"""
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

# libyaml's C loader parses content about three times faster than the pure-Python one; same safe subset.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

SLUG = validate.Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="must be lowercase letters, digits and hyphens")
FIELD_NAME = validate.Regexp(r"^[a-z][a-z0-9_]*$", error="must be lowercase_with_underscores")
DELIVERY_MODES = ("self_paced", "workshop")


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


@dataclass(frozen=True)
class Program:
    name: str
    description: str
    contact_name: str
    contact_email: str
    total_hours: float
    groups: tuple[RequirementGroup, ...]

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
class Catalog:
    program: Program
    modules: tuple[Module, ...]

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

    @post_load
    def make(self, data, **kwargs):
        data["description"] = data["description"].strip()
        return RequirementGroup(**data)


class ContactSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1))
    email = fields.Email(required=True)


class ProgramSchema(_Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(required=True, validate=validate.Length(min=1))
    contact = fields.Nested(ContactSchema, required=True)
    total_hours = fields.Float(required=True, validate=validate.Range(min=1, max=500))
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
                       total_hours=data["total_hours"], groups=tuple(data["groups"]))


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


def load_module(folder: Path, program: Program) -> Module:
    """Load and validate one module folder."""
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
        digest.update(raw["file"].encode() + b"\0" + text.encode())
        sections.append(Section(slug=raw["slug"], title=raw["title"], file=raw["file"], markdown=text))
    guide_file = folder / data["facilitator_guide"]
    try:
        guide = guide_file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: facilitator_guide: file {data['facilitator_guide']} is missing") from exc
    digest.update(guide.encode())
    return Module(
        slug=data["slug"], title=data["title"], group=data["group"], credit_hours=data["credit_hours"],
        summary=data["summary"].strip(), objectives=tuple(o.strip() for o in data["objectives"]),
        audience_prek12=data["audience"]["prek12"].strip(), audience_higher_ed=data["audience"]["higher_ed"].strip(),
        delivery_modes=tuple(dict.fromkeys(data["delivery_modes"])), sections=tuple(sections),
        activities=tuple(data["activities"]), knowledge_check=data["knowledge_check"], facilitator_guide=guide,
        content_version=digest.hexdigest()[:16],
    )


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
    modules_dir = content_dir / "modules"
    folders = sorted(p for p in modules_dir.iterdir() if p.is_dir()) if modules_dir.is_dir() else []
    modules = tuple(load_module(folder, program) for folder in folders)
    for group in program.groups:
        available = [m for m in modules if m.group == group.id]
        if group.min_distinct_modules and len(available) < group.min_distinct_modules:
            raise ContentError(f"{content_dir / 'program.yaml'}: groups: {group.id} needs "
                               f"{group.min_distinct_modules} distinct modules but content has {len(available)}")
    return Catalog(program=program, modules=modules)
