"""Grading: a grade reaches the ledger (through `ledger.record_hours`) and the LMS gradebook (through the
outbox) in the caller's transaction; a changed grade reverses the entry that stood for it and records anew, never
edits.
"""
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

import sqlalchemy as sa

from lti_tool.catalog import Module
from lti_tool.extensions import db
from lti_tool.lti import tool_launch
from lti_tool.models import (
    Account,
    Launch,
    LedgerEntry,
    OutboxScore,
    ResourceLink,
    Workshop,
    WorkshopRecord,
)
from lti_tool.models.base import utcnow
from lti_tool.services import certificates, ledger, passback, placements
from lti_tool.services.workshops import messages
from lti_tool.services.workshops.records import LINE_ITEM_TAG, RESULTS, WorkshopError, module_for, record_for


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




# -- the gradebook column ----------------------------------------------------------------------------------------

def line_item_target(workshop: Workshop, launch: Launch, module: Module) -> tuple[str | None, dict | None]:
    """Return where the workshop's scores go: the placed link's line item URL, or a spec to find or create it.

    (None, None) when the platform offers no gradebook service to this launch, or the workshop's placed link
    is not known yet (see `gradebook_problem`).
    """
    endpoint = tool_launch.of(launch).ags
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


def gradebook_notice(workshop: Workshop, launch: Launch) -> tuple[str | None, bool]:
    """Say why grades would not reach the LMS gradebook now, and whether grading must wait for it."""
    endpoint = tool_launch.of(launch).ags
    if endpoint is None or not endpoint.can_post_scores:
        return messages.NO_GRADEBOOK_NOTICE, False
    if workshop.resource_link_id is None:
        # Without the placed link the score would land in no column, or in another workshop's.
        return messages.UNLINKED_NOTICE, True
    return None, False


def score_statuses(workshop: Workshop, launch: Launch, module: Module,
                   accounts: list[Account]) -> dict[int, OutboxScore]:
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




def save_grades(workshop: Workshop, rows: list[tuple[Account, GradeInput, WorkshopRecord | None]], *,
                grader: Account, launch: Launch) -> dict[str, int]:
    """Save the grading form's rows (account, validated row, its record if any); count each outcome.

    Return {"graded": n, "attendance": n, "unchanged": n}.
    """
    counts = {"graded": 0, "attendance": 0, "unchanged": 0}
    for account, row, record in rows:
        counts[save_row(workshop, account, row, grader=grader, launch=launch, record=record)] += 1
    return counts


def save_row(workshop: Workshop, account: Account, row: GradeInput, *, grader: Account, launch: Launch,
             record: WorkshopRecord | None = None) -> str:
    """Save one member's attendance and, when a result is given, their grade.

    Return "graded", "attendance" or "unchanged".
    """
    now = utcnow()
    if record is None:
        if row.empty:
            return "unchanged"
        record = record_for(workshop.id, account.id)
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
