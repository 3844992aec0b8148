"""The certificate ledger (append-only), certificates, and the audit log of admin actions."""
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow


class LedgerError(ValueError):
    """A ledger write that is refused, with the reason in plain words."""


class LedgerEntry(Base):
    """Credit hours earned (or reversed): written once, never updated or deleted.

    An entry belongs to the account that earned it; a person's ledger is the entries of all their accounts,
    so linking or merging people never rewrites history.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        # Idempotence: one entry per source record, however often or concurrently it is recorded.
        sa.UniqueConstraint("source", "source_ref"),
        sa.CheckConstraint("hours <> 0", name="hours_not_zero"),
        sa.CheckConstraint("(source = 'reversal') = (reverses_entry_id IS NOT NULL)", name="reversal_links_entry"),
        sa.Index("ix_ledger_entries_account_id_module_slug", "account_id", "module_slug"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="RESTRICT"))
    module_slug: Mapped[str] = mapped_column(sa.String(100))
    #: The requirement group the hours count toward (from program.yaml at the time of recording).
    group_id: Mapped[str] = mapped_column(sa.String(50))
    #: Positive when earned; a reversal carries the negative of the entry it reverses.
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(6, 2))
    #: module_completion, workshop_grade, admin_adjustment or reversal.
    source: Mapped[str] = mapped_column(sa.String(30))
    #: The record it came from, e.g. "module_completion:42"; unique with source.
    source_ref: Mapped[str] = mapped_column(sa.String(200))
    content_version: Mapped[str | None] = mapped_column(sa.String(32))
    #: Who recorded it: an account (instructor or admin) or the system (a member's own completion).
    recorded_by_account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="RESTRICT"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: For a reversal: the entry it cancels (each entry can be reversed once).
    reverses_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ledger_entries.id", ondelete="RESTRICT"),
                                                             unique=True)
    #: Why: required for adjustments and reversals.
    reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Where the hours were earned (workshop venue and date, course title), for the member and auditors.
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

    @property
    def earned_on(self) -> date:
        """Return the day the hours were earned: a workshop's session date, otherwise the day recorded."""
        when = (self.details or {}).get("date") if self.source == "workshop_grade" else None
        if when:
            try:
                return date.fromisoformat(str(when))
            except ValueError:
                pass
        return self.recorded_at.date()


class Certificate(Base):
    """The certificate a person earned: issued once, when the rules were first met."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.ForeignKey("people.id", ondelete="RESTRICT"), unique=True)
    #: The public number, e.g. BC-2026-7F3K9Q; verification pages are keyed by it.
    number: Mapped[str] = mapped_column(sa.String(32), unique=True)
    holder_name: Mapped[str] = mapped_column(sa.String(300))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Hours by requirement group when issued.
    hours_by_group: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    total_hours: Mapped[Decimal] = mapped_column(sa.Numeric(6, 2))
    #: issued, review (a reversal took the person below the rules) or revoked.
    status: Mapped[str] = mapped_column(sa.String(20), default="issued")
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person = relationship("Person")


class AuditEvent(Base):
    """An admin action, who did it and why."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_account_id: Mapped[int | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="SET NULL"))
    #: What was done, e.g. "ledger.adjust", "ledger.reverse", "people.merge", "certificate.revoke".
    action: Mapped[str] = mapped_column(sa.String(50), index=True)
    person_id: Mapped[int | None] = mapped_column(sa.ForeignKey("people.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: The database refuses to change or delete a ledger entry, whatever code asks: corrections are reversals.
APPEND_ONLY_POSTGRESQL = """
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only: record a reversal instead';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_entries_no_update_delete BEFORE UPDATE OR DELETE ON ledger_entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();
"""
APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only: record a reversal instead'); END",
    "CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only: record a reversal instead'); END",
]


@sa.event.listens_for(LedgerEntry, "before_update")
def _refuse_update(mapper, connection, target: LedgerEntry) -> None:
    """The same rule in the ORM, before the database is asked: a clear error instead of a trigger's."""
    session = sa.orm.object_session(target)
    if session is None or session.is_modified(target):  # called for every dirty entry, changed or not
        raise LedgerError("Ledger entries are append-only: record a reversal instead of changing one.")


@sa.event.listens_for(LedgerEntry, "before_delete")
def _refuse_delete(mapper, connection, target: LedgerEntry) -> None:
    raise LedgerError("Ledger entries are append-only: record a reversal instead of changing one.")


sa.event.listen(LedgerEntry.__table__, "after_create",
                sa.DDL(APPEND_ONLY_POSTGRESQL).execute_if(dialect="postgresql"))
for _statement in APPEND_ONLY_SQLITE:
    sa.event.listen(LedgerEntry.__table__, "after_create", sa.DDL(_statement).execute_if(dialect="sqlite"))
