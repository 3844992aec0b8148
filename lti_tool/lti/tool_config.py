"""pylti1p3's view of the platforms: a ToolConfAbstract that reads registrations from the database."""
from typing import cast

import sqlalchemy as sa
from pylti1p3.deployment import Deployment as Pylti1p3Deployment
from pylti1p3.registration import Registration, TKeySet
from pylti1p3.tool_config import ToolConfAbstract

from lti_tool.extensions import db
from lti_tool.lti import keys
from lti_tool.lti.errors import LaunchError
from lti_tool.models import Deployment, Platform


class ToolRegistration(Registration):
    """A pylti1p3 Registration that signs with the tool's active key and names it by our `kid`."""

    def __init__(self, platform: Platform):
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


def find_platform(issuer: str, client_id: str | None) -> Platform | None:
    """Find a registration by issuer and client id; without a client id, only an issuer's single one."""
    query = sa.select(Platform).where(Platform.issuer == issuer)
    if client_id:
        return db.session.scalars(query.where(Platform.client_id == client_id)).first()
    found = list(db.session.scalars(query.limit(2)))
    return found[0] if len(found) == 1 else None


def refuse_if_disabled(platform: Platform) -> None:
    """Refuse a login or launch through a registration an admin disabled, saying so and how to undo it."""
    if platform.disabled_at is None:
        return
    why = f" ({platform.disabled_reason})" if platform.disabled_reason else ""
    raise LaunchError("platform_disabled",
                      f"The tool's registration for {platform.name} was disabled by the program's administrators on "
                      f"{platform.disabled_at:%Y-%m-%d}{why}, so launches from it are refused. Ask them to enable it "
                      "again (Platforms in the program console, or `flask --app lti_tool platform enable`).",
                      status=403, platform=platform.issuer, client_id=platform.client_id)


def find_deployment(platform: Platform, deployment_id: str) -> Deployment | None:
    """Find one of a platform's deployments by its id."""
    return db.session.scalars(
        sa.select(Deployment).where(Deployment.platform_id == platform.id,
                                    Deployment.deployment_id == deployment_id)
    ).first()


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
