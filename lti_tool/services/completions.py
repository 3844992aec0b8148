"""A finished module: stored once, with its content version. The ledger builds on this one function."""
import sqlalchemy as sa

from lti_tool.catalog import Module
from lti_tool.extensions import db
from lti_tool.models import ModuleCompletion
from lti_tool.models.base import upsert, utcnow


def record_module_completion(account_id: int, module: Module, course_id: int | None) -> ModuleCompletion:
    """Store that the account completed the module (once: a second call returns the first record)."""
    upsert(db.session, ModuleCompletion, {
        "account_id": account_id, "module_slug": module.slug, "content_version": module.content_version,
        "credit_hours": module.credit_hours, "course_id": course_id, "completed_at": utcnow(),
    }, conflict=["account_id", "module_slug"], update=[])
    return db.session.scalars(sa.select(ModuleCompletion).where(
        ModuleCompletion.account_id == account_id, ModuleCompletion.module_slug == module.slug)).one()
