"""The grading form of the workshop page: its fields per member, read and validated into GradeInput rows,
and the bulk actions that fill it in (nothing here is saved: the view hands the rows to the grading service)."""
import re
from dataclasses import dataclass, field
from decimal import Decimal

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from lti_tool.catalog import Module
from lti_tool.models import (
    WorkshopRecord,
)
from lti_tool.services.workshops import messages
from lti_tool.services.workshops.grading import GradeInput
from lti_tool.services.workshops.records import (
    ATTENDANCE_SOURCES,
    CONTROL_CHARACTERS,
    MAX_COMMENT,
    RESULTS,
    plain_number,
)
from lti_tool.services.workshops.sheets import SheetProblem, problems_from_form, resolve_problems


class GradeRowSchema(Schema):
    """A row of the grading form; `max_hours` is the module's credit hours."""

    attended = fields.Boolean(load_default=False)
    hours = fields.Decimal(places=2, allow_none=True, load_default=None, error_messages={
        "invalid": "Hours must be a number, like 1.5.", "special": "Hours must be a number, like 1.5."})
    result = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(
        list(RESULTS), error="Choose complete or incomplete."))
    score = fields.Decimal(places=2, allow_none=True, load_default=None, validate=validate.Range(
        min=0, max=100, error="The score must be between 0 and 100."), error_messages={
        "invalid": "The score must be a number between 0 and 100.",
        "special": "The score must be a number between 0 and 100."})
    comment = fields.String(allow_none=True, load_default=None, validate=validate.Length(
        max=MAX_COMMENT, error=f"The comment must be at most {MAX_COMMENT} characters."))
    source = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(ATTENDANCE_SOURCES))

    def __init__(self, max_hours: Decimal, **kwargs):
        super().__init__(**kwargs)
        self.max_hours = max_hours

    @pre_load
    def _blanks_are_missing(self, data, **kwargs):
        data = {**data, "comment": CONTROL_CHARACTERS.sub("", data.get("comment") or "")}
        return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()
                if not (isinstance(v, str) and not v.strip())}

    @validates_schema
    def _rules(self, data, **kwargs):
        hours, attended, result = data.get("hours"), data.get("attended"), data.get("result")
        if hours is not None:
            if hours < 0:
                raise ValidationError("Hours cannot be negative.", "hours")
            if hours > self.max_hours:
                raise ValidationError(f"Hours must be at most {plain_number(self.max_hours)}, "
                                      "the module's credit hours.", "hours")
            if hours > 0 and not attended:
                raise ValidationError("Mark the member present to give them hours attended.", "hours")
        if result == "complete" and not attended:
            raise ValidationError("Mark the member present to record a complete result.", "result")
        if result == "complete" and not hours:
            raise ValidationError("Enter the hours attended for a complete result.", "hours")
        if data.get("score") is not None and not result:
            raise ValidationError("Choose a result to give a score.", "result")


def parse_grade_rows(form, account_ids, module: Module, graded: set[int]) -> tuple[dict[int, GradeInput],
                                                                                    dict[int, dict[str, str]]]:
    """Validate the grading form's rows; return the values by account and the messages by account and field.

    `graded` are the accounts that already have a grade: a grade can be changed, not removed.
    """
    schema = GradeRowSchema(Decimal(str(module.credit_hours)))
    values: dict[int, GradeInput] = {}
    errors: dict[int, dict[str, str]] = {}
    for account_id in account_ids:
        raw = {"attended": form.get(f"present-{account_id}") == "1", "hours": form.get(f"hours-{account_id}", ""),
               "result": form.get(f"result-{account_id}", ""), "score": form.get(f"score-{account_id}", ""),
               "comment": form.get(f"comment-{account_id}", ""), "source": form.get(f"source-{account_id}", "")}
        try:
            loaded = schema.load(raw)
        except ValidationError as exc:
            errors[account_id] = {k: " ".join(v) if isinstance(v, list) else str(v)
                                  for k, v in exc.messages_dict.items()}
            values[account_id] = GradeInput()
            continue
        row = GradeInput(**loaded)
        if account_id in graded and not row.result:
            errors[account_id] = {"result": messages.GRADE_NOT_REMOVABLE}
        values[account_id] = row
    return values, errors


