"""A finished module: stored once, with its content version, and its hours recorded in the ledger."""
import sqlalchemy as sa

from lti_tool.catalog import Module
from lti_tool.extensions import db
from lti_tool.models import Account, ModuleCompletion
from lti_tool.models.base import upsert, utcnow
from lti_tool.services import certificates, ledger


def record_module_completion(account_id: int, module: Module, course_id: int | None) -> ModuleCompletion:
    """Store that the account completed the module, once, and record its hours in the ledger (once)."""
    upsert(db.session, ModuleCompletion, {
        "account_id": account_id, "module_slug": module.slug, "content_version": module.content_version,
        "credit_hours": module.credit_hours, "course_id": course_id, "completed_at": utcnow(),
    }, conflict=["account_id", "module_slug"], update=[])
    completion = db.session.scalars(sa.select(ModuleCompletion).where(
        ModuleCompletion.account_id == account_id, ModuleCompletion.module_slug == module.slug)).one()
    ledger.record_hours(
        account_id=account_id, module_slug=module.slug, hours=module.credit_hours, source="module_completion",
        source_ref=f"module_completion:{completion.id}", content_version=completion.content_version,
        details={"delivery": "self_paced", "course_id": course_id})
    person_id = db.session.get_one(Account, account_id).person_id
    if person_id is not None:  # every launch gives its account a person (lti/sync.py)
        certificates.evaluate(person_id)
    return completion
