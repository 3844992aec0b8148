"""In-person check-in: a short code shown in the room, valid for a few hours, entered by members."""
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
)

from lti_tool.extensions import db
from lti_tool.models import (
    CheckInCode,
    Workshop,
    WorkshopRecord,
)
from lti_tool.models.base import utcnow
from lti_tool.services.workshops import messages
from lti_tool.services.workshops.records import (
    WorkshopError,
    record_for,
)

# -- in-person check-in ----------------------------------------------------------------------------------------

CHECK_IN_TTL = timedelta(hours=3)
CHECK_IN_LENGTH = 6
#: No 0/O, 1/I/L: codes are read off a projector and typed on phones.
CHECK_IN_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class CheckInError(WorkshopError):
    """A check-in code that does not work here, with what to do about it."""


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
        raise CheckInError(messages.WRONG_CODE)
    if own.expires_at <= now:
        raise CheckInError("That code has expired. Ask the instructor for the current code.")
    record = db.session.scalars(sa.select(WorkshopRecord).where(WorkshopRecord.workshop_id == workshop.id,
                                                                WorkshopRecord.account_id == account_id)).first()
    if record is not None and record.attended:
        return record, False
    if record is None:
        record = record_for(workshop.id, account_id)
    record.attended = True
    record.attendance_source = "check_in"
    record.updated_at = now
    db.session.flush()
    return record, True
