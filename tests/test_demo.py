"""The built-in demo LMS: a newcomer can click through real launches."""
import html
import json
import re
import time
import uuid

import jwt
import pytest
import sqlalchemy as sa

from lti_tool import create_app
from tests.conftest import register

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"


def _follow_demo_launch(client, choice):
    response = client.post("/demo/start", data={"as": choice})
    assert response.status_code == 303
    response = client.get(response.location.replace("http://localhost:5000", ""))  # the tool's login
    assert response.status_code == 302
    response = client.get(response.location.replace("http://localhost:5000", ""))  # the demo's authorization
    html = response.get_data(as_text=True)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', html))
    return client.post("/lti/launch", data=fields)


@pytest.mark.parametrize("choice, expected", [("member", "Dana Rivera"), ("instructor", "Sam Okafor"),
                                              ("member-2", "Luis Ortega"), ("member-4", "Aisha Bello")])
def test_demo_launches_go_through_the_real_endpoints(app, client, choice, expected):
    app.config["WTF_CSRF_ENABLED"] = False
    response = _follow_demo_launch(client, choice)
    assert response.status_code == 303
    if choice.startswith("member"):  # members register once, at their first launch
        landing = client.get(response.location)
        assert landing.status_code == 302 and "/registration" in landing.location
        register(client, response.location)
    page = client.get(response.location, follow_redirects=True)  # the instructor's: the course home
    assert expected in page.get_data(as_text=True)


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
    monkeypatch.setenv("GRADES_BACKGROUND_SYNC", "0")  # no sender thread outliving this test's database
    app = create_app()
    assert app.config["REGISTRATION_WITHOUT_INVITATION"] and app.config["DEMO_PLATFORM"]
    client = app.test_client()
    # Registration is open in development: without its parameters it says what it needs.
    response = client.get("/lti/register")
    assert response.status_code == 400 and "openid_configuration" in response.get_data(as_text=True)


# -- the demo course: placing links, launching them, its gradebook and roster ------------------------------------

WORKSHOP_CHOICE = {"choice": ["bargaining-foundations:workshop", "power-mapping:self_paced"],
                   "date-bargaining-foundations": "2027-03-06", "venue-bargaining-foundations": "Union hall, Worcester",
                   "event-bargaining-foundations": "Spring Regional Training"}


def _path(url: str, base: str) -> str:
    return url.replace(base, "") if url.startswith(base) else url


