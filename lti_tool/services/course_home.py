"""An instructor's home for a course: what is placed in it, each workshop's attendance and grades, the members'
certificate progress (from the LMS roster), and how the course's gradebook scores stand.

Everything is read for the launch's own course only: the course is the launch's, never a parameter.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.catalog import Module, current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Launch, LedgerEntry, OutboxScore, ResourceLink, Workshop, WorkshopRecord
from lti_tool.services import passback, placements
from lti_tool.services import roster as roster_service
from lti_tool.services.ledger import with_kind_of_credit
from lti_tool.services.rules import Progress, compute_progress


@dataclass(frozen=True)
class WorkshopSummary:
    """A workshop placed in the course, with how many attended and how many are graded."""

    workshop: Workshop
    module: Module | None
    attended: int
    graded: int

    @property
    def upcoming(self) -> bool:
        """Whether the session is today or later."""
        return self.workshop.session_date is not None and self.workshop.session_date >= date.today()


@dataclass(frozen=True)
class MemberProgress:
    """One member of the course and where they stand toward the certificate (across all their courses)."""

    account: Account
    progress: Progress
    #: Whether this account has opened the tool in this course (members listed from the LMS roster may not have).
    opened_tool: bool


@dataclass(frozen=True)
class GradebookStatus:
    """The course's scores in the tool's outbox, by what happened to them."""

    sent: int
    waiting: int
    failed: int
    progress_column: bool


@dataclass(frozen=True)
class CourseHome:
    workshops: list[WorkshopSummary]
    #: Modules placed as self-paced links (known once someone opens the link).
    self_paced: list[Module]
    roster: roster_service.Roster
    members: list[MemberProgress]
    gradebook: GradebookStatus
    #: Every module in the catalog, with the slugs of those placed here first (for the facilitator guides).
    placed_slugs: frozenset[str]


def course_home(launch: Launch) -> CourseHome:
    """Gather the launch's course: placed content, workshops, members' progress and gradebook status.

    Reads the roster from the LMS (and keeps its members), so the caller commits.
    """
    if launch.course_id is None:
        raise ValueError("a course home needs a launch in a course")
    course_id = launch.course_id
    workshops = _workshops(course_id)
    self_paced = _self_paced_modules(course_id)
    roster = roster_service.load_roster(launch)
    members = _members_progress(course_id, roster.learners)
    placed = frozenset({w.workshop.module_slug for w in workshops} | {m.slug for m in self_paced})
    return CourseHome(workshops=workshops, self_paced=self_paced, roster=roster, members=members,
                      gradebook=gradebook_status(course_id), placed_slugs=placed)


def _workshops(course_id: int) -> list[WorkshopSummary]:
    catalog = current_catalog()
    found = list(db.session.scalars(
        sa.select(Workshop).where(Workshop.course_id == course_id)
        .order_by(Workshop.session_date.is_(None), Workshop.session_date, Workshop.id)))
    counts: dict[int, tuple[int, int]] = {}
    if found:
        rows = db.session.execute(
            sa.select(WorkshopRecord.workshop_id,
                      sa.func.count().filter(WorkshopRecord.attended.is_(True)),
                      sa.func.count(WorkshopRecord.result))
            .where(WorkshopRecord.workshop_id.in_([w.id for w in found]))
            .group_by(WorkshopRecord.workshop_id))
        counts = {workshop_id: (attended, graded) for workshop_id, attended, graded in rows}
    return [WorkshopSummary(workshop=w, module=catalog.module(w.module_slug), attended=counts.get(w.id, (0, 0))[0],
                            graded=counts.get(w.id, (0, 0))[1]) for w in found]


def _self_paced_modules(course_id: int) -> list[Module]:
    catalog = current_catalog()
    slugs: list[str] = []
    for custom in db.session.scalars(sa.select(ResourceLink.custom).where(ResourceLink.course_id == course_id)
                                     .order_by(ResourceLink.id)):
        custom = custom or {}
        slug = custom.get(placements.MODULE_PARAMETER)
        if custom.get(placements.MODE_PARAMETER) == placements.SELF_PACED and isinstance(slug, str) \
                and slug not in slugs:
            slugs.append(slug)
    return [m for m in (catalog.module(s) for s in slugs) if m is not None]


def _members_progress(course_id: int, learners: list[Account]) -> list[MemberProgress]:
    """Return each learner's certificate progress, read for the whole list in one query."""
    catalog = current_catalog()
    person_ids = {a.person_id for a in learners if a.person_id is not None}
    entries: dict[int, list[tuple[str, Decimal, str]]] = defaultdict(list)
    if person_ids:
        query, kind = with_kind_of_credit(sa.select(LedgerEntry).join(Account, Account.id == LedgerEntry.account_id)
                                          .where(Account.person_id.in_(person_ids)))
        for person_id, slug, hours, credit in db.session.execute(
                query.with_only_columns(Account.person_id, LedgerEntry.module_slug, LedgerEntry.hours, kind)):
            if person_id is not None:
                entries[person_id].append((slug, Decimal(str(hours)), credit))
    opened = set(db.session.scalars(sa.select(Launch.account_id).where(Launch.course_id == course_id).distinct()))
    return [MemberProgress(account=a, progress=compute_progress(catalog, entries.get(a.person_id or 0, [])),
                           opened_tool=a.id in opened) for a in learners]


def gradebook_status(course_id: int) -> GradebookStatus:
    """Count the course's scores in the outbox: sent, waiting to be sent, and refused by the LMS."""
    counts = dict(db.session.execute(sa.select(OutboxScore.status, sa.func.count())
                                     .where(OutboxScore.course_id == course_id)
                                     .group_by(OutboxScore.status)).all())
    return GradebookStatus(sent=counts.get("sent", 0), waiting=counts.get("pending", 0),
                           failed=counts.get("failed", 0), progress_column=passback.has_progress_column(course_id))
