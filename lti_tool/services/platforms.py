"""Registering platforms and deployments: by the operator (CLI) and by LTI Dynamic Registration."""
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate

from lti_tool.extensions import db
from lti_tool.lti import canvas
from lti_tool.lti.errors import LaunchError
from lti_tool.lti.registration import (
    PlatformConfiguration,
    read_configuration,
    send_registration,
    updates_existing,
)
from lti_tool.models import Deployment, LmsIdentity, Platform
from lti_tool.models.base import upsert, utcnow
from lti_tool.services import invitations

log = logging.getLogger(__name__)

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
    for field, problems in error.messages_dict.items():
        parts.append(f"{field}: {' '.join(problems) if isinstance(problems, list) else problems}")
    return "; ".join(parts)


def find(issuer: str, client_id: str) -> Platform | None:
    """Return the registration for this issuer and client id."""
    return db.session.scalars(sa.select(Platform).where(Platform.issuer == issuer,
                                                        Platform.client_id == client_id)).first()


def lms_key(issuer: str, client_id: str) -> tuple[str, str]:
    """Return what names the LMS of a registration: the issuer, and the client id only where the issuer is shared.

    LTI makes `sub` (and, in the LMSs this tool serves, context ids) unique within an issuer, so two registrations
    of one Moodle are one LMS; Canvas cloud's issuers are shared by every customer, so there the client id counts.
    """
    issuer = issuer.rstrip("/")
    return issuer, client_id if canvas.is_shared_issuer(issuer) else ""


def lms_for(issuer: str, client_id: str, name: str) -> LmsIdentity:
    """Return the LMS a registration with this issuer and client id is in, recording it the first time."""
    issuer, key = lms_key(issuer, client_id)
    lms_id = upsert(db.session, LmsIdentity, {"issuer": issuer, "client_id": key, "name": name[:200],
                                              "created_at": utcnow()}, conflict=["issuer", "client_id"], update=[])
    return db.session.get_one(LmsIdentity, lms_id)


def registrations_of(lms_id: int) -> list[Platform]:
    """Return the registrations of one LMS, oldest first."""
    return list(db.session.scalars(sa.select(Platform).where(Platform.lms_id == lms_id).order_by(Platform.id)))


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
    platform = Platform(lms=lms_for(values["issuer"], values["client_id"], values["name"]), **values)
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
    """Remove a registration; with the last registration of an LMS, also what was recorded in that LMS."""
    from lti_tool.models import Account, LedgerEntry

    platform = find(issuer, client_id)
    if platform is None:
        raise PlatformError(f"No platform is registered for issuer {issuer} with client id {client_id}.")
    lms = platform.lms
    if len(registrations_of(lms.id)) > 1:
        # Members and courses belong to the LMS, which another registration still serves: they stay.
        db.session.delete(platform)
        db.session.flush()
        return platform
    in_lms = sa.select(Account.id).where(Account.lms_id == lms.id)
    earned = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).join(
        Account, Account.id == LedgerEntry.account_id).where(
        sa.or_(Account.id.in_(in_lms), Account.merged_into_id.in_(in_lms))))
    if earned:
        raise PlatformError(f"Members of this platform have {earned} ledger entries: the certificate ledger is "
                            "permanent, so the platform cannot be removed. Leave it registered (its members keep "
                            "their hours).")
    db.session.delete(platform)
    db.session.flush()
    db.session.delete(lms)
    db.session.flush()
    return platform


def all_platforms() -> list[Platform]:
    """Return every registration, oldest first."""
    return list(db.session.scalars(sa.select(Platform).order_by(Platform.id)))


# -- LTI Dynamic Registration: what the tool stores, and what it never changes ---------------------------------

@dataclass(frozen=True)
class DynamicPlan:
    """What a Dynamic Registration would do, shown to the LMS admin before anything is sent."""

    configuration: PlatformConfiguration
    #: The LMS says it updates a registration it made before (Moodle's Update), not a new one.
    update: bool
    #: Registrations the tool already has for this issuer, when the issuer names one LMS (not Canvas cloud).
    existing: list[Platform]

    @property
    def duplicate(self) -> bool:
        """Whether this would register an LMS the tool already knows, as a second, separate tool."""
        return bool(self.existing) and not self.update


