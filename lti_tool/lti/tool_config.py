"""pylti1p3's view of the platforms: a ToolConfAbstract that reads registrations from the database.

Registrations are read on every login and launch and change rarely, so each app keeps the ones it has read,
as read-only records (not ORM rows: building and attaching a row per request cost more than the query it
saved), under the number in `registration_version` it read with them. Every flush that adds, changes or removes a
platform or deployment raises that number in its own transaction (as do the key-set updates in
platform_keys.py), so once it commits every process, on every server, reads the registrations afresh: one
statement per request instead of one per look-up.
"""
import copy
import itertools
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app, g, has_app_context
from pylti1p3.deployment import Deployment as Pylti1p3Deployment
from pylti1p3.registration import Registration, TKeySet
from pylti1p3.tool_config import ToolConfAbstract
from sqlalchemy.orm import Session

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.lti.errors import LaunchError
from lti_tool.models import Deployment, Platform, RegistrationVersion


@dataclass(frozen=True, slots=True)
class PlatformRecord:
    """A platform registration as the login and launch read it: its columns, read-only.

    Shared by every thread of the process, so nothing may change it or its key sets (changes go through the
    Platform model, which raises the registration version).
    """

    id: int
    lms_id: int
    name: str
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    auth_audience: str | None
    key_set_url: str | None
    key_set: dict[str, Any] | None
    cached_key_set: dict[str, Any] | None
    accept_new_deployments: bool
    registered_by: str
    product: str | None
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, row: Platform) -> "PlatformRecord":
        values = {name: getattr(row, name) for name in cls.__dataclass_fields__}
        # Its own copy of the key sets: the row's JSON values belong to the session that read it.
        return cls(**{**values, "key_set": copy.deepcopy(row.key_set),
                      "cached_key_set": copy.deepcopy(row.cached_key_set)})


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """A deployment as the login and launch read it."""

    id: int
    platform_id: int
    deployment_id: str

    @classmethod
    def of(cls, row: Deployment) -> "DeploymentRecord":
        return cls(id=row.id, platform_id=row.platform_id, deployment_id=row.deployment_id)


class ToolRegistration(Registration):
    """A pylti1p3 Registration that signs with the tool's active key and names it by our `kid`."""

    def __init__(self, platform: Platform | PlatformRecord):
        self.platform = platform
        self.set_issuer(platform.issuer).set_client_id(platform.client_id)
        self.set_auth_login_url(platform.auth_login_url).set_auth_token_url(platform.auth_token_url)
        self.set_auth_audience(platform.auth_audience or platform.auth_token_url)
        key_set = cast("TKeySet | None", platform.key_set or platform.cached_key_set)  # JSON columns: plain dicts
        self.set_key_set_url(platform.key_set_url).set_key_set(key_set)
        self._signing: keys.SigningKey | None = None

    def _signing_key(self) -> keys.SigningKey:
        # Loaded on first use: validating a launch never needs the tool's own key.
        if self._signing is None:
            self._signing = keys.signing_key()
        return self._signing

    def get_tool_private_key(self):
        return self._signing_key().private_key_pem

    def get_tool_public_key(self):
        return self._signing_key().public_key_pem

    def get_kid(self):
        return self._signing_key().kid

    def get_jwks(self):
        return keys.public_jwks()["keys"]


_CHANGED = "registrations_changed"
_CACHE_LOCK = threading.Lock()
_VERSION = sa.select(RegistrationVersion.version).where(RegistrationVersion.id == 1)
BUMP = (sa.update(RegistrationVersion).where(RegistrationVersion.id == 1)
        .values(version=RegistrationVersion.version + 1))


@sa.event.listens_for(Session, "before_flush")
def _bump_version(session, _flush_context, _instances):
    """Raise the registration version in the transaction that changes a platform or deployment."""
    touched = itertools.chain(session.new, session.deleted,
                              (o for o in session.dirty if session.is_modified(o, include_collections=False)))
    if any(isinstance(o, (Platform, Deployment)) for o in touched):
        session.connection().execute(BUMP)
        session.info[_CHANGED] = True  # until it commits, this transaction reads registrations from the database
        if has_app_context():
            g.pop("_registrations", None)


@sa.event.listens_for(Session, "after_commit")
@sa.event.listens_for(Session, "after_soft_rollback")
def _transaction_ended(session, *_args):
    session.info.pop(_CHANGED, None)


