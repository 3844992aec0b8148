"""What the program offers: its modules by requirement group, and the workshops program staff published."""
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from lti_tool.catalog import Module, RequirementGroup, current_catalog
from lti_tool.extensions import db
from lti_tool.models import Course, Workshop
from lti_tool.models.base import utcnow
from lti_tool.services import audit


class OfferingsError(ValueError):
    """A publishing action that is refused."""


@dataclass(frozen=True)
class GroupOffering:
    group: RequirementGroup
    modules: tuple[Module, ...]


@dataclass(frozen=True)
class WorkshopOffering:
    public_id: str
    module_title: str
    module_slug: str
    group_title: str
    hours: float
    #: The conference or training it is part of ("Summer Conference 2026").
    event_name: str
    venue: str | None
    session_date: date | None


@dataclass(frozen=True)
class Offerings:
    program_name: str
    contact_name: str
    contact_email: str
    groups: tuple[GroupOffering, ...]
    #: Published workshops from today on, soonest first, then those whose date is not set yet.
    workshops: tuple[WorkshopOffering, ...]


def offerings(today: date | None = None) -> Offerings:
    """Return the modules by requirement group and the published workshops still to come."""
    catalog = current_catalog()
    today = today or utcnow().date()
    groups = tuple(GroupOffering(group=g, modules=tuple(catalog.modules_in(g.id))) for g in catalog.program.groups)
    rows = db.session.scalars(sa.select(Workshop).where(
        Workshop.public.is_(True), sa.or_(Workshop.session_date.is_(None), Workshop.session_date >= today))
        .order_by(Workshop.session_date.is_(None), Workshop.session_date, Workshop.event_name, Workshop.id))
    workshops = []
    for workshop in rows:
        module = catalog.module(workshop.module_slug)
        if module is None:  # a module retired from the catalog is not offered any more
            continue
        workshops.append(WorkshopOffering(
            public_id=workshop.public_id, module_title=module.title, module_slug=module.slug,
            group_title=catalog.program.group(module.group).title, hours=module.credit_hours,
            event_name=workshop.event_name, venue=workshop.venue, session_date=workshop.session_date))
    program = catalog.program
    return Offerings(program_name=program.name, contact_name=program.contact_name,
                     contact_email=program.contact_email, groups=groups, workshops=tuple(workshops))


def set_public(workshop_id: int, public: bool, *, actor_account_id: int | None) -> Workshop:
    """List a workshop on the public offerings (or take it off); audited."""
    workshop = db.session.get(Workshop, workshop_id)
    if workshop is None:
        raise OfferingsError(f"There is no workshop {workshop_id}.")
    if workshop.public != public:
        workshop.public = public
        audit.record("workshop.publish" if public else "workshop.unpublish", actor_account_id=actor_account_id,
                     person_id=None, workshop_id=workshop.id, module=workshop.module_slug)
    db.session.flush()
    return workshop


@dataclass(frozen=True)
class PlacedWorkshop:
    """A workshop an instructor placed, as program staff see it when deciding what to publish."""

    id: int
    module_title: str
    event_name: str
    venue: str | None
    session_date: date | None
    course: str
    public: bool
    #: Its date has passed: /offerings no longer shows it, published or not.
    past: bool


def placed_workshops(today: date | None = None) -> list[PlacedWorkshop]:
    """Return every placed workshop: those to come soonest first, then those without a date, then past ones
    latest first."""
    catalog = current_catalog()
    today = today or utcnow().date()
    rows = db.session.execute(sa.select(Workshop, Course.title, Course.label)
                              .join(Course, Course.id == Workshop.course_id).order_by(Workshop.id)).all()
    placed = []
    for workshop, title, label in rows:
        module = catalog.module(workshop.module_slug)
        placed.append(PlacedWorkshop(
            id=workshop.id, module_title=module.title if module else workshop.module_slug,
            event_name=workshop.event_name, venue=workshop.venue, session_date=workshop.session_date,
            course=title or label or "(untitled course)", public=workshop.public,
            past=workshop.session_date is not None and workshop.session_date < today))

    def order(row: PlacedWorkshop):
        if row.session_date is None:
            return (1, 0, row.id)
        if row.past:
            return (2, -row.session_date.toordinal(), -row.id)
        return (0, row.session_date.toordinal(), row.id)

    return sorted(placed, key=order)
