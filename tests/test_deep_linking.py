"""Deep Linking 2.0: the instructor's picker and the signed response, as Canvas and Moodle read it."""
import html
import json
import re
import shutil
from datetime import date
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from jwt.algorithms import RSAAlgorithm
from markupsafe import escape

from lti_tool.catalog import current_catalog, load_catalog
from lti_tool.extensions import db
from lti_tool.models import Launch, Workshop
from tests.platform import LTI

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SETTINGS = DL + "deep_linking_settings"
LAUNCH_URL = "http://localhost:5000/lti/launch"
WORKSHOP = {"date-bargaining-foundations": "2026-07-14", "venue-bargaining-foundations": "Hyannis Resort",
            "event-bargaining-foundations": "Summer Conference 2026"}


def page(response) -> str:
    return response.get_data(as_text=True)


def settings(emulator, **changes) -> dict:
    """The deep-linking settings claim the emulator sends, with changes."""
    value = {"deep_link_return_url": emulator.base_url + "/deep_link_return", "accept_types": ["ltiResourceLink"],
             "accept_presentation_document_targets": ["iframe", "window"], "accept_multiple": True}
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def open_picker(client, do_launch, emulator, user="instructor") -> str:
    """Make a deep-linking launch; return the picker's URL."""
    response = do_launch(emulator, user, lti_message_hint="deep-link")
    assert response.status_code == 303 and response.location.endswith("/deep-link")
    return response.location


