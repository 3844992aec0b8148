"""Workshops: the instructor's attendance and grades, sign-in sheets, and in-person check-in codes.

A grade reaches the ledger (through `ledger.record_hours`) and the LMS gradebook (through the outbox) in the
caller's transaction; a changed grade reverses the entry that stood for it and records anew, never edits.
"""
import csv
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import overload

import sqlalchemy as sa
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from lti_tool.catalog import Module, current_catalog
from lti_tool.extensions import db
from lti_tool.lti import ags
from lti_tool.models import (
    Account,
    CheckInCode,
    Launch,
    LedgerEntry,
    OutboxScore,
    ResourceLink,
    Workshop,
    WorkshopRecord,
)
from lti_tool.models.base import upsert, utcnow
from lti_tool.services import certificates, ledger, passback, placements

RESULTS = {"complete": "Complete", "incomplete": "Incomplete"}
ATTENDANCE_SOURCES = ("instructor", "check_in", "sign_in_sheet")
LINE_ITEM_TAG = "bargaining-certificate"
#: The instructor's optional score is out of 100; without one the score is the hours attended.
SCORE_MAXIMUM = Decimal(100)
MAX_COMMENT = 2000

#: Invisible C0 controls (NUL, escape, ...) and DEL: dropped from comments, which PostgreSQL could not store
#: (NUL) and nobody meant to type. Tab and line breaks stay.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

CHECK_IN_TTL = timedelta(hours=3)
CHECK_IN_LENGTH = 6
#: No 0/O, 1/I/L: codes are read off a projector and typed on phones.
CHECK_IN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class WorkshopError(ValueError):
    """A workshop action that is refused, in plain words."""


def module_for(workshop: Workshop) -> Module | None:
    """Return the catalog module the workshop teaches."""
    return current_catalog().module(workshop.module_slug)


def workshop_in_course(public_id: str, course_id: int | None) -> Workshop | None:
    """Return the workshop with this public id if it belongs to this course."""
    if not public_id or course_id is None:
        return None
    return db.session.scalars(sa.select(Workshop).where(Workshop.public_id == public_id[:36],
                                                        Workshop.course_id == course_id)).first()


def link_to_launch(workshop: Workshop, launch: Launch) -> None:
    """Tie the workshop to the placed link it was launched from, at the first instructor launch of that link."""
    link = launch.resource_link
    if workshop.resource_link_id is None and link is not None and (link.custom or {}).get("workshop") == \
            workshop.public_id:
        workshop.resource_link_id = link.id
        db.session.flush()


def lock_for_grading(workshop: Workshop) -> None:
    """Lock the workshop's row until commit, so two instructors saving at once grade one after the other."""
    db.session.execute(sa.select(Workshop.id).where(Workshop.id == workshop.id).with_for_update())


def records_by_account(workshop: Workshop) -> dict[int, WorkshopRecord]:
    """Return the workshop's attendance and grade records by account id."""
    return {r.account_id: r for r in db.session.scalars(
        sa.select(WorkshopRecord).where(WorkshopRecord.workshop_id == workshop.id).order_by(WorkshopRecord.id))}


# -- the grading form ------------------------------------------------------------------------------------------

@dataclass
class GradeInput:
    """One member's row of the grading form, validated."""

    attended: bool = False
    hours: Decimal | None = None
    result: str | None = None
    score: Decimal | None = None
    comment: str | None = None
    source: str | None = None

    @property
    def empty(self) -> bool:
        """Whether the row says nothing at all (no record needs to be made for it)."""
        return not self.attended and not self.hours and not self.result and self.score is None and not self.comment


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
        data = {**data, "comment": _CONTROL_CHARACTERS.sub("", data.get("comment") or "")}
        return {k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()
                if not (isinstance(v, str) and not v.strip())}

    @validates_schema
    def _rules(self, data, **kwargs):
        hours, attended, result = data.get("hours"), data.get("attended"), data.get("result")
        if hours is not None:
            if hours < 0:
                raise ValidationError("Hours cannot be negative.", "hours")
            if hours > self.max_hours:
                raise ValidationError(f"Hours must be at most {_plain(self.max_hours)}, the module's credit hours.",
                                      "hours")
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
            errors[account_id] = {"result": "A saved grade can be changed but not removed: choose complete or "
                                            "incomplete (incomplete with 0 hours takes the hours back)."}
        values[account_id] = row
    return values, errors