@dataclass(frozen=True)
class DynamicOutcome:
    platform: Platform
    deployment_id: str | None
    #: "registered" (new) or "unchanged" (the LMS updated its side of an existing registration).
    outcome: str
    product: str | None
    #: Moodle keeps a newly registered tool pending until an admin activates it.
    needs_activation: bool


def plan_dynamic(openid_configuration: str, registration_token: str | None) -> DynamicPlan:
    """Read and check the platform's configuration; say what registering would do."""
    configuration = read_configuration(openid_configuration, registration_token)
    existing = [] if configuration.shared_issuer else _registrations_of_issuer(configuration.issuer)
    return DynamicPlan(configuration=configuration, update=updates_existing(registration_token), existing=existing)


def _registrations_of_issuer(issuer: str) -> list[Platform]:
    # The LMS an issuer names (an issuer typed by hand with a trailing slash is the same LMS).
    issuer, _ = lms_key(issuer, "")
    return list(db.session.scalars(sa.select(Platform).join(LmsIdentity, LmsIdentity.id == Platform.lms_id).where(
        LmsIdentity.issuer == issuer, LmsIdentity.client_id == "").order_by(Platform.id)))


def _differences(platform: Platform, configuration: PlatformConfiguration, deployment_id: str | None) -> list[str]:
    stored = {"login (authorization) endpoint": (platform.auth_login_url, configuration.authorization_endpoint),
              "token endpoint": (platform.auth_token_url, configuration.token_endpoint),
              "key set": (platform.key_set_url, configuration.jwks_uri)}
    changes = [f"{name}: {old or 'none'} → {new}" for name, (old, new) in stored.items() if old != new]
    known = {d.deployment_id for d in platform.deployments}
    if deployment_id and deployment_id not in known and not platform.accept_new_deployments:
        changes.append(f"deployment: {', '.join(sorted(known)) or 'none'} → {deployment_id}")
    return changes


def register_dynamic(openid_configuration: str, registration_token: str | None, *, base_url: str,
                     invitation: str | None, invitation_required: bool,
                     confirm_duplicate: bool = False) -> DynamicOutcome:
    """Register the tool with the platform and store the new registration; never change an existing one.

    An invitation (when required) is claimed before the platform is contacted and given back if nothing is
    registered. A registration the tool already has (same issuer and client id) is left exactly as it is: the
    LMS's update of it succeeds when it names the same endpoints, and is refused (409) when it names others.
    """
    claim = invitations.claim(invitation) if invitation_required or invitation else None
    try:
        plan = plan_dynamic(openid_configuration, registration_token)
        configuration = plan.configuration
        if plan.duplicate and not confirm_duplicate:
            raise LaunchError("registration_duplicate", _duplicate_message(plan), status=409,
                              platform=configuration.issuer)
        answer = send_registration(base_url, configuration, registration_token)
        platform = find(configuration.issuer, answer.client_id)
        if platform is not None:
            outcome = _keep_existing(platform, configuration, answer)
        else:
            platform = _store_new(configuration, answer)
            outcome = "registered"
        if claim is not None:
            invitations.spend(claim, platform.id, outcome)
    except BaseException:
        if claim is not None:
            invitations.release(claim)
        raise
    log.info("dynamic registration (%s): platform %s issuer=%s client_id=%s deployment=%s invitation=%s", outcome,
             platform.id, platform.issuer, platform.client_id, answer.deployment_id,
             claim.invitation_id if claim else "none (development)")
    return DynamicOutcome(platform=platform, deployment_id=answer.deployment_id, outcome=outcome,
                          product=configuration.product,
                          needs_activation=configuration.is_moodle and outcome == "registered")


