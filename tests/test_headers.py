"""Security headers: nosniff, the referrer policy, a Content-Security-Policy whose frame-ancestors are the registered
platforms, nonced inline scripts, and no caching of pages with personal data."""
import re

import pytest

from lti_tool.extensions import db
from lti_tool.services import platforms
from tests.platform import login_params


def csp(response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [values]}."""
    header = response.headers["Content-Security-Policy"]
    return {parts[0]: parts[1:] for parts in (d.split() for d in header.split(";") if d.strip())}


def test_every_response_carries_nosniff_the_referrer_policy_and_a_csp(client, platform):
    for path in ("/", "/.well-known/jwks.json", "/lti/config/canvas.json", "/no-such-page", "/static/tool.css",
                 "/demo/"):
        response = client.get(path)
        response.close()
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
        policy = csp(response)
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"], path
    refused = client.post("/lti/launch", data={"id_token": "garbage"})
    assert refused.status_code == 400 and "frame-ancestors" in refused.headers["Content-Security-Policy"]


def test_only_the_registered_platforms_may_frame_the_tool(app, client, platform):
    ancestors = csp(client.get("/"))["frame-ancestors"]
    assert ancestors == ["'self'", platform.base_url]  # the emulator's issuer, login and token URLs share one origin
    assert "*" not in ancestors and "https://evil.example.com" not in ancestors
    # A platform registered now (Canvas cloud) may frame the tool at once, from its customers' hosts.
    with app.app_context():
        platforms.add_platform({
            "name": "District Canvas", "issuer": "https://canvas.instructure.com", "client_id": "10000000000123",
            "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "auth_token_url": "https://district.instructure.com/login/oauth2/token",
            "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks", "deployment_ids": ["1:abc"]})
        db.session.commit()
    ancestors = csp(client.get("/"))["frame-ancestors"]
    for expected in ("https://canvas.instructure.com", "https://district.instructure.com",
                     "https://*.instructure.com", platform.base_url):
        assert expected in ancestors


def test_an_operator_can_allow_a_vanity_domain_to_frame_the_tool(app, client, platform):
    app.config["FRAME_ANCESTORS"] = "https://canvas.school.edu, https://*.district.org, javascript:alert(1), x y"
    app.extensions.pop("platform_origins", None)
    ancestors = csp(client.get("/"))["frame-ancestors"]
    assert "https://canvas.school.edu" in ancestors and "https://*.district.org" in ancestors
    assert not any("javascript" in a or a in ("x", "y") for a in ancestors)


def test_the_registration_page_may_be_framed_by_an_lms_not_yet_registered(client):
    response = client.get("/lti/register")
    assert csp(response)["frame-ancestors"] == ["*"]
    assert response.headers["Cache-Control"] == "no-store"


def test_inline_scripts_run_only_with_this_responses_nonce(client, platform):
    response = client.get("/lti/login", query_string=login_params(platform, lti_storage_target="_parent"))
    assert response.status_code == 200
    scripts = csp(response)["script-src"]
    assert "'unsafe-inline'" not in scripts and "'self'" in scripts
    [nonce] = [s.removeprefix("'nonce-").removesuffix("'") for s in scripts if s.startswith("'nonce-")]
    inline = re.findall(r"<script( [^>]*)?>(?!</script>)", response.get_data(as_text=True))
    # This page runs only the tool's own files; its JSON data block (type="application/json") is never run.
    assert inline and all("src=" in a or 'type="application/json"' in a for a in inline)
    # A page that does run an inline script (the demo LMS's auto-posting form) gives it this response's nonce.
    from tests.test_demo import _path, _token

    start = client.post("/demo/start", data={"csrf_token": _token(client, "/demo/"), "as": "member"})
    login = client.get(_path(start.location, "http://localhost:5000"))
    posting = client.get(_path(login.location, "http://localhost:5000"))
    [posting_nonce] = [s.removeprefix("'nonce-").removesuffix("'") for s in csp(posting)["script-src"]
                       if s.startswith("'nonce-")]
    runnable = [a or "" for a in re.findall(r"<script( [^>]*)?>(?!</script>)", posting.get_data(as_text=True))
                if "src=" not in (a or "")]
    assert runnable and all(f'nonce="{posting_nonce}"' in a for a in runnable)
    assert posting_nonce != nonce
    again = client.get("/lti/login", query_string=login_params(platform, lti_storage_target="_parent"))
    assert csp(again)["script-src"] != scripts  # a new nonce per response


def test_every_inline_script_in_the_templates_carries_the_nonce():
    """The CSP blocks inline scripts without this response's nonce: a template that forgets it breaks its page.
    JSON data blocks (`type="application/json"`) do not run and need none."""
    from pathlib import Path

    import lti_tool

    checked = 0
    for template in (Path(lti_tool.__file__).parent / "templates").rglob("*.html"):
        for attributes in re.findall(r"<script( [^>]*)?>", template.read_text()):
            if "src=" in attributes or 'type="application/json"' in attributes:
                continue
            checked += 1
            assert 'nonce="{{ csp_nonce() }}"' in attributes, template
    assert checked >= 2  # the deep-linking response and the demo's auto-post submit themselves


def test_pages_with_personal_data_are_never_cached_and_public_assets_may_be(client, platform, member_launch):
    home = member_launch(platform)
    for path in (home, home + "progress", home + "registration", home + "certificate.pdf", home + "admin/",
                 home + "admin/export/progress.csv", "/verify/BC-2026-XXXXXX", "/lti/register"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    with client.get("/static/tool.css") as static:
        assert "no-store" not in static.headers.get("Cache-Control", "")
    assert client.get("/.well-known/jwks.json").headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.browser
def test_chromium_refuses_to_show_the_tool_framed_by_a_site_that_is_not_a_registered_platform(
        app, live_server, make_platform, browser_page):
    registered = make_platform()
    stranger = make_platform(register=False, client_id="not-registered")
    login = f"{live_server}/"
    for emulator, shown in ((registered, True), (stranger, False)):
        browser_page.goto(f"{emulator.base_url}/course?tool_login={login}")
        frame = browser_page.frame(name="tool")
        browser_page.wait_for_timeout(500)
        text = frame.evaluate("document.body ? document.body.innerText : ''") if frame else ""
        assert ("Bargaining Certificate" in text) is shown, (emulator.base_url, text[:200])