def form_from_records(account_ids, records: dict[int, WorkshopRecord]) -> dict[str, str]:
    """Return the grading form's fields as the records last saved them."""
    form: dict[str, str] = {}
    for account_id in account_ids:
        record = records.get(account_id)
        if record is None:
            continue
        if record.attended:
            form[f"present-{account_id}"] = "1"
        form[f"hours-{account_id}"] = _plain(record.hours_attended)
        form[f"result-{account_id}"] = record.result or ""
        form[f"score-{account_id}"] = _plain(record.score)
        form[f"comment-{account_id}"] = record.comment or ""
    return form


def _plain(value) -> str:
    if value is None:
        return ""
    number = Decimal(str(value)).normalize()
    return f"{number:f}" if number != number.to_integral() else str(int(number))


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
            form[f"hours-{account_id}"] = _plain(module.credit_hours)
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
            form[f"hours-{account_id}"] = _plain(hours)
        count += 1
    return count


# -- the gradebook column ----------------------------------------------------------------------------------------

def line_item_target(workshop: Workshop, launch: Launch, module: Module) -> tuple[str | None, dict | None]:
    """Return where the workshop's scores go: the placed link's line item URL, or a spec to find or create it.

    (None, None) when the platform offers no gradebook service to this launch, or the workshop's placed link
    is not known yet (see `gradebook_problem`).
    """
    endpoint = ags.endpoint(launch.claims)
    if endpoint is None or not endpoint.can_post_scores:
        return None, None
    # The `lineitem` claim is the column of the link launched: only this workshop's own link may use it.
    same_link = launch.resource_link_id is not None and launch.resource_link_id == workshop.resource_link_id
    if same_link and endpoint.lineitem:
        return endpoint.lineitem, None
    lineitems = endpoint.lineitems
    if not lineitems or not endpoint.can_manage_line_items or workshop.resource_link_id is None:
        return None, None
    link = db.session.get_one(ResourceLink, workshop.resource_link_id)
    return None, {"lineitems": lineitems, "resourceLinkId": link.resource_link_id,
                  "label": column_label(workshop, module),
                  "scoreMaximum": placements.column_maximum(module, workshop.gradebook_column),
                  "resourceId": workshop.public_id, "tag": LINE_ITEM_TAG}


def column_label(workshop: Workshop, module: Module) -> str:
    """Name the workshop's gradebook column as the deep-linking response titled it."""
    if workshop.session_date is None:
        return f"{module.title}: {workshop.event_name}"[:300]
    return (f"{module.title} — workshop, {workshop.event_name}, "
            f"{placements.describe_date(workshop.session_date)}")[:300]


def gradebook_score(workshop: Workshop, module: Module, hours: Decimal, score: Decimal | None
                    ) -> tuple[Decimal | None, Decimal]:
    """Return what the workshop's column gets (score given, maximum): the hours attended out of the module's
    hours, or the instructor's score out of 100 (none yet: an empty cell), as the column was placed."""
    if workshop.gradebook_column == placements.SCORE_COLUMN:
        return score, Decimal(placements.SCORE_COLUMN_MAXIMUM)
    return hours, Decimal(str(module.credit_hours))


NO_GRADEBOOK_NOTICE = ("The LMS does not offer its gradebook to this tool here (Assignment and Grade Services): "
                       "grades are recorded in the tool and count toward the certificate, but do not appear in the "
                       "LMS gradebook.")
UNLINKED_NOTICE = ("Open this workshop from its link in the course first, so its grades reach its own gradebook "
                   "column; attendance can be recorded meanwhile.")


