"""Placing modules in a course by deep linking: the instructor's choices checked, the workshops they create,
and the content items that tell the LMS what to place (with a gradebook column each)."""
import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from lti_tool.catalog import Catalog, Module
from lti_tool.extensions import db
from lti_tool.lti.deep_linking import LineItem, ResourceLinkItem
from lti_tool.lti.tool_launch import MODE_PARAMETER, MODULE_PARAMETER, WORKSHOP_MODE, WORKSHOP_PARAMETER
from lti_tool.models import Workshop
from lti_tool.wording import with_article

SELF_PACED = "self_paced"
WORKSHOP = WORKSHOP_MODE
#: How each delivery mode is offered to the instructor.
MODES = {SELF_PACED: "Self-paced module", WORKSHOP: "Graded workshop"}
#: What a workshop's gradebook column shows (Workshop.gradebook_column); hours unless the instructor says.
HOURS_COLUMN, SCORE_COLUMN = "hours", "score"
COLUMN_KINDS = {HOURS_COLUMN: "Hours attended", SCORE_COLUMN: "A score out of 100"}
SCORE_COLUMN_MAXIMUM = 100
#: Every gradebook column the tool asks for carries this tag, so the tool can find its own columns.
LINE_ITEM_TAG = "bargaining-certificate"
#: Form-wide problems (as opposed to one module's fields) are reported under this key.
FORM_ERROR = "_form"

_WORKSHOP_FIELDS = ("session_date", "venue", "event_name")
_MISSING = {
    "session_date": "Enter the date of the workshop.",
    "venue": "Enter where the workshop takes place (a hotel, a union hall, a campus room or “online”).",
    "event_name": "Enter the conference or training, such as “Summer Conference 2026” or a regional training.",
}


