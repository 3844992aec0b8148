"""Registering platforms and deployments, as admins do from the CLI."""
from marshmallow import Schema, ValidationError, fields, validate
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.models import Deployment, Platform

_url = fields.Url(require_tld=False, schemes={"http", "https"})


class PlatformSchema(Schema):
    """What an admin gives to register a platform."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    issuer = fields.String(required=True, validate=validate.Length(min=1, max=500))
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=255))
    auth_login_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    auth_token_url = fields.Url(required=True, require_tld=False, schemes={"http", "https"})
    auth_audience = fields.String(load_default=None, validate=validate.Length(max=1000))
    key_set_url = fields.Url(load_default=None, require_tld=False, schemes={"http", "https"})
    key_set = fields.Dict(load_default=None)
    deployment_ids = fields.List(fields.String(validate=validate.Length(min=1, max=255)), load_default=list)


class PlatformError(ValueError):
    """A platform operation that cannot be done, with the reason."""


def _format(error: ValidationError) -> str:
    parts = []
    for field, problems in error.messages.items():
        parts.append(f"{field}: {' '.join(problems) if isinstance(problems, list) else problems}")
    return "; ".join(parts)


def find(issuer: str, client_id: str) -> Platform | None:
    """Return the registration for this issuer and client id."""
    return db.session.scalars(sa.select(Platform).where(Platform.issuer == issuer,
                                                        Platform.client_id == client_id)).first()


def add_platform(data: dict) -> Platform:
    """Register a platform with its deployments; refuse duplicates and incomplete registrations."""
    try:
        values = PlatformSchema().load(data)
    except ValidationError as exc:
        raise PlatformError(_format(exc)) from exc
    if not values["key_set_url"] and not values["key_set"]:
        raise PlatformError("key_set_url: give the platform's key set URL (or a stored key set).")
    if find(values["issuer"], values["client_id"]):
        raise PlatformError(f"A platform with issuer {values['issuer']} and client id {values['client_id']} "
                            "is already registered.")
    deployment_ids = values.pop("deployment_ids")
    platform = Platform(**values)
    db.session.add(platform)
    db.session.flush()
    for deployment_id in dict.fromkeys(deployment_ids):
        db.session.add(Deployment(platform_id=platform.id, deployment_id=deployment_id))
    db.session.flush()
    return platform


def add_deployment(issuer: str, client_id: str, deployment_id: str) -> Deployment:
    """Add a deployment id to a registered platform."""
    platform = find(issuer, client_id)
    if platform is None:
        raise PlatformError(f"No platform is registered for issuer {issuer} with client id {client_id}.")
    if not deployment_id or len(deployment_id) > 255:
        raise PlatformError("deployment_id: give 1 to 255 characters.")
    if any(d.deployment_id == deployment_id for d in platform.deployments):
        raise PlatformError(f"Deployment {deployment_id} is already registered for this platform.")
    deployment = Deployment(platform_id=platform.id, deployment_id=deployment_id)
    db.session.add(deployment)
    db.session.flush()
    return deployment


def remove_platform(issuer: str, client_id: str) -> Platform:
    """Remove a registration and everything recorded under it."""
    from lti_tool.models import Account, LedgerEntry

    platform = find(issuer, client_id)
    if platform is None:
        raise PlatformError(f"No platform is registered for issuer {issuer} with client id {client_id}.")
    earned = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).join(
        Account, Account.id == LedgerEntry.account_id).where(Account.platform_id == platform.id))
    if earned:
        raise PlatformError(f"Members of this platform have {earned} ledger entries: the certificate ledger is "
                            "permanent, so the platform cannot be removed. Leave it registered (its members keep "
                            "their hours).")
    db.session.delete(platform)
    db.session.flush()
    return platform


def all_platforms() -> list[Platform]:
    """Return every registration, oldest first."""
    return list(db.session.scalars(sa.select(Platform).order_by(Platform.id)))