def gradebook_notice(workshop: Workshop, launch: Launch) -> tuple[str | None, bool]:
    """Say why grades would not reach the LMS gradebook now, and whether grading must wait for it."""
    endpoint = ags.endpoint(launch.claims)
    if endpoint is None or not endpoint.can_post_scores:
        return NO_GRADEBOOK_NOTICE, False
    if workshop.resource_link_id is None:
        # Without the placed link the score would land in no column, or in another workshop's.
        return UNLINKED_NOTICE, True
    return None, False


def score_statuses(workshop: Workshop, launch: Launch, module: Module, accounts: list[Account]) -> dict[int, OutboxScore]:
    """Return the outbox score of each member for this workshop's gradebook column, when one was queued."""
    url, spec = line_item_target(workshop, launch, module)
    if spec:
        url = passback.line_item_key(spec["lineitems"], spec.get("resourceLinkId"), spec.get("tag"))
    if not url or not accounts:
        return {}
    by_sub = {a.sub: a.id for a in accounts}
    rows = db.session.scalars(sa.select(OutboxScore).where(
        OutboxScore.platform_id == launch.platform_id, OutboxScore.line_item_url == url,
        OutboxScore.user_id.in_(list(by_sub))))
    return {by_sub[r.user_id]: r for r in rows}


# -- saving ----------------------------------------------------------------------------------------------------

@overload
def _quantized(value: None) -> None: ...
@overload
def _quantized(value: Decimal | float | int | str) -> Decimal: ...
def _quantized(value) -> Decimal | None:
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else None


def _same_grade(record: WorkshopRecord, row: GradeInput) -> bool:
    return (record.result is not None and record.attended == row.attended
            and _quantized(record.hours_attended or 0) == _quantized(row.hours or 0)
            and record.result == row.result and _quantized(record.score) == _quantized(row.score)
            and (record.comment or None) == (row.comment or None))


def _next_grade_ref(record: WorkshopRecord) -> str:
    prefix = f"workshop_grade:{record.id}:"
    count = db.session.scalars(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.source == "workshop_grade", LedgerEntry.source_ref.startswith(prefix, autoescape=True))).one()
    return f"{prefix}{count + 1}"


def _record(workshop_id: int, account_id: int) -> WorkshopRecord:
    """Return the member's record for the workshop, creating it in one statement (an instructor's save and the
    member's own check-in at the same moment must not collide)."""
    record_id = upsert(db.session, WorkshopRecord, {
        "workshop_id": workshop_id, "account_id": account_id, "attended": False, "updated_at": utcnow()},
        conflict=["workshop_id", "account_id"], update=[])
    return db.session.get_one(WorkshopRecord, record_id)


def save_row(workshop: Workshop, account: Account, row: GradeInput, *, grader: Account, launch: Launch,
             record: WorkshopRecord | None = None) -> str:
    """Save one member's attendance and, when a result is given, their grade.

    Return "graded", "attendance" or "unchanged".
    """
    now = utcnow()
    if record is None:
        if row.empty:
            return "unchanged"
        record = _record(workshop.id, account.id)
    if row.result:
        return "graded" if save_grade(workshop, record, row, grader=grader, launch=launch) else "unchanged"
    changed = False
    if record.attended != row.attended:
        record.attended = row.attended
        record.attendance_source = (row.source or "instructor") if row.attended else "instructor"
        changed = True
    if _quantized(record.hours_attended) != _quantized(row.hours):
        record.hours_attended = row.hours
        changed = True
    if (record.comment or None) != (row.comment or None):
        record.comment = row.comment
        changed = True
    if changed:
        record.updated_at = now
        db.session.flush()
    return "attendance" if changed else "unchanged"


