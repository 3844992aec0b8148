"""The OAuth2 token request to a platform (lti/service_client.py): each way the token endpoint can fail is a
ServiceError that says what happened, is retried only when trying again can help, and caches nothing."""
import json

import pytest
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti.claims import Scope
from lti_tool.lti.service_client import ServiceError, access_token
from lti_tool.models import AccessToken, Platform


def _token(app, emulator) -> str:
    with app.app_context():
        platform = db.session.scalars(sa.select(Platform).where(Platform.issuer == emulator.issuer)).one()
        return access_token(platform, [Scope.AGS_SCORE])


def _cached(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(AccessToken)) or 0


def test_a_token_is_issued_and_cached(app, platform):
    first = _token(app, platform)
    assert first in platform.tokens and _cached(app) == 1
    assert _token(app, platform) == first and platform.token_requests == 1


@pytest.mark.parametrize("status, transient", [(400, False), (403, False), (401, True), (500, True), (503, True)])
def test_a_refused_token_request_says_the_status(app, platform, status, transient):
    platform.token_answer = (status, json.dumps({"error": "invalid_client"}), "application/json")
    with pytest.raises(ServiceError) as refused:
        _token(app, platform)
    assert str(refused.value) == f"The platform's token endpoint answered HTTP {status}."
    assert refused.value.status == status
    assert refused.value.transient is transient
    assert not refused.value.maybe_delivered  # a token request changes nothing in the gradebook
    assert _cached(app) == 0


def test_an_assertion_the_platform_cannot_verify_is_refused(app, platform):
    platform.tool_jwks = {"keys": []}  # the LMS cannot find the tool's key: it answers invalid_client
    with pytest.raises(ServiceError) as refused:
        _token(app, platform)
    assert refused.value.status == 401
    assert _cached(app) == 0


@pytest.mark.parametrize("body, mimetype", [
    ("this is not JSON", "text/plain"),
    (json.dumps({"token_type": "Bearer", "expires_in": 3600}), "application/json"),
    (json.dumps({"access_token": "", "expires_in": 3600}), "application/json"),
    (json.dumps({"access_token": 12345, "expires_in": 3600}), "application/json"),
    (json.dumps(["access_token"]), "application/json"),
])
def test_a_token_answer_without_a_usable_access_token_is_an_error(app, platform, body, mimetype):
    platform.token_answer = (200, body, mimetype)
    with pytest.raises(ServiceError) as refused:
        _token(app, platform)
    assert str(refused.value) == "The platform's token answer has no access_token."
    assert refused.value.status == 200
    assert _cached(app) == 0