_ROW_FIELD = re.compile(r"^(present|hours|result|score|comment)-(\d+)$")


def rows_of_others(form, listed: set[int]) -> set[int]:
    """Return the accounts the form has filled rows for that the page does not list (gone from the roster)."""
    return {int(m.group(2)) for k, v in form.items() if v and (m := _ROW_FIELD.match(k))} - listed


def form_from_records(account_ids, records: dict[int, WorkshopRecord]) -> dict[str, str]:
    """Return the grading form's fields as the records last saved them."""
    form: dict[str, str] = {}
    for account_id in account_ids:
        record = records.get(account_id)
        if record is None:
            continue
        if record.attended:
            form[f"present-{account_id}"] = "1"
        form[f"hours-{account_id}"] = plain_number(record.hours_attended)
        form[f"result-{account_id}"] = record.result or ""
        form[f"score-{account_id}"] = plain_number(record.score)
        form[f"comment-{account_id}"] = record.comment or ""
    return form


def mark_all_present(form: dict[str, str], account_ids) -> int:
    """Mark every member of the form present; return how many were not already."""
    changed = 0
    for account_id in account_ids:
        if form.get(f"present-{account_id}") != "1":
            form[f"present-{account_id}"] = "1"
            changed += 1
    return changed


def complete_all_present(form: dict[str, str], account_ids, module: Module) -> int:
    """Give every member marked present a complete result and the module's full hours; return how many."""
    count = 0
    for account_id in account_ids:
        if form.get(f"present-{account_id}") == "1":
            form[f"result-{account_id}"] = "complete"
            form[f"hours-{account_id}"] = plain_number(module.credit_hours)
            count += 1
    return count


def apply_sheet(form: dict[str, str], matches) -> int:
    """Mark matched members present on the form (and their hours when the sheet gives them); return how many.

    `matches` are (account id, hours or None) pairs. Nothing is saved: the instructor reviews and saves.
    """
    count = 0
    for account_id, hours in matches:
        if form.get(f"present-{account_id}") != "1":
            form[f"present-{account_id}"] = "1"
            form[f"source-{account_id}"] = "sign_in_sheet"
        if hours is not None:
            form[f"hours-{account_id}"] = plain_number(hours)
        count += 1
    return count


#: The buttons of the grading page; anything else posted is a save.
ACTIONS = ("save", "import", "apply", "mark_all_present", "complete_all_present")


@dataclass
class PostedGrading:
    """What the instructor posted to the grading page: the member rows as typed, the button pressed, and the
    sign-in sheet rows still waiting for a choice (carried in hidden fields)."""

    form: dict[str, str]
    action: str
    problems: list[SheetProblem]
    #: A message per open sheet row (by its position in `problems`) whose choice is missing or not allowed.
    problem_errors: dict[int, str] = field(default_factory=dict)

    @classmethod
    def read(cls, posted) -> "PostedGrading":
        form = {k: v for k, v in posted.items() if k != "csrf_token"}
        action = form.pop("action", "save")
        return cls(form, action if action in ACTIONS else "save", problems_from_form(form))

    def resolve_sheet_rows(self, account_ids, module: Module) -> None:
        """Mark the members chosen for sheet rows present; keep the rows still open, numbered from 0 again.

        Only "apply" may leave rows open; a save with open rows gets a message per row.
        """
        matches, still_open, errors = resolve_problems(self.form, self.problems, account_ids, module,
                                                       require_all=self.action != "apply")
        apply_sheet(self.form, matches)
        kept = {k: v for k, v in self.form.items() if not k.startswith(("sheet-", "resolve-"))}
        for new, (old, _) in enumerate(still_open):
            if self.form.get(f"resolve-{old}"):
                kept[f"resolve-{new}"] = self.form[f"resolve-{old}"]
        positions = {old: new for new, (old, _) in enumerate(still_open)}
        self.form = kept
        self.problems = [problem for _, problem in still_open]
        self.problem_errors = {positions[n]: message for n, message in errors.items() if n in positions}

    def apply_bulk_action(self, account_ids, module: Module) -> None:
        """Fill in the form for "mark all present" or "complete all present" (nothing is saved here)."""
        if self.action == "mark_all_present":
            mark_all_present(self.form, account_ids)
        elif self.action == "complete_all_present":
            complete_all_present(self.form, account_ids, module)