def save_grade(workshop: Workshop, record: WorkshopRecord, row: GradeInput, *, grader: Account,
               launch: Launch) -> bool:
    """Grade one member: ledger entry and gradebook score in the caller's transaction; False when unchanged.

    A change reverses the entry that stood for the earlier grade and records a new one; an incomplete result
    with no hours records none.
    """
    if row.result not in RESULTS:
        raise WorkshopError("Choose complete or incomplete.")
    if _same_grade(record, row):
        return False
    module = module_for(workshop)
    if module is None:
        raise WorkshopError(f"The module '{workshop.module_slug}' of this workshop is no longer in the catalog.")
    account = db.session.get_one(Account, record.account_id)
    hours = _quantized(row.hours or 0)
    standing = db.session.get(LedgerEntry, record.ledger_entry_id) if record.ledger_entry_id else None
    if standing is not None and db.session.scalar(sa.select(LedgerEntry.id).where(
            LedgerEntry.reverses_entry_id == standing.id)) is not None:
        standing = None  # a program admin already reversed it: nothing stands to reverse again
    if standing is None or _quantized(standing.hours) != hours:
        if standing is not None:
            ledger.reverse_entry(standing.id, reason=f"Grade changed by {grader.display_name}",
                                 actor_account_id=grader.id)
            record.ledger_entry_id = None
        if hours > 0:
            entry = ledger.record_hours(
                account_id=account.id, module_slug=module.slug, hours=hours, source="workshop_grade",
                source_ref=_next_grade_ref(record), content_version=module.content_version,
                recorded_by_account_id=grader.id, details={
                    "delivery": "workshop", "workshop_id": workshop.public_id, "event": workshop.event_name,
                    "venue": workshop.venue,
                    "date": workshop.session_date.isoformat() if workshop.session_date else None,
                    "course_id": workshop.course_id,
                    "course": workshop.course.title or workshop.course.label if workshop.course else None})
            record.ledger_entry_id = entry.id
    now = utcnow()
    if record.attended != row.attended:
        record.attendance_source = (row.source or "instructor") if row.attended else "instructor"
    record.attended = row.attended
    record.hours_attended = hours
    record.result = row.result
    record.score = row.score
    record.comment = row.comment
    record.graded_by_account_id = grader.id
    record.graded_at = now
    record.updated_at = now
    db.session.flush()

    url, spec = line_item_target(workshop, launch, module)
    if url or spec:
        given, maximum = gradebook_score(workshop, module, hours, row.score)
        passback.queue_score(platform_id=launch.platform_id, course_id=workshop.course_id, user_id=account.sub,
                             score_given=given, score_maximum=maximum, activity_progress="Completed",
                             grading_progress="FullyGraded" if given is not None else "Pending",
                             comment=row.comment, line_item_url=url, line_item_spec=spec, timestamp=now,
                             label=column_label(workshop, module))
    if account.person_id is not None:
        certificates.evaluate(account.person_id)
        # the course's "Bargaining Certificate progress" column follows every grade
        passback.queue_certificate_progress(account.person_id, workshop.course_id)
    return True


# -- sign-in sheets --------------------------------------------------------------------------------------------

#: Header names (lower case, single spaces) the sheet may use for each column.
_COLUMNS = {
    "name": ("name", "full name", "participant", "participant name", "member", "member name", "attendee"),
    "first_name": ("first name", "given name", "first"),
    "last_name": ("last name", "family name", "surname", "last"),
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "hours": ("hours", "hours attended", "hrs", "credit hours"),
}
MAX_SHEET_ROWS = 5000


class SheetError(WorkshopError):
    """A sign-in sheet that cannot be read at all."""


class SheetRowSchema(Schema):
    """One row of a sign-in sheet; `max_hours` is the module's credit hours."""

    name = fields.String(load_default=None, validate=validate.Length(max=300))
    email = fields.String(load_default=None, validate=validate.Length(max=320))
    hours = fields.Decimal(places=2, load_default=None, allow_none=True, error_messages={
        "invalid": "the hours are not a number", "special": "the hours are not a number"})

    def __init__(self, max_hours: Decimal, **kwargs):
        super().__init__(**kwargs)
        self.max_hours = max_hours

    @pre_load
    def _blanks_are_missing(self, data, **kwargs):
        return {k: v.strip() for k, v in data.items() if isinstance(v, str) and v.strip()}

    @validates_schema
    def _hours_in_range(self, data, **kwargs):
        hours = data.get("hours")
        if hours is not None and (hours < 0 or hours > self.max_hours):
            raise ValidationError(f"{_plain(hours)} hours is outside 0 to {_plain(self.max_hours)}", "hours")