def _duplicate_message(plan: DynamicPlan) -> str:
    configuration = plan.configuration
    known = ", ".join(f"client id {p.client_id} (registered {p.created_at:%Y-%m-%d})" for p in plan.existing)
    if configuration.is_moodle:
        how = ("To change it, close this window and start again from Moodle's Manage tools (Site administration › "
               "Plugins › Activity modules › External tool): paste the registration link in Tool URL, click Add LTI "
               "Advantage, and choose Update next to the existing tool, not \"Register as a new external tool\".")
    else:
        how = f"To change it, update the existing tool in {configuration.product_label} instead of adding a new one."
    return (f"{configuration.display_name} (issuer {configuration.issuer}) is already registered with this tool: "
            f"{known}. {how} Registering it again makes a second, separate tool in the LMS (the tool still keeps one "
            "set of members, courses and hours for it).")


def _keep_existing(platform: Platform, configuration: PlatformConfiguration, answer) -> str:
    changes = _differences(platform, configuration, answer.deployment_id)
    if changes:
        raise LaunchError(
            "registration_conflict",
            f"{configuration.product_label} answered with client id {answer.client_id}, which the tool already has "
            f"registered for {platform.issuer} ({platform.name}), but it now names different addresses: "
            f"{'; '.join(changes)}. The tool never changes an existing registration from a registration request, so "
            "it kept the one it has. If the platform really moved, ask the tool's operator to check and change the "
            "stored registration.", status=409, platform=platform.issuer)
    return "unchanged"


def _store_new(configuration: PlatformConfiguration, answer) -> Platform:
    platform = Platform(issuer=configuration.issuer, client_id=answer.client_id, name=configuration.display_name,
                        lms=lms_for(configuration.issuer, answer.client_id, configuration.display_name),
                        auth_login_url=configuration.authorization_endpoint,
                        auth_token_url=configuration.token_endpoint, key_set_url=configuration.jwks_uri,
                        registered_by="dynamic", product=configuration.product,
                        # Canvas makes a deployment for each account or course that installs the key, after this
                        # registration: accept new deployment ids in launches signed by this registration. So does a
                        # platform that did not say its deployment id.
                        accept_new_deployments=configuration.is_canvas or answer.deployment_id is None)
    db.session.add(platform)
    db.session.flush()
    if answer.deployment_id:
        db.session.add(Deployment(platform_id=platform.id, deployment_id=answer.deployment_id))
        db.session.flush()
    return platform


# -- the console and the CLI: disable, enable -------------------------------------------------------------------

def get(platform_id: int) -> Platform:
    """Return a registration by its number, or refuse with words."""
    platform = db.session.get(Platform, platform_id)
    if platform is None:
        raise PlatformError(f"There is no registration {platform_id} (see `flask --app lti_tool platform list`).")
    return platform


def check(platform_id: int, *, actor_account_id: int | None, via: str):
    """Check a registration against its platform (key set, configuration, token) and say what is wrong; audited."""
    from lti_tool.lti.platform_check import check_platform
    from lti_tool.services import audit

    platform = get(platform_id)
    result = check_platform(platform)
    audit.record("platform.check", actor_account_id=actor_account_id, person_id=None, platform_id=platform.id,
                 problems=len(result.problems), via=via)
    db.session.flush()
    return platform, result


def disable_platform(platform_id: int, *, reason: str, actor_account_id: int | None) -> Platform:
    """Refuse every login and launch through this registration from now on (audited; its data stays)."""
    from lti_tool.services import audit

    platform = get(platform_id)
    reason = " ".join((reason or "").split())
    if not reason:
        raise PlatformError("Disabling a registration needs a reason (LMS admins see it when their launch is "
                            "refused).")
    if platform.disabled_at is None:
        platform.disabled_at, platform.disabled_reason = utcnow(), reason[:500]
        audit.record("platform.disable", actor_account_id=actor_account_id, person_id=None, reason=reason[:500],
                     platform_id=platform.id, issuer=platform.issuer, client_id=platform.client_id)
        db.session.flush()
    return platform


def enable_platform(platform_id: int, *, actor_account_id: int | None) -> Platform:
    """Accept logins and launches through a disabled registration again (audited)."""
    from lti_tool.services import audit

    platform = get(platform_id)
    if platform.disabled_at is not None:
        platform.disabled_at, platform.disabled_reason = None, None
        audit.record("platform.enable", actor_account_id=actor_account_id, person_id=None,
                     platform_id=platform.id, issuer=platform.issuer, client_id=platform.client_id)
        db.session.flush()
    return platform
