"""The tool's signing keys as admins see them, and rotation with its audit record (the console and the CLI)."""
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.models import ToolKey
from lti_tool.models.base import utcnow
from lti_tool.services import audit


@dataclass(frozen=True)
class KeyRow:
    kid: str
    created_at: datetime
    retired_at: datetime | None
    age_days: int
    #: "active" (signs now), "previous" (still published, so tokens it signed verify) or "retired".
    state: str


def key_rows() -> list[KeyRow]:
    """Return the tool's keys, newest first, with their state and age."""
    now = utcnow()
    published = {jwk["kid"] for jwk in keys.public_jwks()["keys"]}
    active = keys.active_key()
    rows = []
    for key in db.session.scalars(sa.select(ToolKey).order_by(ToolKey.created_at.desc(), ToolKey.id.desc())):
        state = "active" if active is not None and key.id == active.id else \
            "previous" if key.kid in published else "retired"
        rows.append(KeyRow(kid=key.kid, created_at=key.created_at, retired_at=key.retired_at,
                           age_days=(now - key.created_at).days, state=state))
    return rows


def rotate(*, actor_account_id: int | None, via: str) -> ToolKey:
    """Make a new signing key; the previous one stays published. Audited (`via`: "console" or "cli")."""
    previous = keys.active_key()
    key = keys.rotate_keys()
    audit.record("keys.rotate", actor_account_id=actor_account_id, person_id=None, kid=key.kid,
                 previous_kid=previous.kid if previous else None, via=via)
    db.session.flush()
    return key