@dataclass
class SheetRow:
    """A line of the sheet as the instructor wrote it."""

    line: int
    name: str
    email: str
    hours_text: str
    hours: Decimal | None = None


@dataclass
class SheetMatch:
    row: SheetRow
    account_id: int
    how: str  # "email" or "name"


@dataclass
class SheetProblem:
    """A row the instructor must resolve (choose a member) or ignore."""

    row: SheetRow
    reason: str
    candidates: list[int] = field(default_factory=list)


@dataclass
class SheetImport:
    columns: list[str]
    matched: list[SheetMatch] = field(default_factory=list)
    problems: list[SheetProblem] = field(default_factory=list)


def normalise_name(name: str | None) -> str:
    """Fold case and whitespace so 'Maria  rivera ' and 'MARIA RIVERA' compare equal."""
    return " ".join((name or "").split()).casefold()


def _header_key(cell: str) -> str | None:
    text = " ".join(re.sub(r"[_\-]+(?!mail)", " ", cell.strip().lstrip("\ufeff").casefold()).split())
    text = text.removesuffix(":")
    return next((key for key, names in _COLUMNS.items() if text in names), None)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's plain "CSV" on Windows is Windows-1252, not UTF-8.
        return data.decode("cp1252", errors="replace")


def _names_of(account: Account) -> set[str]:
    names = {account.name, " ".join(p for p in (account.given_name, account.family_name) if p)}
    if account.person is not None:
        names.add(account.person.name)
    return {normalise_name(n) for n in names if n and n.strip()}


def read_sign_in_sheet(data: bytes, roster: list[Account], module: Module) -> SheetImport:
    """Read a sign-in sheet (CSV) and match its rows to the roster: by email, then by exact full name.

    Rows that match no one, several people, or someone already matched are listed for the instructor; nothing
    is dropped or guessed. Raise SheetError when the file cannot be read at all.
    """
    if not data or not data.strip():
        raise SheetError("The file is empty. Choose the sign-in sheet saved as CSV.")
    text = _decode(data)
    if "\x00" in text:
        raise SheetError("This file is not a CSV text file. In your spreadsheet, use “Save as” › CSV.")
    # Spreadsheets in some locales save with semicolons (or tabs): the header line says which.
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise SheetError(f"The file is not valid CSV: {exc}.") from exc
    numbered = [(number, cells) for number, cells in enumerate(lines, start=1) if any(c.strip() for c in cells)]
    if not numbered:
        raise SheetError("The file is empty. Choose the sign-in sheet saved as CSV.")
    header = numbered[0][1]
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _header_key(cell)
        if key and key not in columns:
            columns[key] = index
    found = [c.strip().lstrip("\ufeff") for c in header if c.strip()]
    if "name" not in columns and "email" not in columns and not {"first_name", "last_name"} <= set(columns):
        raise SheetError("The sign-in sheet needs a column headed “name” or “email” (and optionally “hours”). "
                         f"The columns found are: {', '.join(found) or 'none'}.")
    if len(numbered) - 1 > MAX_SHEET_ROWS:
        raise SheetError(f"The sheet has more than {MAX_SHEET_ROWS} rows; split it into smaller files.")

    schema = SheetRowSchema(Decimal(str(module.credit_hours)))
    by_email: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for account in roster:
        emails = {(account.email or "").strip().casefold()}
        if account.person is not None and account.person.email:
            emails.add(account.person.email.strip().casefold())
        for email in emails - {""}:
            by_email.setdefault(email, []).append(account.id)
        for name in _names_of(account):
            by_name.setdefault(name, []).append(account.id)
    names = {a.id: a.display_name for a in roster}

    result = SheetImport(columns=found)
    matched_on: dict[int, int] = {}
    for number, cells in numbered[1:]:
        values = {key: cells[index].strip() if index < len(cells) else "" for key, index in columns.items()}
        name = values.get("name") or " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p)
        row = SheetRow(line=number, name=name, email=values.get("email", ""), hours_text=values.get("hours", ""))
        try:
            loaded = schema.load({"name": row.name, "email": row.email, "hours": row.hours_text})
        except ValidationError as exc:
            detail = "; ".join(" ".join(v) if isinstance(v, list) else str(v) for v in exc.messages_dict.values())
            result.problems.append(SheetProblem(row, f"Line {number}: {detail}."))
            continue
        row.hours = loaded.get("hours")
        if not row.name and not row.email:
            result.problems.append(SheetProblem(row, f"Line {number} has no name and no email."))
            continue
        candidates = sorted(set(by_email.get(row.email.casefold(), []))) if row.email else []
        how = "email"
        if not candidates and row.name:
            candidates, how = sorted(set(by_name.get(normalise_name(row.name), []))), "name"
        if not candidates:
            result.problems.append(SheetProblem(row, f"Line {number}: no one on the course roster has this "
                                                     f"{'email or name' if row.email and row.name else 'email' if row.email else 'name'}."))
        elif len(candidates) > 1:
            result.problems.append(SheetProblem(
                row, f"Line {number}: several people on the roster match ({', '.join(names[c] for c in candidates)}).",
                candidates))
        elif candidates[0] in matched_on:
            result.problems.append(SheetProblem(
                row, f"Line {number}: {names[candidates[0]]} was already matched by line {matched_on[candidates[0]]}.",
                candidates))
        else:
            matched_on[candidates[0]] = number
            result.matched.append(SheetMatch(row, candidates[0], how))
    return result