def _registrations() -> dict | None:
    """This app's cached registrations for the version the database has now; None where it must not be used."""
    session = db.session()
    if session.info.get(_CHANGED) or any(isinstance(o, (Platform, Deployment)) for o in itertools.chain(
            session.new, session.deleted, session.dirty)):
        return None  # changes not yet flushed: the query (and its autoflush) sees them, the cache would not
    if "_registrations" in g:
        return g._registrations  # one version read per request
    # Read by another statement of this transaction (the launch reads it with its login: read_version_with), or
    # here, on the session's connection (its transaction), without the ORM's execution layer: nothing is pending.
    version = g.pop("_registration_version", None)
    if version is None:
        version = session.connection().execute(_VERSION).scalar()
    if version is None:
        return None
    with _CACHE_LOCK:
        held = current_app.extensions.get("registrations")
        if held is None or held[0] != version:
            held = (version, {})
            current_app.extensions["registrations"] = held
    g._registrations = held[1]
    return held[1]


def version_column() -> sa.Label:
    """The registration version as a column another statement can carry (see read_version_with)."""
    return _VERSION.scalar_subquery().label("registration_version")


def read_version_with(version: int | None) -> None:
    """Take the registration version that a statement of this request's transaction read along with its own
    columns (`version_column()`), so that finding a registration reads it no second time."""
    if version is not None and "_registrations" not in g:
        g._registration_version = version


def _cached(key: tuple, load, record):
    # Only registrations found are kept: unknown issuers and ids in forged requests must not fill the cache.
    cache = _registrations()
    if cache is not None and key in cache:
        return cache[key]
    row = load()
    found = None if row is None else record(row)
    if cache is not None and found is not None:
        cache[key] = found
    return found


def find_platform(issuer: str, client_id: str | None) -> PlatformRecord | None:
    """Find a registration by issuer and client id; without a client id, only an issuer's single one."""
    def load() -> Platform | None:
        query = sa.select(Platform).where(Platform.issuer == issuer)
        if client_id:
            return db.session.scalars(query.where(Platform.client_id == client_id)).first()
        found = list(db.session.scalars(query.limit(2)))
        return found[0] if len(found) == 1 else None

    return _cached(("platform", issuer, client_id or None), load, PlatformRecord.of)


def refuse_if_disabled(platform: Platform | PlatformRecord) -> None:
    """Refuse a login or launch through a registration an admin disabled, saying so and how to undo it."""
    if platform.disabled_at is None:
        return
    why = f" ({platform.disabled_reason})" if platform.disabled_reason else ""
    raise LaunchError("platform_disabled",
                      f"The tool's registration for {platform.name} was disabled by the program's administrators on "
                      f"{platform.disabled_at:%Y-%m-%d}{why}, so launches from it are refused. Ask them to enable it "
                      "again (Platforms in the program console, or `flask --app lti_tool platform enable`).",
                      status=403, platform=platform.issuer, client_id=platform.client_id)


def find_deployment(platform: PlatformRecord, deployment_id: str) -> DeploymentRecord | None:
    """Find one of a platform's deployments by its id."""
    def load() -> Deployment | None:
        return db.session.scalars(
            sa.select(Deployment).where(Deployment.platform_id == platform.id,
                                        Deployment.deployment_id == deployment_id)
        ).first()

    return _cached(("deployment", platform.id, deployment_id), load, DeploymentRecord.of)


class DatabaseToolConf(ToolConfAbstract):
    """Registrations keyed on issuer *and* client id, as Canvas cloud needs (one issuer, many customers)."""

    def check_iss_has_one_client(self, iss):
        return False

    def check_iss_has_many_clients(self, iss):
        return True

    def find_registration_by_issuer(self, iss, *args, **kwargs):
        platform = find_platform(iss, None)
        return ToolRegistration(platform) if platform else None

    def find_registration_by_params(self, iss, client_id, *args, **kwargs):
        platform = find_platform(iss, client_id)
        return ToolRegistration(platform) if platform else None

    def find_deployment(self, iss, deployment_id):
        platform = find_platform(iss, None)
        return self._deployment(platform, deployment_id)

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        return self._deployment(find_platform(iss, client_id), deployment_id)

    @staticmethod
    def _deployment(platform, deployment_id):
        if platform is None or find_deployment(platform, deployment_id) is None:
            return None
        return Pylti1p3Deployment().set_deployment_id(deployment_id)

    def get_jwks(self, iss=None, client_id=None, **kwargs):
        return keys.public_jwks()
