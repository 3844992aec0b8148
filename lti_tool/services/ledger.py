"""The certificate ledger: every credit hour recorded once, never edited; corrections are reversals.

Module completions, workshop grades and admin adjustments all reach the ledger through `record_hours`.
"""
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from lti_tool.catalog import Catalog, current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, LedgerEntry
from lti_tool.models import ledger as models_ledger
from lti_tool.models.base import insert_once, utcnow
from lti_tool.services import audit
from lti_tool.services.rules import Progress, compute_progress

# Defined beside the model, whose append-only guard raises it too.
LedgerError = models_ledger.LedgerError


SOURCES = ("module_completion", "workshop_grade", "admin_adjustment")
MAX_REASON = 2000


def _hours(value, limit: Decimal) -> Decimal:
    try:
        hours = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise LedgerError(f"Hours must be a number, not '{value}'.") from exc
    if not hours.is_finite() or hours <= 0:
        raise LedgerError("Hours must be more than 0.")
    if hours > limit:
        raise LedgerError(f"{hours:g} hours is more than this module is worth ({limit:g} hours).")
    return hours


def record_hours(*, account_id: int, module_slug: str, hours, source: str, source_ref: str,
                 content_version: str | None = None, recorded_by_account_id: int | None = None,
                 reason: str | None = None, details: dict | None = None) -> LedgerEntry:
    """Record hours earned; the same (source, source_ref) twice gives back the first entry, never a second."""
    return record_hours_once(account_id=account_id, module_slug=module_slug, hours=hours, source=source,
                             source_ref=source_ref, content_version=content_version,
                             recorded_by_account_id=recorded_by_account_id, reason=reason, details=details)[0]


def record_hours_once(*, account_id: int, module_slug: str, hours, source: str, source_ref: str,
                      content_version: str | None = None, recorded_by_account_id: int | None = None,
                      reason: str | None = None, details: dict | None = None) -> tuple[LedgerEntry, bool]:
    """Record hours once per (source, source_ref); return the entry and whether this call wrote it.

    A reference already used for a different entry (another account, module, number of hours or reason) is
    refused: handing back someone else's entry as if it were this one would report a write that never happened.
    """
    catalog = current_catalog()
    module = catalog.module(module_slug)
    if module is None:
        raise LedgerError(f"There is no module '{module_slug}' in the catalog.")
    if source not in SOURCES:
        raise LedgerError(f"Unknown source '{source}'.")
    amount = _hours(hours, Decimal(str(module.credit_hours)))
    if source == "admin_adjustment" and not (reason or "").strip():
        raise LedgerError("An adjustment needs a reason.")
    if reason and len(reason) > MAX_REASON:
        raise LedgerError(f"The reason is longer than {MAX_REASON} characters.")
    if len(source_ref) > 200:
        raise LedgerError("The entry's reference is too long.")
    if db.session.get(Account, account_id) is None:
        raise LedgerError("There is no such account.")
    reason = (reason or "").strip() or None
    entry_id, written = insert_once(db.session, LedgerEntry, {
        "account_id": account_id, "module_slug": module.slug, "group_id": module.group, "hours": amount,
        "source": source, "source_ref": source_ref, "content_version": content_version,
        "recorded_by_account_id": recorded_by_account_id, "recorded_at": utcnow(),
        "reason": reason, "details": details,
    }, conflict=["source", "source_ref"])
    entry = db.session.get_one(LedgerEntry, entry_id)
    if not written and (entry.account_id, entry.module_slug, Decimal(str(entry.hours)), entry.reason) != (
            account_id, module.slug, amount, reason):
        raise ReferenceReused(entry)
    return entry, written


class ReferenceReused(LedgerError):
    """The reference of this write already stands for a different entry."""

    def __init__(self, entry: LedgerEntry):
        super().__init__(f"This reference was already used for a different entry ({entry.id}).")
        self.entry = entry


def reverse_entry(entry_id: int, *, reason: str, actor_account_id: int | None) -> LedgerEntry:
    """Cancel an entry with a new, negative entry that points at it; each entry can be reversed once."""
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("A reversal needs a reason.")
    if len(reason) > MAX_REASON:
        raise LedgerError(f"The reason is longer than {MAX_REASON} characters.")
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None:
        raise LedgerError("There is no such ledger entry.")
    if entry.source == "reversal":
        raise LedgerError("A reversal cannot itself be reversed: record new hours instead.")
    existing = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.reverses_entry_id == entry.id)).first()
    if existing is not None:
        raise LedgerError(f"Entry {entry.id} was already reversed on {existing.recorded_at:%Y-%m-%d}.")
    reversal_id, written = insert_once(db.session, LedgerEntry, {
        "account_id": entry.account_id, "module_slug": entry.module_slug, "group_id": entry.group_id,
        "hours": -entry.hours, "source": "reversal", "source_ref": f"reversal:{entry.id}",
        "content_version": entry.content_version, "recorded_by_account_id": actor_account_id,
        "recorded_at": utcnow(), "reverses_entry_id": entry.id, "reason": reason, "details": None,
    }, conflict=["source", "source_ref"])
    if not written:  # a second request at the same moment: the first one's reversal stands, and its audit row
        raise LedgerError(f"Entry {entry.id} was just reversed by another request.")
    # The reversal writes its own audit record, whoever asks for it (an admin, a changed workshop grade).
    person_id = db.session.scalar(sa.select(Account.person_id).where(Account.id == entry.account_id))
    audit.record("ledger.reverse", actor_account_id=actor_account_id, person_id=person_id, reason=reason,
                 entry_id=entry.id, reversal_id=reversal_id)
    return db.session.get_one(LedgerEntry, reversal_id)


