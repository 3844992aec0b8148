"""What a member does next: the next module per requirement group, the next module overall, and the workshops
coming up in the member's courses. Read only; nothing is written."""
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.catalog import Catalog, Module, current_catalog
from lti_tool.extensions import db
from lti_tool.models import Account, Course, Enrolment, Workshop
from lti_tool.services import ledger
from lti_tool.services import progress as progress_service
from lti_tool.services.placements import SELF_PACED
from lti_tool.services.rules import GroupProgress, Progress, compute_progress

#: How many upcoming workshops the catalog lists.
UPCOMING_LIMIT = 5


@dataclass(frozen=True)
class NextModule:
    """A module to take next, and whether the member has already started it."""

    module: Module
    started: bool


@dataclass(frozen=True)
class UpcomingWorkshop:
    workshop: Workshop
    module: Module
    course_name: str
    #: Whether the workshop is in the course of this launch (the member can open it from here).
    in_this_course: bool


@dataclass(frozen=True)
class NextSteps:
    progress: Progress
    #: The next module of each requirement group not yet met, by group id.
    by_group: dict[str, NextModule]
    #: The one module to take next (a started one first), or None when every requirement is met.
    next: NextModule | None
    upcoming: list[UpcomingWorkshop]


def _next_in_group(group: GroupProgress, progress: Progress, catalog: Catalog,
                   modules: dict[str, progress_service.ModuleProgress]) -> NextModule | None:
    if group.met:
        return None
    open_modules = [m for m in catalog.modules_in(group.id)
                    if progress.module_hours.get(m.slug, Decimal(0)) < Decimal(str(m.credit_hours))
                    and not modules[m.slug].complete]
    started = [m for m in open_modules if modules[m.slug].done_steps]
    if started:
        return NextModule(started[0], True)
    # Prefer what a member can start alone, now; a workshop-only module waits for a session.
    self_paced = [m for m in open_modules if SELF_PACED in m.delivery_modes]
    candidates = self_paced or open_modules
    return NextModule(candidates[0], False) if candidates else None


def next_steps(account: Account, course_id: int | None,
               modules: dict[str, progress_service.ModuleProgress] | None = None,
               progress: Progress | None = None) -> NextSteps:
    """Say what the member does next, from their ledger (all their accounts) and this account's module progress.

    `modules` (module progress by slug) and `progress` (the person's certificate progress) may be passed when the
    caller has them already.
    """
    catalog = current_catalog()
    if modules is None:
        modules = progress_service.modules_progress(account.id, catalog.modules)
    if progress is None:
        progress = (ledger.person_progress(account.person_id, catalog) if account.person_id is not None
                    else compute_progress(catalog, []))
    by_group = {}
    for group in progress.groups:
        step = _next_in_group(group, progress, catalog, modules)
        if step is not None:
            by_group[group.id] = step
    steps = list(by_group.values())
    overall = next((s for s in steps if s.started), steps[0] if steps else None)
    return NextSteps(progress=progress, by_group=by_group, next=overall,
                     upcoming=upcoming_workshops(account, course_id, catalog))


_UPCOMING: dict[tuple[bool, bool], sa.Select] = {}


def _upcoming_statement(has_person: bool, in_a_course: bool) -> sa.Select:
    # Built once per shape (the page's most complex statement; building it cost more than running it).
    statement = _UPCOMING.get((has_person, in_a_course))
    if statement is None:
        accounts = (sa.select(Account.id).where(Account.person_id == sa.bindparam("person_id")) if has_person
                    else sa.select(sa.bindparam("account_id", type_=sa.Integer)))
        enrolled = sa.select(Enrolment.course_id).where(Enrolment.account_id.in_(accounts))
        in_courses: sa.ColumnElement[bool] = Workshop.course_id.in_(enrolled)
        if in_a_course:
            in_courses = sa.or_(in_courses, Workshop.course_id == sa.bindparam("course_id"))
        statement = _UPCOMING[(has_person, in_a_course)] = (
            sa.select(Workshop, Course).join(Course, Course.id == Workshop.course_id)
            .where(in_courses, Workshop.session_date >= sa.bindparam("today", type_=sa.Date))
            .order_by(Workshop.session_date, Workshop.id).limit(UPCOMING_LIMIT * 2))
    return statement


def upcoming_workshops(account: Account, course_id: int | None, catalog: Catalog) -> list[UpcomingWorkshop]:
    """Return the workshops from today on in the courses the member (any of their accounts) is enrolled in."""
    statement = _upcoming_statement(account.person_id is not None, course_id is not None)
    rows = db.session.execute(statement, {"person_id": account.person_id, "account_id": account.id,
                                          "course_id": course_id, "today": date.today()}).all()
    found = []
    for workshop, course in rows:
        module = catalog.module(workshop.module_slug)
        if module is not None:
            found.append(UpcomingWorkshop(workshop=workshop, module=module,
                                          course_name=course.title or course.label or course.context_id,
                                          in_this_course=workshop.course_id == course_id))
    return found[:UPCOMING_LIMIT]