def problems_from_form(form) -> list[SheetProblem]:
    """Read back the sheet rows still to resolve, which the page carries in hidden fields."""
    try:
        count = min(int(form.get("sheet-count") or 0), MAX_SHEET_ROWS)
    except ValueError:
        count = 0
    problems = []
    for n in range(count):
        hours_text = (form.get(f"sheet-{n}-hours") or "").strip()
        try:
            hours = Decimal(hours_text).quantize(Decimal("0.01")) if hours_text else None
        except ArithmeticError:
            hours = None
        if hours is not None and not hours.is_finite():
            hours = None
        try:
            line = int(form.get(f"sheet-{n}-line") or 0)
        except ValueError:
            line = 0
        candidates = [int(c) for c in (form.get(f"sheet-{n}-candidates") or "").split(",") if c.isdigit()]
        problems.append(SheetProblem(SheetRow(line=line, name=(form.get(f"sheet-{n}-name") or "")[:300],
                                              email=(form.get(f"sheet-{n}-email") or "")[:320],
                                              hours_text=hours_text, hours=hours),
                                     reason=(form.get(f"sheet-{n}-reason") or "")[:500], candidates=candidates))
    return problems


def resolve_problems(form, problems: list[SheetProblem], account_ids, module: Module, *,
                     require_all: bool) -> tuple[list[tuple[int, Decimal | None]], list[tuple[int, SheetProblem]],
                                                 dict[int, str]]:
    """Apply the instructor's choice for each sheet row to resolve: a roster member, or ignore.

    Return the (account id, hours) matches, the rows still open (with their index) and a message per row
    that needs a choice (when `require_all`) or whose choice is not on the roster.
    """
    allowed = {str(a) for a in account_ids}
    limit = Decimal(str(module.credit_hours))
    matches, still_open, errors = [], [], {}
    for n, problem in enumerate(problems):
        choice = (form.get(f"resolve-{n}") or "").strip()
        label = f"Line {problem.row.line}" if problem.row.line else "A sheet row"
        if choice == "ignore":
            continue
        if not choice:
            still_open.append((n, problem))
            if require_all:
                errors[n] = f"{label}: choose who this is, or ignore the row."
            continue
        if choice not in allowed:
            still_open.append((n, problem))
            errors[n] = f"{label}: choose someone on the course roster, or ignore the row."
            continue
        hours = problem.row.hours if problem.row.hours is not None and 0 <= problem.row.hours <= limit else None
        matches.append((int(choice), hours))
    return matches, still_open, errors


# -- in-person check-in ----------------------------------------------------------------------------------------

