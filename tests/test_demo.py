"""The built-in demo LMS: a newcomer can click through real launches."""
import re

import pytest

from lti_tool import create_app
from tests.conftest import register


def _follow_demo_launch(client, choice):
    response = client.post("/demo/start", data={"as": choice})
    assert response.status_code == 303
    response = client.get(response.location.replace("http://localhost:5000", ""))  # the tool's login
    assert response.status_code == 302
    response = client.get(response.location.replace("http://localhost:5000", ""))  # the demo's authorization
    html = response.get_data(as_text=True)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
    return client.post("/lti/launch", data=fields)


@pytest.mark.parametrize("choice, expected", [("member", "Dana Rivera"), ("instructor", "Sam Okafor")])
def test_demo_launches_go_through_the_real_endpoints(app, client, choice, expected):
    app.config["WTF_CSRF_ENABLED"] = False
    response = _follow_demo_launch(client, choice)
    assert response.status_code == 303
    if choice == "member":  # members register once, at their first launch
        landing = client.get(response.location)
        assert landing.status_code == 302 and "/registration" in landing.location
        register(client, response.location)
    assert expected in client.get(response.location).get_data(as_text=True)


def test_demo_start_needs_the_csrf_token(client):
    assert client.post("/demo/start", data={"as": "member"}).status_code == 400


def test_demo_platform_is_off_in_production(monkeypatch, tmp_path):
    monkeypatch.setenv("LTI_TOOL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    app = create_app()
    assert app.test_client().get("/demo/").status_code == 404


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.setenv("LTI_TOOL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_development_defaults_start_and_answer(monkeypatch, tmp_path):
    for name in ("LTI_TOOL_ENV", "SECRET_KEY", "PUBLIC_BASE_URL", "LTI_DEMO_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dev.sqlite3'}")
    app = create_app()
    assert app.config["REGISTRATION_WITHOUT_INVITATION"] and app.config["DEMO_PLATFORM"]
    client = app.test_client()
    # Registration is open in development: without its parameters it says what it needs.
    response = client.get("/lti/register")
    assert response.status_code == 400 and "openid_configuration" in response.get_data(as_text=True)