def submit(client, url, choices, **fields):
    """Post the picker's form with its CSRF token."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', page(client.get(url))).group(1)
    return client.post(url, data={"csrf_token": token, "choice": list(choices), **fields})


def read_response(client, response, audience) -> tuple[str, dict, dict]:
    """Read the auto-submitting form; verify its JWT against the tool's published JWKS; return action, header,
    claims."""
    assert response.status_code == 200, page(response)
    text = page(response)
    action = html.unescape(re.search(r'<form id="deep-link-response" method="post" action="([^"]+)"', text).group(1))
    token = re.search(r'name="JWT" value="([^"]+)"', text).group(1)
    assert "document.getElementById(\"deep-link-response\").submit()" in text
    header = jwt.get_unverified_header(token)
    jwks = client.get("/.well-known/jwks.json").get_json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(token, RSAAlgorithm.from_jwk(json.dumps(key)), algorithms=["RS256"], audience=audience,
                        options={"require": ["iss", "aud", "iat", "exp", "nonce"]})
    return action, header, claims


def workshops(app) -> list[Workshop]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Workshop).order_by(Workshop.id)))
        db.session.expunge_all()
        return rows


def test_picker_lists_the_catalog_by_group_with_hours_and_modes(app, client, platform, do_launch):
    response = client.get(open_picker(client, do_launch, platform))
    assert response.status_code == 200
    text = page(response)
    with app.app_context():
        catalog = current_catalog()
        for group in catalog.program.groups:
            assert f'<h2 id="group-{group.id}">{group.title}</h2>' in text
            section = text.split(f'id="group-{group.id}"')[1].split('<section class="group"')[0]
            for module in catalog.modules_in(group.id):
                assert f'<span class="module-title">{escape(module.title)}</span> · ' \
                       f'{module.credit_hours:g} hours' in section
                for mode in module.delivery_modes:
                    assert f'name="choice" value="{module.slug}:{mode}"' in section
    assert "Self-paced module" in text and "Graded workshop" in text
    # The emulator accepts several items: checkboxes, not radio buttons.
    assert 'type="checkbox" name="choice"' in text and 'type="radio" name="choice"' not in text


def test_one_item_platform_gets_radio_buttons(client, platform, do_launch):
    platform.claim_overrides = {SETTINGS: settings(platform, accept_multiple=False)}
    text = page(client.get(open_picker(client, do_launch, platform)))
    assert 'type="radio" name="choice"' in text and 'type="checkbox" name="choice"' not in text
    assert "takes <strong>one item</strong>" in text


def test_member_deep_linking_launch_cannot_open_the_picker(client, platform, do_launch):
    url = open_picker(client, do_launch, platform, user="member")
    assert client.get(url).status_code == 403
    # A valid token (from the member's registration page): the role check is what refuses, not CSRF.
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      page(client.get(url.removesuffix("deep-link") + "registration"))).group(1)
    refused = client.post(url, data={"csrf_token": token, "choice": "power-mapping:self_paced"})
    assert refused.status_code == 403
    assert "This page is for instructors" in page(refused)


def test_resource_link_launch_cannot_use_the_picker(app, client, platform, do_launch):
    home = do_launch(platform, "instructor").location
    response = client.get(home + "deep-link")
    assert response.status_code == 403
    assert "add content to a course" in page(response)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page(client.get(home + "registration"))).group(1)
    response = client.post(home + "deep-link", data={"csrf_token": token, "choice": "bargaining-foundations:workshop",
                                                     **WORKSHOP})
    assert response.status_code == 403
    assert workshops(app) == []


def test_platform_that_does_not_take_resource_links_is_told_so(client, platform, do_launch):
    platform.claim_overrides = {SETTINGS: settings(platform, accept_types=["file", "html"])}
    response = client.get(open_picker(client, do_launch, platform))
    assert response.status_code == 400 and "LTI resource links" in page(response)


def test_response_is_signed_by_the_tool_with_every_claim_the_platform_needs(app, client, platform, do_launch):
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["power-mapping:self_paced", "bargaining-foundations:workshop"], **WORKSHOP)
    action, header, claims = read_response(client, response, audience=platform.issuer)
    assert action == platform.base_url + "/deep_link_return"
    with app.app_context():
        from lti_tool.lti.keys import active_key

        assert header["kid"] == active_key().kid and header["alg"] == "RS256"
        catalog = current_catalog()
        power, foundations = catalog.module("power-mapping"), catalog.module("bargaining-foundations")
    assert claims["iss"] == platform.client_id and claims["aud"] == platform.issuer
    assert claims[LTI + "deployment_id"] == platform.deployment_id
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[LTI + "version"] == "1.3.0"
    assert 0 < claims["exp"] - claims["iat"] <= 600 and len(claims["nonce"]) >= 16
    assert DL + "data" not in claims  # the request had no data, so none is sent back
    [workshop] = workshops(app)
    assert claims[DL + "content_items"] == [
        {"type": "ltiResourceLink", "url": LAUNCH_URL, "title": power.title, "text": power.summary,
         "custom": {"module": "power-mapping", "mode": "self_paced"},
         "lineItem": {"scoreMaximum": 3, "label": power.title, "resourceId": "power-mapping:self_paced",
                      "tag": "bargaining-certificate"}},
        {"type": "ltiResourceLink", "url": LAUNCH_URL,
         "title": f"{foundations.title} — workshop, Summer Conference 2026, 14 July 2026", "text": foundations.summary,
         "custom": {"module": "bargaining-foundations", "mode": "workshop", "workshop": workshop.public_id},
         "lineItem": {"scoreMaximum": 6, "label": f"{foundations.title} — workshop, Summer Conference 2026, "
                                                  "14 July 2026",
                      "resourceId": workshop.public_id, "tag": "bargaining-certificate"}},
    ]


@pytest.mark.parametrize("data", ["eyJhbGciOiJIUzI1NiJ9.eyJwbGFjZW1lbnQiOiJsaW5rX3NlbGVjdGlvbiJ9.c2ln",
                                  {"placement": "assignment_selection", "ids": [1, 2]}, ""])
def test_data_from_the_request_comes_back_exactly(client, platform, do_launch, data):
    platform.claim_overrides = {SETTINGS: settings(platform, data=data)}
    response = submit(client, open_picker(client, do_launch, platform), ["power-mapping:self_paced"])
    _, _, claims = read_response(client, response, audience=platform.issuer)
    assert claims[DL + "data"] == data


def test_one_item_platform_refuses_several_choices_and_writes_nothing(app, client, platform, do_launch):
    platform.claim_overrides = {SETTINGS: settings(platform, accept_multiple=False)}
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["power-mapping:self_paced", "bargaining-foundations:workshop"], **WORKSHOP)
    assert response.status_code == 422
    text = page(response)
    assert 'role="alert"' in text
    assert "You chose 2 items, but the LMS takes one item from this page" in text
    assert 'name="JWT"' not in text
    assert workshops(app) == []
    # One choice goes through.
    response = submit(client, url, ["bargaining-foundations:workshop"], **WORKSHOP)
    _, _, claims = read_response(client, response, audience=platform.issuer)
    assert len(claims[DL + "content_items"]) == 1


def test_nothing_chosen_is_a_clear_422(client, platform, do_launch):
    response = submit(client, open_picker(client, do_launch, platform), [])
    assert response.status_code == 422
    assert "Choose at least one module to add to the course" in page(response)


@pytest.mark.parametrize("blank, message", [
    ("date-bargaining-foundations", "Enter the date of the workshop."),
    ("venue-bargaining-foundations", "Enter where the workshop takes place"),
    ("event-bargaining-foundations", "Enter the conference or training, such as"),
])
def test_workshop_choice_requires_date_venue_and_event(app, client, platform, do_launch, blank, message):
    fields = dict(WORKSHOP, **{blank: "  "})
    response = submit(client, open_picker(client, do_launch, platform), ["bargaining-foundations:workshop"],
                      **fields)
    assert response.status_code == 422
    text = page(response)
    assert message in html.unescape(text)
    field = re.search(rf'<input type="[a-z]+" id="{blank}"[^>]*>', text).group(0)
    assert 'aria-invalid="true"' in field and f'aria-describedby="{blank}-error' in field
    # What was typed stays in the form.
    for name, value in WORKSHOP.items():
        if name != blank:
            assert f'name="{name}" value="{value}"' in text
    assert workshops(app) == []


def test_workshop_date_must_be_a_date(app, client, platform, do_launch):
    response = submit(client, open_picker(client, do_launch, platform), ["bargaining-foundations:workshop"],
                      **dict(WORKSHOP, **{"date-bargaining-foundations": "next Tuesday"}))
    assert response.status_code == 422 and "Enter the date as YYYY-MM-DD." in page(response)
    assert workshops(app) == []


def test_workshop_choice_creates_the_workshop_in_the_launch_course(app, client, platform, do_launch):
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["bargaining-foundations:workshop"], **WORKSHOP)
    assert response.status_code == 200
    [workshop] = workshops(app)
    launch_id = url.rstrip("/").split("/")[-2]
    with app.app_context():
        launch = db.session.get(Launch, launch_id)
        assert workshop.course_id == launch.course_id and workshop.created_by_account_id == launch.account_id
    assert workshop.module_slug == "bargaining-foundations"
    assert (workshop.event_name, workshop.venue, workshop.session_date) == \
        ("Summer Conference 2026", "Hyannis Resort", date(2026, 7, 14))
    assert len(workshop.public_id) == 36 and workshop.public_id != str(workshop.id)


def test_self_paced_choice_for_a_workshop_only_module_is_refused(app, client, platform, do_launch, tmp_path):
    content = Path(app.config["CONTENT_DIR"])
    copy = tmp_path / "content"
    shutil.copytree(content, copy)
    module_file = copy / "modules" / "contract-language-lab" / "module.yaml"
    module_file.write_text(module_file.read_text().replace("delivery_modes: [self_paced, workshop]",
                                                           "delivery_modes: [workshop]"))
    app.extensions["catalog"] = load_catalog(copy)
    url = open_picker(client, do_launch, platform)
    text = page(client.get(url))
    assert 'value="contract-language-lab:workshop"' in text
    assert 'value="contract-language-lab:self_paced"' not in text
    response = submit(client, url, ["contract-language-lab:self_paced", "bargaining-foundations:workshop"],
                      **WORKSHOP)
    assert response.status_code == 422
    assert "is offered only as a graded workshop; it cannot be placed as a self-paced module." in page(response)
    assert workshops(app) == []


def test_unknown_module_is_refused_with_a_message(client, platform, do_launch):
    response = submit(client, open_picker(client, do_launch, platform), ["no-such-module:self_paced"])
    assert response.status_code == 422
    assert "There is no module &#39;no-such-module&#39; in the catalog." in page(response)


def test_picker_post_needs_the_csrf_token(app, client, platform, do_launch):
    url = open_picker(client, do_launch, platform)
    response = client.post(url, data={"choice": "bargaining-foundations:workshop", **WORKSHOP})
    assert response.status_code == 400
    assert workshops(app) == []


def test_placed_self_paced_link_opens_its_module_for_a_member(client, platform, member_launch):
    platform.claim_overrides = {LTI + "custom": {"module": "power-mapping", "mode": "self_paced"}}
    home = member_launch(platform)
    response = client.get(home)
    assert response.status_code == 302 and response.location.endswith("/modules/power-mapping")


# -- as the two LMSs read the response --

def _canvas_reads(claims: dict, canvas_issuer: str, client_id: str) -> list[dict]:
    """What Canvas checks (Lti::IMS::DeepLinkingController): iss names the developer key, aud holds Canvas's
    issuer, the nonce serves as jti; then it takes the ltiResourceLink items."""
    assert claims["iss"] == client_id
    assert canvas_issuer in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
    assert claims["nonce"] and claims["exp"] > claims["iat"]
    links = [item for item in claims[DL + "content_items"] if item["type"] == "ltiResourceLink"]
    for item in links:
        assert item["url"] == LAUNCH_URL and item["title"]
        assert all(isinstance(v, str) for v in item["custom"].values())
        assert item["lineItem"]["scoreMaximum"] > 0 and item["lineItem"]["label"]
    return links


def _moodle_form(claims: dict, client_id: str) -> list[dict]:
    """What Moodle fills its activity form with (lti_convert_content_items, then content_item_to_form)."""
    assert claims["iss"] == client_id  # Moodle compares iss with the tool's client id
    forms = []
    for item in claims[DL + "content_items"]:
        assert item["type"] == "ltiResourceLink"
        forms.append({
            "name": item["title"], "toolurl": item["url"], "intro": item["text"],
            "instructorcustomparameters": "\n".join(f"{k}={v}" for k, v in item["custom"].items()),
            "grade_modgrade_point": item["lineItem"]["scoreMaximum"],
            "lineitemresourceid": item["lineItem"]["resourceId"], "lineitemtag": item["lineItem"]["tag"],
        })
    return forms


@pytest.mark.parametrize("placement", ["assignment_selection", "link_selection"])
def test_canvas_reads_the_response(app, client, make_platform, do_launch, placement):
    canvas = make_platform(issuer="https://canvas.instructure.com", client_id="10000000000123", product="canvas")
    canvas.claim_overrides = {SETTINGS: settings(
        canvas, deep_link_return_url=f"{canvas.base_url}/courses/1/deep_linking_response?placement={placement}",
        accept_multiple=placement == "link_selection", accept_lineitem=True,
        accept_presentation_document_targets=["iframe", "window"], data="canvas-signed-data-jwt")}
    url = open_picker(client, do_launch, canvas)
    response = submit(client, url, ["bargaining-foundations:workshop"], **WORKSHOP)
    action, _, claims = read_response(client, response, audience="https://canvas.instructure.com")
    assert action == f"{canvas.base_url}/courses/1/deep_linking_response?placement={placement}"
    [link] = _canvas_reads(claims, "https://canvas.instructure.com", "10000000000123")
    assert link["custom"]["mode"] == "workshop" and link["lineItem"]["scoreMaximum"] == 6
    assert claims[DL + "data"] == "canvas-signed-data-jwt"


def test_moodle_fills_its_activity_form_from_the_response(app, client, platform, do_launch):
    # Moodle sends accept_multiple false from an activity's "Select content" button.
    platform.claim_overrides = {SETTINGS: settings(platform, accept_multiple="false")}
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["bargaining-foundations:workshop"], **WORKSHOP)
    _, _, claims = read_response(client, response, audience=platform.issuer)
    [form] = _moodle_form(claims, platform.client_id)
    [workshop] = workshops(app)
    assert form["name"].startswith("Bargaining Foundations — workshop, Summer Conference 2026") and \
        len(form["name"]) <= 255
    assert form["toolurl"] == LAUNCH_URL
    assert form["instructorcustomparameters"] == \
        f"module=bargaining-foundations\nmode=workshop\nworkshop={workshop.public_id}"
    assert form["grade_modgrade_point"] == 6 and form["lineitemresourceid"] == workshop.public_id
    assert form["lineitemtag"] == "bargaining-certificate"


def test_instructor_with_a_deep_link_launch_in_chromium_places_a_workshop(live_server, browser_page):
    pytest.importorskip("playwright")
    from tests.test_accessibility import violations

    page_ = browser_page
    page_.goto(live_server + "/demo/")
    page_.get_by_role("button", name="Deep link as instructor").click()
    page_.wait_for_url("**/deep-link")
    assert page_.get_by_role("heading", level=1).inner_text().startswith("Add Bargaining Certificate content")
    assert violations(page_) == [], "picker"
    page_.locator("#pick-democratized summary").click()  # the groups start closed
    item = page_.locator("#module-democratized-bargaining")
    item.get_by_label("Graded workshop").check()
    item.get_by_label("Date of the workshop").fill("2027-01-23")
    item.get_by_label("Venue").fill("Union hall, Worcester")
    item.get_by_label("Conference or training").fill("Union Skills Winter Conference")
    page_.get_by_role("button", name="Add to the course").click()
    page_.wait_for_url("**/demo/deep-link-return")
    assert page_.get_by_role("heading", level=1).inner_text() == "Demo LMS received 1 item"
    assert "Democratized Bargaining — workshop, Union Skills Winter Conference, 23 January 2027" in \
        page_.locator("main").inner_text()


def test_a_deep_linking_request_is_answered_once(app, client, platform, do_launch):
    url = open_picker(client, do_launch, platform)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page(client.get(url))).group(1)
    form = {"csrf_token": token, "choice": ["bargaining-foundations:workshop"], **WORKSHOP}
    assert client.post(url, data=form).status_code == 200
    again = client.post(url, data=form)  # the browser's Back button and a second submit
    assert again.status_code == 409 and "already answered" in page(again)
    assert len(workshops(app)) == 1
    assert client.get(url).status_code == 409


def test_no_line_item_when_the_platform_does_not_accept_one(app, client, platform, do_launch):
    platform.claim_overrides = {SETTINGS: settings(platform, accept_lineitem=False)}
    url = open_picker(client, do_launch, platform)
    response = submit(client, url, ["power-mapping:self_paced"])
    _, _, claims = read_response(client, response, platform.issuer)
    (item,) = claims[DL + "content_items"]
    assert "lineItem" not in item and item["custom"]["module"] == "power-mapping"