class CheckInError(WorkshopError):
    """A check-in code that does not work here, with what to do about it."""


WRONG_CODE = ("That code does not work for this workshop. Check the code shown in the room, and that you opened "
              "this workshop's link in your course, then try again.")


class CheckInSchema(Schema):
    """The code a member types (spaces, dashes and case do not matter)."""

    code = fields.String(required=True, validate=validate.Regexp(
        f"^[{CHECK_IN_ALPHABET}]{{{CHECK_IN_LENGTH}}}$",
        error=f"Enter the {CHECK_IN_LENGTH}-character code shown in the room."),
        error_messages={"required": "Enter the code shown in the room."})

    @pre_load
    def _normalise(self, data, **kwargs):
        code = re.sub(r"[\s\-]+", "", str(data.get("code") or "")).upper()
        return {"code": code} if code else {}


def current_code(workshop: Workshop) -> CheckInCode | None:
    """Return the workshop's check-in code that is still valid, if any."""
    return db.session.scalars(sa.select(CheckInCode).where(
        CheckInCode.workshop_id == workshop.id, CheckInCode.expires_at > utcnow())
        .order_by(CheckInCode.expires_at.desc())).first()


def new_check_in_code(workshop: Workshop, ttl: timedelta = CHECK_IN_TTL) -> CheckInCode:
    """Make a new code for the session (the earlier one stops working); unique among codes still valid."""
    now = utcnow()
    for earlier in db.session.scalars(sa.select(CheckInCode).where(CheckInCode.workshop_id == workshop.id,
                                                                   CheckInCode.expires_at > now)):
        earlier.expires_at = now
    for _ in range(20):
        code = "".join(secrets.choice(CHECK_IN_ALPHABET) for _ in range(CHECK_IN_LENGTH))
        taken = db.session.scalar(sa.select(sa.func.count()).select_from(CheckInCode).where(
            CheckInCode.code == code, CheckInCode.expires_at > now))
        if not taken:
            break
    row = CheckInCode(workshop_id=workshop.id, code=code, created_at=now, expires_at=now + ttl)
    db.session.add(row)
    db.session.flush()
    return row


def workshop_for_code(code: str) -> Workshop | None:
    """Return the workshop a still-valid code belongs to (for the check-in address of the QR code)."""
    try:
        code = CheckInSchema().load({"code": code})["code"]
    except ValidationError:
        return None
    row = db.session.scalars(sa.select(CheckInCode).where(CheckInCode.code == code,
                                                          CheckInCode.expires_at > utcnow())).first()
    return db.session.get(Workshop, row.workshop_id) if row else None


def check_in(workshop: Workshop, account_id: int, raw_code: str) -> tuple[WorkshopRecord, bool]:
    """Record the member's attendance with the room's code; return the record and whether it is new.

    Attendance alone awards no hours: the instructor grades.
    """
    try:
        code = CheckInSchema().load({"code": raw_code})["code"]
    except ValidationError as exc:
        raise CheckInError(" ".join(exc.messages_dict.get("code", ["Enter the code shown in the room."]))) from exc
    now = utcnow()
    own = db.session.scalars(sa.select(CheckInCode).where(CheckInCode.workshop_id == workshop.id,
                                                          CheckInCode.code == code)
                             .order_by(CheckInCode.expires_at.desc())).first()
    if own is None:
        # One answer for every code that is not this workshop's: whether it exists elsewhere is not the member's
        # to learn (it would let guesses map other courses' codes).
        raise CheckInError(WRONG_CODE)
    if own.expires_at <= now:
        raise CheckInError("That code has expired. Ask the instructor for the current code.")
    record = db.session.scalars(sa.select(WorkshopRecord).where(WorkshopRecord.workshop_id == workshop.id,
                                                                WorkshopRecord.account_id == account_id)).first()
    if record is not None and record.attended:
        return record, False
    if record is None:
        record = _record(workshop.id, account_id)
    record.attended = True
    record.attendance_source = "check_in"
    record.updated_at = now
    db.session.flush()
    return record, True