@dataclass(frozen=True)
class PersonLedger:
    entries: list[LedgerEntry]
    progress: Progress
    #: Entry id -> the kind of credit it is (a reversal is the kind of the entry it cancels).
    kinds: dict[int, str]

    def counts(self, entry: LedgerEntry, catalog: Catalog) -> bool:
        """Say whether the entry's kind of credit fills its module's requirement group."""
        module = catalog.module(entry.module_slug)
        return module is not None and self.kinds[entry.id] in catalog.program.group(module.group).counts


def credit_kinds(entries: list[LedgerEntry]) -> dict[int, str]:
    """Return each entry's kind of credit: its source, or for a reversal the source of the entry it reverses."""
    sources = {e.id: e.source for e in entries}
    missing = {e.reverses_entry_id for e in entries if e.reverses_entry_id and e.reverses_entry_id not in sources}
    if missing:
        sources.update(db.session.execute(sa.select(LedgerEntry.id, LedgerEntry.source)
                                          .where(LedgerEntry.id.in_(missing))).tuples())
    return {e.id: sources[e.reverses_entry_id] if e.reverses_entry_id else e.source for e in entries}


#: The entry a reversal cancels. Made once: an alias built per query copies every column of the table.
_REVERSED_ENTRY = sa.orm.aliased(LedgerEntry, name="reversed_entry")


def with_kind_of_credit(select: sa.Select) -> tuple[sa.Select, sa.ColumnElement[str]]:
    """Join a ledger query to the entries its reversals cancel; return it and the entry's kind of credit."""
    joined = select.outerjoin(_REVERSED_ENTRY, _REVERSED_ENTRY.id == LedgerEntry.reverses_entry_id)
    return joined, sa.func.coalesce(_REVERSED_ENTRY.source, LedgerEntry.source)


_PERSON_ENTRIES = (sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
                   .where(Account.person_id == sa.bindparam("person_id"))
                   .order_by(LedgerEntry.recorded_at, LedgerEntry.id))  # built once: every progress page reads it


def entries_for_person(person_id: int) -> list[LedgerEntry]:
    """Return every entry of every account of the person, oldest first."""
    return list(db.session.scalars(_PERSON_ENTRIES, {"person_id": person_id}))


def _person_hours_statement() -> sa.Select:
    query, kind = with_kind_of_credit(sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
                                      .where(Account.person_id == sa.bindparam("person_id")))
    return query.with_only_columns(LedgerEntry.module_slug, LedgerEntry.hours, kind)


_PERSON_HOURS = _person_hours_statement()  # built once: the catalog and the course home read it on every visit


def person_progress(person_id: int, catalog: Catalog | None = None) -> Progress:
    """Compute a person's progress toward the certificate from their ledger."""
    rows = db.session.execute(_PERSON_HOURS, {"person_id": person_id}).all()
    return compute_progress(catalog or current_catalog(), ((slug, Decimal(str(h)), kind) for slug, h, kind in rows))


def person_ledger(person_id: int) -> PersonLedger:
    """Return a person's entries and progress."""
    entries = entries_for_person(person_id)
    kinds = credit_kinds(entries)
    progress = compute_progress(current_catalog(),
                                ((e.module_slug, Decimal(str(e.hours)), kinds[e.id]) for e in entries))
    return PersonLedger(entries=entries, progress=progress, kinds=kinds)


@dataclass(frozen=True)
class Adjustment:
    entry: LedgerEntry
    #: False when the same form had already been recorded (a double submit): nothing new was written.
    written: bool


def adjust(*, person_id: int, module_slug: str, hours, reason: str, actor_account_id: int, request_id: str,
           details: dict | None = None) -> Adjustment:
    """Add hours by hand (an admin's adjustment), with a reason, on the person's first account.

    `request_id` comes from the form, so submitting the same form twice records one adjustment. It is scoped to
    the admin and the person: another person's form, or another admin's, can never name this entry.
    """
    from lti_tool.models import Person

    person = db.session.get(Person, person_id)
    if person is None or not person.accounts:
        raise LedgerError("There is no such person.")
    if not request_id or len(request_id) > 100:
        raise LedgerError("The adjustment form is incomplete: reload the page and try again.")
    try:
        entry, written = record_hours_once(
            account_id=person.accounts[0].id, module_slug=module_slug, hours=hours, source="admin_adjustment",
            source_ref=f"admin_adjustment:{actor_account_id}:{person_id}:{request_id}",
            recorded_by_account_id=actor_account_id, reason=reason, details=details)
    except ReferenceReused as exc:
        raise LedgerError(f"This form was already used for a different adjustment (entry {exc.entry.id}, "
                          f"{exc.entry.hours:g} hours of {exc.entry.module_slug}); nothing was written. Reload the "
                          "page to enter another adjustment.") from exc
    if written:  # the audit log names only what was written
        audit.record("ledger.adjust", actor_account_id=actor_account_id, person_id=person_id, reason=reason,
                     entry_id=entry.id, module=module_slug, hours=str(entry.hours))
    return Adjustment(entry, written)

