"""A workshop, its members' records and the rules they share: what every workshop job reads."""
import re
from decimal import Decimal

import sqlalchemy as sa

from lti_tool.catalog import Module, current_catalog
from lti_tool.extensions import db
from lti_tool.lti import tool_launch
from lti_tool.models import (
    Launch,
    Workshop,
    WorkshopRecord,
)
from lti_tool.models.base import upsert, utcnow

RESULTS = {"complete": "Complete", "incomplete": "Incomplete"}
ATTENDANCE_SOURCES = ("instructor", "check_in", "sign_in_sheet")
LINE_ITEM_TAG = "bargaining-certificate"
#: The instructor's optional score is out of 100; without one the score is the hours attended.
SCORE_MAXIMUM = Decimal(100)
MAX_COMMENT = 2000

#: Invisible C0 controls (NUL, escape, ...) and DEL: dropped from comments, which PostgreSQL could not store
#: (NUL) and nobody meant to type. Tab and line breaks stay.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    if workshop.resource_link_id is None and link is not None and \
            tool_launch.of(launch).placement.workshop == workshop.public_id:
        workshop.resource_link_id = link.id
        db.session.flush()


def lock_for_grading(workshop: Workshop) -> None:
    """Lock the workshop's row until commit, so two instructors saving at once grade one after the other."""
    db.session.execute(sa.select(Workshop.id).where(Workshop.id == workshop.id).with_for_update())


def records_by_account(workshop: Workshop) -> dict[int, WorkshopRecord]:
    """Return the workshop's attendance and grade records by account id."""
    return {r.account_id: r for r in db.session.scalars(
        sa.select(WorkshopRecord).where(WorkshopRecord.workshop_id == workshop.id).order_by(WorkshopRecord.id))}


def record_for(workshop_id: int, account_id: int) -> WorkshopRecord:
    """Return the member's record for the workshop, creating it in one statement (an instructor's save and the
    member's own check-in at the same moment must not collide)."""
    record_id = upsert(db.session, WorkshopRecord, {
        "workshop_id": workshop_id, "account_id": account_id, "attended": False, "updated_at": utcnow()},
        conflict=["workshop_id", "account_id"], update=[])
    return db.session.get_one(WorkshopRecord, record_id)


def plain_number(value) -> str:
    if value is None:
        return ""
    number = Decimal(str(value)).normalize()
    return f"{number:f}" if number != number.to_integral() else str(int(number))