class PlacementInvalid(ValueError):
    """The instructor's choices cannot be placed: messages by module slug and field, or for the whole form."""

    def __init__(self, errors: dict):
        super().__init__("; ".join(str(v) for v in errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class Choice:
    """One module to place, as a self-paced module or as a graded workshop with its session."""

    module: Module
    mode: str
    session_date: date | None = None
    venue: str | None = None
    event_name: str | None = None
    gradebook_column: str = HOURS_COLUMN


@dataclass(frozen=True)
class Placement:
    """A choice ready to send to the LMS (with its Workshop row when it is one)."""

    choice: Choice
    workshop: Workshop | None = None


class ChoiceSchema(Schema):
    """One module chosen in the picker."""

    module = fields.String(required=True)
    mode = fields.String(required=True, validate=validate.OneOf(
        list(MODES), error="Choose a self-paced module or a graded workshop."))
    session_date = fields.Date(load_default=None, error_messages={"invalid": "Enter the date as YYYY-MM-DD."})
    venue = fields.String(load_default=None, validate=validate.Length(
        max=300, error="Keep the venue under 300 characters."))
    # Short enough that "<module> — workshop, <event>, <date>" fits a gradebook column's title.
    event_name = fields.String(load_default=None, validate=validate.Length(
        max=150, error="Keep the conference or training name under 150 characters."))
    gradebook_column = fields.String(load_default=HOURS_COLUMN, validate=validate.OneOf(
        list(COLUMN_KINDS), error="Choose what the gradebook column shows: hours attended or a score out of 100."))

    def __init__(self, catalog: Catalog, **kwargs):
        super().__init__(**kwargs)
        self.catalog = catalog

    @validates_schema
    def check(self, data, **kwargs):
        module = self.catalog.module(data.get("module", ""))
        if module is None:
            raise ValidationError(f"There is no module '{data.get('module')}' in the catalog.", "module")
        mode = data.get("mode")
        if mode in MODES and mode not in module.delivery_modes:
            offered = " or ".join(MODES[m].lower() for m in module.delivery_modes)
            raise ValidationError(f"{module.title} is offered only as {with_article(offered)}; it cannot be placed "
                                  f"as {with_article(MODES[mode].lower())}.", "mode")
        if mode == WORKSHOP:
            missing = {name: [_MISSING[name]] for name in _WORKSHOP_FIELDS if not data.get(name)}
            if missing:
                raise ValidationError(missing)
            if not date(2000, 1, 1) <= data["session_date"] <= date(2100, 12, 31):
                raise ValidationError("Enter the workshop's real date (YYYY-MM-DD).", "session_date")


def parse_choices(form, catalog: Catalog, accept_multiple: bool, *, progress_column: bool = False) -> list[Choice]:
    """Read the picker's form (`choice` = "<slug>:<mode>", workshop fields per slug); raise PlacementInvalid.

    With `progress_column` (the course's progress column was ticked) choosing no module is fine.
    """
    picked = list(dict.fromkeys(v for v in form.getlist("choice") if v))
    errors: dict = {}
    if not picked and not progress_column:
        errors[FORM_ERROR] = ("Choose at least one module to add to the course (or the course's "
                              "“Bargaining Certificate progress” column).")
    elif len(picked) > 1 and not accept_multiple:
        errors[FORM_ERROR] = (f"You chose {len(picked)} items, but the LMS takes one item from this page: choose "
                              "one module, as a self-paced module or as a graded workshop. Add more by opening the "
                              "tool again from the course.")
    choices = []
    for value in picked:
        slug, _, mode = value.partition(":")
        raw = {"module": slug, "mode": mode}
        if mode == WORKSHOP:
            for name, prefix in (("session_date", "date"), ("venue", "venue"), ("event_name", "event"),
                                 ("gradebook_column", "column")):
                text = (form.get(f"{prefix}-{slug}") or "").strip()
                if text:
                    raw[name] = text
        try:
            loaded = ChoiceSchema(catalog).load(raw)
        except ValidationError as exc:
            messages = {name: " ".join(m) if isinstance(m, list) else str(m) for name, m in exc.messages_dict.items()}
            if catalog.module(slug) is None:  # not a field on the page: say it at the top
                errors[FORM_ERROR] = " ".join(filter(None, [errors.get(FORM_ERROR), *messages.values()]))
            else:
                errors.setdefault(slug, {}).update(messages)
            continue
        module = catalog.module(loaded["module"])
        if module is None:
            raise ValueError("ChoiceSchema lets only the catalog's modules through")
        choices.append(Choice(module=module, mode=loaded["mode"],
                              session_date=loaded["session_date"], venue=loaded["venue"],
                              event_name=loaded["event_name"], gradebook_column=loaded["gradebook_column"]))
    if errors:
        raise PlacementInvalid(errors)
    return choices


def place(choices: list[Choice], course_id: int | None, account_id: int) -> list[Placement]:
    """Create a Workshop in the course for each workshop choice; return every choice ready to send."""
    if course_id is None and any(c.mode == WORKSHOP for c in choices):
        raise PlacementInvalid({FORM_ERROR: "A graded workshop belongs to a course: open the tool from inside the "
                                            "course to place one."})
    placements = []
    for choice in choices:
        workshop = None
        if choice.mode == WORKSHOP:
            workshop = Workshop(public_id=str(uuid.uuid4()), course_id=course_id, module_slug=choice.module.slug,
                                event_name=choice.event_name, venue=choice.venue, session_date=choice.session_date,
                                gradebook_column=choice.gradebook_column, created_by_account_id=account_id)
            db.session.add(workshop)
        placements.append(Placement(choice=choice, workshop=workshop))
    db.session.flush()
    return placements


def describe_date(value: date) -> str:
    """Write a date as people read it: 14 July 2026."""
    return f"{value.day} {value:%B %Y}"


def title_for(placement: Placement) -> str:
    """Return the placed link's title: the module, and for a workshop its event and date."""
    choice = placement.choice
    if choice.mode != WORKSHOP:
        return choice.module.title
    if choice.session_date is None:
        raise ValueError("ChoiceSchema requires a workshop's session date")
    return f"{choice.module.title} — workshop, {choice.event_name}, {describe_date(choice.session_date)}"


def content_item(placement: Placement, launch_url: str, *, with_line_item: bool = True) -> ResourceLinkItem:
    """Return the LTI resource link (custom parameters and, when the LMS takes one, gradebook column)."""
    choice = placement.choice
    title = title_for(placement)
    custom = {MODULE_PARAMETER: choice.module.slug, MODE_PARAMETER: choice.mode}
    resource_id = f"{choice.module.slug}:{choice.mode}"
    if placement.workshop is not None:
        custom[WORKSHOP_PARAMETER] = placement.workshop.public_id
        resource_id = placement.workshop.public_id
    return ResourceLinkItem(
        url=launch_url, title=title, text=choice.module.summary, custom=custom,
        line_item=LineItem(score_maximum=column_maximum(choice.module, choice.gradebook_column
                                                        if choice.mode == WORKSHOP else HOURS_COLUMN),
                           label=title, resource_id=resource_id, tag=LINE_ITEM_TAG) if with_line_item else None)


def column_maximum(module: Module, kind: str) -> float:
    """Return the gradebook column's maximum: the module's hours, or 100 for a score column."""
    return float(SCORE_COLUMN_MAXIMUM) if kind == SCORE_COLUMN else float(module.credit_hours)


def claim_answer(launch_id: str) -> bool:
    """Mark the deep-linking launch answered, atomically; False when it already was (a resubmitted form)."""
    from lti_tool.models import Launch
    from lti_tool.models.base import rowcount, utcnow

    result = db.session.execute(sa.update(Launch).where(Launch.id == launch_id,
                                                        Launch.deep_link_answered_at.is_(None))
                                .values(deep_link_answered_at=utcnow()).execution_options(synchronize_session=False))
    return rowcount(result) == 1
