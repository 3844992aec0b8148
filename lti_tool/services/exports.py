"""CSV exports of the whole program: every person's progress, and every registration.

Every CSV the tool serves goes through `as_csv`, which makes each cell safe to open in a spreadsheet.
"""
import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.catalog import Catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Certificate, LedgerEntry, Person, Registration
from lti_tool.services.ledger import with_kind_of_credit
from lti_tool.services.rules import compute_progress

#: What spreadsheets read as the start of a formula (OWASP's CSV injection list): = + - @, tab, carriage return.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


def spreadsheet_safe(value) -> str:
    """Return the cell as text a spreadsheet shows as text, never runs: a leading ' before a formula start.

    Plain numbers (a negative reversal's hours) stay numbers: they cannot carry a formula.
    """
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_safe(v) for v in values])
    return buffer.getvalue()


def progress_rows(catalog: Catalog) -> Iterator[list]:
    """Yield a header and one row per person: hours per group, total, what is left, certificate."""
    groups = catalog.program.groups
    yield (["person_id", "name", "email"] + [f"{g.id}_hours" for g in groups]
           + ["total_hours", "requirements_met", "still_needed", "certificate_number", "certificate_status"])
    # One grouped query for the whole ledger: the database adds, Python applies the rules.
    query, kind = with_kind_of_credit(sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id))
    sums = db.session.execute(
        query.with_only_columns(Account.person_id, LedgerEntry.module_slug, kind, sa.func.sum(LedgerEntry.hours))
        .group_by(Account.person_id, LedgerEntry.module_slug, kind))
    by_person: dict[int | None, list[tuple[str, Decimal, str]]] = defaultdict(list)
    for person_id, slug, credit_kind, hours in sums:
        by_person[person_id].append((slug, Decimal(str(hours)), credit_kind))
    certificates = {person_id: (number, status) for person_id, number, status in db.session.execute(
        sa.select(Certificate.person_id, Certificate.number, Certificate.status))}
    people = db.session.execute(sa.select(Person.id, Person.name, Person.email).order_by(Person.id))
    for person_id, name, email in people:
        progress = compute_progress(catalog, by_person.get(person_id, ()))
        number, status = certificates.get(person_id, (None, None))
        yield ([person_id, name, email] + [str(g.counted_hours) for g in progress.groups]
               + [str(progress.total_hours), "yes" if progress.met else "no", "; ".join(progress.what_is_left),
                  number, status])


def registration_rows() -> Iterator[list]:
    """Yield a header and one row per registration."""
    columns = ["person_id", "name", "email", "local_association", "job_category", "sector",
               "bargaining_experience", "created_at", "updated_at"]
    yield columns
    for registration in db.session.scalars(sa.select(Registration).order_by(Registration.person_id)):
        yield [getattr(registration, c).isoformat() if c.endswith("_at") else getattr(registration, c)
               for c in columns]


def as_csv(rows: Iterator[list]) -> Iterator[str]:
    """Turn rows into formula-safe CSV text, a line at a time (so a large export streams)."""
    for row in rows:
        yield _csv_line(row)