def _token(client, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def _launch(app, client, person: str, link: str | None = None):
    """Click a launch button of the demo course and follow the real OIDC flow; return the launch's answer."""
    base = app.config["PUBLIC_BASE_URL"]
    data = {"csrf_token": _token(client, "/demo/"), "as": person}
    if link:
        data["link"] = link
    response = client.post("/demo/start", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    response = client.get(_path(response.location, base))  # the tool's login
    assert response.status_code == 302
    response = client.get(_path(response.location, base))  # the demo LMS's authorization endpoint
    assert response.status_code == 200, response.get_data(as_text=True)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', response.get_data(as_text=True)))
    return client.post("/lti/launch", data=fields)


def _place(app, client, choices=None) -> str:
    """Deep link as the instructor, choose in the tool's picker, and post the response to the demo LMS."""
    picker = _launch(app, client, "deep-link").location
    response = client.post(picker, data={"csrf_token": _token(client, picker), **(choices or WORKSHOP_CHOICE)})
    assert response.status_code == 200, response.get_data(as_text=True)
    jwt_value = re.search(r'name="JWT" value="([^"]+)"', response.get_data(as_text=True)).group(1)
    received = client.post("/demo/deep-link-return", data={"JWT": jwt_value})
    assert received.status_code == 200, received.get_data(as_text=True)
    return jwt_value


def _links(app):
    from lti_tool.extensions import db
    from lti_tool.models import DemoLink

    with app.app_context():
        return [(link.resource_link_id, link.title, dict(link.custom or {}),
                 (link.line_item.label, float(link.line_item.score_maximum), link.line_item.tag)
                 if link.line_item else None)
                for link in db.session.scalars(sa.select(DemoLink).order_by(DemoLink.id))]


def test_deep_linking_places_links_the_demo_course_lists_with_their_gradebook_columns(app, client):
    _place(app, client)
    links = _links(app)
    assert [(title.split(" — ")[0], custom["module"], custom["mode"]) for _, title, custom, _ in links] == [
        ("Bargaining Foundations", "bargaining-foundations", "workshop"),
        ("Power Mapping", "power-mapping", "self_paced")]
    workshop_column = links[0][3]
    assert workshop_column == (links[0][1], 6.0, "bargaining-certificate")
    course = client.get("/demo/").get_data(as_text=True)
    assert "Placed in this course" in course and "Nothing is placed yet" not in course
    for resource_link_id, title, _, _ in links:
        assert html.escape(title) in course or title in course
        assert f'name="link" value="{resource_link_id}"' in course
    # each link is launched as the instructor or any of the four members
    for name in ("Sam Okafor (instructor)", "Dana Rivera (member)", "Luis Ortega (member)", "Mei Chen (member)",
                 "Aisha Bello (member)"):
        assert name in course


def test_the_same_deep_linking_response_posted_again_places_nothing_twice(app, client):
    jwt_value = _place(app, client)
    again = client.post("/demo/deep-link-return", data={"JWT": jwt_value})
    assert again.status_code == 200 and "nothing was added twice" in again.get_data(as_text=True)
    assert len(_links(app)) == 2


def test_a_deep_linking_response_not_signed_by_the_tool_places_nothing(app, client):
    from lti_tool.lti import keys

    jwt_value = _place(app, client)
    claims = jwt.decode(jwt_value, options={"verify_signature": False})
    claims["nonce"] = "another-response"
    other_pem, _ = keys.generate_key_pair()
    kid = jwt.get_unverified_header(jwt_value)["kid"]
    forged = jwt.encode(claims, other_pem, algorithm="RS256", headers={"kid": kid})
    response = client.post("/demo/deep-link-return", data={"JWT": forged})
    assert response.status_code == 400 and "did not verify" in response.get_data(as_text=True)
    assert len(_links(app)) == 2


def test_a_placed_link_launches_with_its_resource_link_custom_parameters_and_column(app, client):
    from lti_tool.extensions import db
    from lti_tool.models import Launch

    _place(app, client)
    (workshop_link, title, custom, _), (module_link, _, _, _) = _links(app)
    response = _launch(app, client, "instructor", link=workshop_link)
    assert response.status_code == 303
    landing = client.get(response.location)
    # the instructor's launch of a placed workshop opens its grading page
    assert landing.status_code == 302 and f"/workshops/{custom['workshop']}" in landing.location
    with app.app_context():
        launch = db.session.scalars(sa.select(Launch).order_by(Launch.created_at.desc())).first()
        claims = launch.claims
    assert claims[LTI + "resource_link"] == {"id": workshop_link, "title": title}
    assert claims[LTI + "custom"] == custom
    assert claims[LTI + "target_link_uri"] == "http://localhost:5000/lti/launch"
    ags = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
    assert ags["lineitems"] == "http://localhost:5000/demo/lineitems"
    assert re.fullmatch(r"http://localhost:5000/demo/lineitems/\d+", ags["lineitem"])
    assert claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"][
        "context_memberships_url"] == "http://localhost:5000/demo/memberships"

    # a member launching the self-paced link lands on its module (after registering once)
    response = _launch(app, client, "member-3", link=module_link)
    home = response.location
    register(client, home, name="Mei Chen", email="mei.chen@example.org")
    landing = client.get(home)
    assert landing.status_code == 302 and landing.location.endswith("/modules/power-mapping")


@pytest.mark.parametrize("data, message", [
    ({"as": "nobody"}, "Choose one of the demo course"),
    ({"as": "member", "link": "demo-link-unknown"}, "not in the demo course"),
])
def test_the_demo_refuses_launches_it_cannot_make(client, data, message):
    response = client.post("/demo/start", data={"csrf_token": _token(client, "/demo/"), **data})
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_only_the_instructor_deep_links(app, client):
    """The authorization endpoint itself refuses a deep-linking launch for a member (a crafted login)."""
    base = app.config["PUBLIC_BASE_URL"]
    response = client.get("/demo/authorize", query_string={
        "client_id": "demo-client", "redirect_uri": base + "/lti/launch", "response_type": "id_token",
        "scope": "openid", "nonce": "n", "state": "s", "login_hint": "member", "lti_message_hint": "deep-link"})
    assert response.status_code == 400
    assert "Only the course's instructor" in html.unescape(response.get_data(as_text=True))


# -- the services the demo LMS offers the tool, called as the tool calls them -----------------------------------

def _assertion(app, **changes) -> str:
    from lti_tool.lti import keys

    with app.app_context():
        key = keys.signing_key()
    now = int(time.time())
    claims = {"iss": "demo-client", "sub": "demo-client", "aud": "http://localhost:5000/demo/token",
              "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex, **changes}
    return jwt.encode(claims, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})


def _access_token(app, client, scope: str, **changes) -> str:
    response = client.post("/demo/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(app, **changes), "scope": scope})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


ALL_SCOPES = " ".join([SCOPE + "lineitem", SCOPE + "lineitem.readonly", SCOPE + "result.readonly", SCOPE + "score",
                       "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"])


def test_the_token_endpoint_grants_the_offered_scopes_to_an_assertion_the_tool_signed(app, client):
    response = client.post("/demo/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(app), "scope": SCOPE + "score https://example.org/other-scope"})
    body = response.get_json()
    assert response.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == SCOPE + "score"


@pytest.mark.parametrize("changes, form, status, error", [
    ({"aud": "http://localhost:5000/lti/launch"}, {}, 401, "invalid_client"),
    ({"iss": "someone-else", "sub": "someone-else"}, {}, 401, "invalid_client"),
    ({"exp": int(time.time()) - 120}, {}, 401, "invalid_client"),
    ({"exp": int(time.time()) + 86400}, {}, 401, "invalid_client"),
    ({}, {"grant_type": "password"}, 400, "unsupported_grant_type"),
    ({}, {"scope": "https://example.org/other-scope"}, 400, "invalid_scope"),
])
def test_the_token_endpoint_refuses_bad_client_credentials(app, client, changes, form, status, error):
    response = client.post("/demo/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": _assertion(app, **changes), "scope": SCOPE + "score", **form})
    assert response.status_code == status and response.get_json()["error"] == error


def test_an_assertion_signed_with_a_key_the_tool_does_not_publish_gets_no_token(app, client):
    from lti_tool.lti import keys

    with app.app_context():
        kid = keys.signing_key().kid
    pem, _ = keys.generate_key_pair()
    now = int(time.time())
    forged = jwt.encode({"iss": "demo-client", "sub": "demo-client", "aud": "http://localhost:5000/demo/token",
                         "iat": now, "exp": now + 60, "jti": "x"}, pem, algorithm="RS256", headers={"kid": kid})
    response = client.post("/demo/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": forged, "scope": SCOPE + "score"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def _score(user="demo-member", given=4.5, when="2027-03-06T16:00:00.000Z", **extra):
    return {"userId": user, "scoreGiven": given, "scoreMaximum": 6, "activityProgress": "Completed",
            "gradingProgress": "FullyGraded", "timestamp": when, **extra}


def test_line_items_and_scores_reach_the_demo_gradebook(app, client):
    token = _access_token(app, client, ALL_SCOPES)
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post("/demo/lineitems", json={"label": "Bargaining Certificate progress", "scoreMaximum": 24,
                                                    "tag": "bargaining-certificate-progress"}, headers=auth)
    assert created.status_code == 201 and created.mimetype == "application/vnd.ims.lis.v2.lineitem+json"
    item = created.get_json()
    assert item["label"] == "Bargaining Certificate progress" and item["scoreMaximum"] == 24
    listed = client.get("/demo/lineitems", query_string={"tag": "bargaining-certificate-progress"}, headers=auth)
    assert [i["id"] for i in listed.get_json()] == [item["id"]]
    assert client.get("/demo/lineitems", query_string={"tag": "other"}, headers=auth).get_json() == []
    scores = _path(item["id"], "http://localhost:5000") + "/scores"
    post = lambda body: client.post(scores, data=json.dumps(body), headers=auth,  # noqa: E731
                                    content_type="application/vnd.ims.lis.v1.score+json")
    assert post(_score(comment="Strong work on the costing exercise.")).status_code == 204
    assert post(_score("demo-member-2", 6)).status_code == 204
    # an older score does not replace the result on record; a newer one does
    assert post(_score(given=1, when="2027-03-06T15:00:00Z")).status_code == 204
    assert post(_score("demo-member-2", 5.5, when="2027-03-07T09:00:00Z")).status_code == 204
    results = client.get(_path(item["id"], "http://localhost:5000") + "/results", headers=auth).get_json()
    assert {(r["userId"], r["resultScore"]) for r in results} == {("demo-member", 4.5), ("demo-member-2", 5.5)}

    page = client.get("/demo/gradebook").get_data(as_text=True)
    assert "Bargaining Certificate progress" in page
    rows = {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for name, row in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', page, re.S)}
    assert rows["Dana Rivera"].startswith("4.5 of 6") and "Strong work on the costing exercise." in rows["Dana Rivera"]
    assert rows["Luis Ortega"] == "5.5 of 6"
    assert rows["Mei Chen"] == "–" and rows["Aisha Bello"] == "–"


@pytest.mark.parametrize("body, content_type, status", [
    (_score(), "application/json", 415),
    (_score("demo-instructor"), "application/vnd.ims.lis.v1.score+json", 422),
    (_score("someone-else"), "application/vnd.ims.lis.v1.score+json", 422),
    (_score(when="yesterday"), "application/vnd.ims.lis.v1.score+json", 400),
    (_score(given=-1), "application/vnd.ims.lis.v1.score+json", 400),
    (_score(activityProgress="Done"), "application/vnd.ims.lis.v1.score+json", 400),
])
def test_the_demo_gradebook_refuses_scores_an_lms_refuses(app, client, body, content_type, status):
    auth = {"Authorization": f"Bearer {_access_token(app, client, ALL_SCOPES)}"}
    item = client.post("/demo/lineitems", json={"label": "Workshop", "scoreMaximum": 6}, headers=auth).get_json()
    response = client.post(_path(item["id"], "http://localhost:5000") + "/scores", data=json.dumps(body),
                           headers=auth, content_type=content_type)
    assert response.status_code == status
    assert "–" in client.get("/demo/gradebook").get_data(as_text=True)


def test_service_calls_need_a_token_with_the_right_scope(app, client):
    assert client.get("/demo/lineitems").status_code == 401
    assert client.get("/demo/memberships", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    score_only = {"Authorization": f"Bearer {_access_token(app, client, SCOPE + 'score')}"}
    assert client.post("/demo/lineitems", json={"label": "x", "scoreMaximum": 1}, headers=score_only).status_code == 403
    assert client.get("/demo/memberships", headers=score_only).status_code == 403
    # a token the demo LMS did not sign (here: signed by the tool) is refused
    assert client.get("/demo/lineitems", headers={"Authorization": f"Bearer {_assertion(app)}"}).status_code == 401


def test_the_roster_it_serves_is_the_instructor_and_four_members(app, client):
    auth = {"Authorization": f"Bearer {_access_token(app, client, ALL_SCOPES)}"}
    response = client.get("/demo/memberships", headers=auth)
    assert response.mimetype == "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    members = {m["name"]: m["roles"] for m in response.get_json()["members"]}
    assert members == {"Sam Okafor": [MEMBERSHIP + "Instructor"], "Dana Rivera": [MEMBERSHIP + "Learner"],
                       "Luis Ortega": [MEMBERSHIP + "Learner"], "Mei Chen": [MEMBERSHIP + "Learner"],
                       "Aisha Bello": [MEMBERSHIP + "Learner"]}
    people = client.get("/demo/people").get_data(as_text=True)
    for name in members:
        assert name in people
    assert "demo-member-4" in people


def test_the_whole_loop_over_real_http_place_grade_send_and_see_the_scores(app, client, live_server):
    """The tool calls the demo LMS over HTTP (token, NRPS, AGS) exactly as it calls Canvas or Moodle."""
    _place(app, client, {"choice": ["bargaining-foundations:workshop"], "progress_column": "1", **{
        k: v for k, v in WORKSHOP_CHOICE.items() if k != "choice"}})
    ((workshop_link, _, custom, _),) = _links(app)
    response = _launch(app, client, "instructor", link=workshop_link)
    grading = client.get(response.location).location
    page = client.get(grading).get_data(as_text=True)
    assert "from the LMS roster" in page  # read from the demo LMS's NRPS endpoint
    ids = dict((name, int(i)) for i, name in re.findall(r'<tr id="member-(\d+)">\s*<th scope="row">([^<]+)<', page))
    assert set(ids) == {"Dana Rivera", "Luis Ortega", "Mei Chen", "Aisha Bello"}
    form = {"csrf_token": _token(client, grading), "action": "save"}
    for name, hours in (("Luis Ortega", "6"), ("Aisha Bello", "4.5")):
        form.update({f"present-{ids[name]}": "1", f"hours-{ids[name]}": hours, f"result-{ids[name]}": "complete"})
    assert client.post(grading, data=form).status_code == 303

    sent = client.post("/demo/gradebook/send", data={"csrf_token": _token(client, "/demo/gradebook")})
    assert sent.status_code == 303
    page = client.get("/demo/gradebook").get_data(as_text=True)
    summary = re.search(r"Gradebook sync: ([^<]+)", page).group(1)
    assert summary.startswith("4 sent, 0 to retry, 0 failed"), summary  # two grades, two progress scores
    rows = {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for name, row in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', page, re.S)}
    # the workshop's own column, and the course's certificate progress column the tool made
    assert rows["Luis Ortega"].startswith("6 of 6") and "6 of 24" in rows["Luis Ortega"]
    assert rows["Aisha Bello"].startswith("4.5 of 6") and "4.5 of 24" in rows["Aisha Bello"]
    assert rows["Dana Rivera"] == "– –" and rows["Mei Chen"] == "– –"
