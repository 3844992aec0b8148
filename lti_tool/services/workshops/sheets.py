"""Sign-in sheets: a CSV of who came, matched to the course roster for the instructor to review."""
import csv
import io
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
    Account,
)
from lti_tool.services.workshops.records import WorkshopError, plain_number

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
            raise ValidationError(f"{plain_number(hours)} hours is outside 0 to {plain_number(self.max_hours)}",
                                  "hours")


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
            result.problems.append(SheetProblem(
                row, f"Line {number}: no one on the course roster has this "
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
