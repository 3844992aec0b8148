"""One-time Dynamic Registration invitations: an operator makes one per institution; it is spent on use.

The secret lives only in the link the operator hands out; the database keeps its SHA-256. A registration claims
the invitation atomically before it talks to the platform (so two tabs cannot both use it), and gives it back if
the registration fails, so a refused attempt does not cost the institution its link.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import RegistrationInvitation
from lti_tool.models.base import utcnow
from lti_tool.services import audit

DEFAULT_LIFETIME = timedelta(days=7)
MAX_LIFETIME = timedelta(days=90)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class InvitationError(ValueError):
    """An invitation that cannot be made, found or used, with words for the person holding it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class NewInvitation:
    invitation: RegistrationInvitation
    #: The registration link with its secret: shown once, never stored.
    url: str


@dataclass(frozen=True)
class Claim:
    """An invitation taken for one registration attempt."""

    invitation_id: int
    name: str
    claimed_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_lifetime(text: str) -> timedelta:
    """Read a lifetime such as "30m", "12h", "7d" or "2w"."""
    match = re.fullmatch(r"\s*(\d{1,4})\s*([mhdw])\s*", text or "")
    if not match:
        raise InvitationError("lifetime", f"'{text}' is not a lifetime: give a number and a unit, like 30m, 12h, "
                              "7d or 2w.")
    lifetime = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise InvitationError("lifetime", f"An invitation lasts between a minute and {MAX_LIFETIME.days} days.")
    return lifetime


def create(name: str, base_url: str, lifetime: timedelta = DEFAULT_LIFETIME, *, actor_account_id: int | None = None,
           via: str = "cli") -> NewInvitation:
    """Make an invitation for one institution; return it with its link (the only time the link exists). Audited."""
    name = " ".join((name or "").split())
    if not name or len(name) > 200 or not name.isprintable():
        raise InvitationError("name", "Give the institution's name (1 to 200 printable characters).")
    token = secrets.token_urlsafe(24)
    now = utcnow()
    invitation = RegistrationInvitation(name=name, token_hash=_hash(token), created_at=now,
                                        expires_at=now + lifetime)
    db.session.add(invitation)
    db.session.flush()
    audit.record("registration_link.create", actor_account_id=actor_account_id, person_id=None,
                 invitation_id=invitation.id, institution=name, expires_at=invitation.expires_at.isoformat(), via=via)
    return NewInvitation(invitation=invitation, url=f"{base_url}/lti/register?invitation={token}")


def status(invitation: RegistrationInvitation, now: datetime | None = None) -> str:
    """Return "open", "used", "revoked" or "expired"."""
    now = now or utcnow()
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.used_at is not None:
        return "used"
    if invitation.expires_at <= now:
        return "expired"
    return "open"


def all_invitations() -> list[RegistrationInvitation]:
    """Return every invitation, newest first."""
    return list(db.session.scalars(sa.select(RegistrationInvitation).order_by(RegistrationInvitation.id.desc())))


def revoke(invitation_id: int, *, actor_account_id: int | None = None, via: str = "cli") -> RegistrationInvitation:
    """Make an unused invitation unusable (audited)."""
    invitation = db.session.get(RegistrationInvitation, invitation_id)
    if invitation is None:
        raise InvitationError("unknown", f"There is no invitation {invitation_id}.")
    if invitation.used_at is not None:
        raise InvitationError("used", f"Invitation {invitation_id} ({invitation.name}) was already used; a used "
                              "invitation cannot register anything again.")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record("registration_link.revoke", actor_account_id=actor_account_id, person_id=None,
                     invitation_id=invitation.id, institution=invitation.name, via=via)
        db.session.flush()
    return invitation


def _refusal(invitation: RegistrationInvitation | None) -> InvitationError:
    state = "unknown" if invitation is None else status(invitation)
    ask = "Ask the tool's operator for a new registration link."
    if state == "used" and invitation is not None:
        return InvitationError("invitation_used", f"This registration link was already used, on "
                               f"{invitation.used_at:%Y-%m-%d}: each link registers once. To change an existing "
                               f"registration use your LMS's own update (Moodle: Add LTI Advantage with a new link, "
                               f"then Update). {ask}")
    if state == "expired" and invitation is not None:
        return InvitationError("invitation_expired", f"This registration link expired on "
                               f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC. {ask}")
    if state == "revoked":
        return InvitationError("invitation_revoked", f"This registration link was withdrawn by the tool's operator. "
                               f"{ask}")
    return InvitationError("invitation_unknown", "Dynamic Registration with this tool needs the registration link "
                           f"the tool's operator made for your institution (it ends in ?invitation=...). {ask}")


def find_open(token: str | None) -> RegistrationInvitation:
    """Return the open invitation this secret belongs to; raise InvitationError saying why it cannot be used."""
    invitation = None
    if token and len(token) <= 200:
        invitation = db.session.scalars(sa.select(RegistrationInvitation).where(
            RegistrationInvitation.token_hash == _hash(token))).first()
    if invitation is None or status(invitation) != "open":
        raise _refusal(invitation)
    return invitation


def claim(token: str | None) -> Claim:
    """Take the invitation for one registration attempt: one atomic update, in its own transaction.

    Its own transaction, so the claim holds while the tool waits for the platform (no lock is held meanwhile);
    `release` gives it back if the attempt fails, `spend` records what it registered.
    """
    invitation = find_open(token)
    now = utcnow()
    table = cast(sa.Table, RegistrationInvitation.__table__)
    with db.engine.begin() as conn:
        taken = conn.execute(sa.update(table).where(
            table.c.id == invitation.id, table.c.used_at.is_(None), table.c.revoked_at.is_(None),
            table.c.expires_at > now).values(used_at=now)).rowcount
    if taken != 1:
        db.session.expire(invitation)
        raise _refusal(db.session.get(RegistrationInvitation, invitation.id))
    return Claim(invitation_id=invitation.id, name=invitation.name, claimed_at=now)


def release(taken: Claim) -> None:
    """Give an invitation back after a registration attempt that registered nothing."""
    table = cast(sa.Table, RegistrationInvitation.__table__)
    with db.engine.begin() as conn:
        conn.execute(sa.update(table).where(table.c.id == taken.invitation_id, table.c.platform_id.is_(None),
                                            table.c.used_at == taken.claimed_at).values(used_at=None))


def spend(taken: Claim, platform_id: int, outcome: str) -> None:
    """Record what the claimed invitation registered (in the caller's transaction)."""
    table = cast(sa.Table, RegistrationInvitation.__table__)
    db.session.execute(sa.update(table).where(table.c.id == taken.invitation_id).values(
        platform_id=platform_id, outcome=outcome))
