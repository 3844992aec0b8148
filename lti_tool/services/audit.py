"""The audit log: every admin action, who did it, and why."""
from lti_tool.extensions import db
from lti_tool.models import AuditEvent
from lti_tool.models.base import utcnow


def record(action: str, *, actor_account_id: int | None, person_id: int | None, reason: str | None = None,
           **details) -> AuditEvent:
    """Add an audit event (flushed with the change it describes, so both commit or neither)."""
    event = AuditEvent(action=action, actor_account_id=actor_account_id, person_id=person_id, reason=reason,
                       details=details or None, created_at=utcnow())
    db.session.add(event)
    return event
