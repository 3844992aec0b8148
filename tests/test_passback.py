"""Grade passback (AGS) against the emulator's real token, line item and score endpoints, with injected failures.

Nothing lost, nothing sent twice: retries with backoff, Retry-After, expired tokens, permanent refusals shown to
instructors and admins, the latest score winning, workers that die mid-batch and workers running at once.
"""
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from lti_tool import grades_worker
from lti_tool.catalog import current_catalog
from lti_tool.config import load_settings
from lti_tool.extensions import db
from lti_tool.lti import ags
from lti_tool.models import Account, Course, LineItem, OutboxScore, Platform
from lti_tool.models.base import utcnow
from lti_tool.services import ledger, passback
from tests.platform import LTI

AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
          "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
          "https://purl.imsglobal.org/spec/lti-ags/scope/score"]
MODULE = "esp-bargaining"


@pytest.fixture
def lms(make_platform):
    return make_platform()


def platform_id(app, lms) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Platform.id).where(Platform.issuer == lms.issuer))


def queue(app, lms, user="user-1", score=5, maximum=6, line_item=None, spec=None, course_id=None, **extra) -> int:
    with app.app_context():
        row = passback.queue_score(platform_id=platform_id(app, lms), course_id=course_id, user_id=user,
                                   score_given=score, score_maximum=maximum, line_item_url=line_item,
                                   line_item_spec=spec, **extra)
        db.session.commit()
        return row.id


def send(app, **kwargs) -> grades_worker.SendReport:
    with app.app_context():
        return grades_worker.send_due(**kwargs)


def row(app, score_id) -> OutboxScore:
    with app.app_context():
        found = db.session.get(OutboxScore, score_id)
        db.session.expunge(found)
        return found


def make_due(app):
    """Fast-forward: every pending score is due now (instead of sleeping through the backoff)."""
    with app.app_context():
        db.session.execute(sa.update(OutboxScore).where(OutboxScore.status == "pending")
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_score_is_posted_with_the_exact_ags_body_and_content_type(app, lms):
    url = lms.add_line_item(label="Foundations workshop", score_maximum=6)
    when = datetime(2026, 3, 14, 15, 9, 26, 535000, tzinfo=timezone(timedelta(hours=-5)))
    score_id = queue(app, lms, user="user-7", score=4.5, maximum=6, line_item=url, comment="Attended 4.5 hours",
                     timestamp=when)
    report = send(app)
    assert (report.claimed, report.sent) == (1, 1)
    # The emulator answers 415 to any other content type, so a recorded score proves the content type.
    assert lms.scores == [{"userId": "user-7", "scoreGiven": 4.5, "scoreMaximum": 6.0,
                           "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                           "timestamp": "2026-03-14T20:09:26.535Z", "comment": "Attended 4.5 hours",
                           "lineItem": url}]
    sent = row(app, score_id)
    assert sent.status == "sent" and sent.sent_at is not None and sent.leased_until is None
    assert send(app).claimed == 0  # nothing is sent twice


def test_scores_url_goes_before_the_query_string(app, lms):
    assert ags.scores_url("https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1") == \
        "https://moodle.example/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=1"
    url = lms.add_line_item()
    queue(app, lms, line_item=url + "?type_id=3")
    assert send(app).sent == 1
    assert lms.scores[0]["lineItem"] == url


def test_a_server_error_is_retried_with_backoff_then_sent(app, lms):
    url = lms.add_line_item()
    lms.score_failures = [500]
    score_id = queue(app, lms, line_item=url)
    before = utcnow()
    report = send(app)
    assert (report.retrying, report.sent) == (1, 0)
    waiting = row(app, score_id)
    assert waiting.status == "pending" and waiting.attempts == 1 and "500" in waiting.last_error
    assert before + timedelta(seconds=1.5) <= waiting.next_attempt_at <= utcnow() + timedelta(seconds=2.5)
    assert waiting.leased_until is None
    assert send(app).claimed == 0  # not due before its backoff
    make_due(app)
    assert send(app).sent == 1
    assert len(lms.scores) == 1 and row(app, score_id).status == "sent"


def test_backoff_doubles_from_two_seconds_and_is_capped_at_an_hour(app):
    with app.app_context():
        for attempt, nominal in ((1, 2), (2, 4), (3, 8), (6, 64)):
            assert 0.8 * nominal <= grades_worker.backoff_seconds(attempt) <= 1.2 * nominal
        assert 2880 <= grades_worker.backoff_seconds(30) <= 3600
        assert grades_worker.backoff_seconds(1000) <= 3600


def test_a_timeout_is_retried(app, lms):
    app.config["HTTP_TIMEOUT"] = 1  # the emulator's "timeout" answers after 3 s
    url = lms.add_line_item()
    lms.score_failures = ["timeout"]
    score_id = queue(app, lms, line_item=url)
    report = send(app)
    assert report.retrying == 1
    assert "timed out" in row(app, score_id).last_error
    make_due(app)
    assert send(app).sent == 1
    assert [s["userId"] for s in lms.scores] == ["user-1"]


def test_too_many_requests_waits_at_least_retry_after(app, lms):
    url = lms.add_line_item()
    lms.score_failures = [("retry-after", 120)]
    score_id = queue(app, lms, line_item=url)
    before = utcnow()
    assert send(app).retrying == 1
    waiting = row(app, score_id)
    assert waiting.next_attempt_at >= before + timedelta(seconds=120)
    assert "429" in waiting.last_error
    make_due(app)
    assert send(app).sent == 1 and len(lms.scores) == 1


def test_an_expired_token_is_replaced_once_and_the_score_sent(app, lms):
    url = lms.add_line_item()
    queue(app, lms, user="user-1", line_item=url)
    assert send(app).sent == 1 and lms.token_requests == 1
    lms.expire_tokens()
    queue(app, lms, user="user-2", line_item=url)
    report = send(app)
    assert (report.sent, report.retrying) == (1, 0)
    assert lms.token_requests == 2
    assert [s["userId"] for s in lms.scores] == ["user-1", "user-2"]


def test_the_access_token_is_cached_across_sends(app, lms):
    url = lms.add_line_item()
    for n in range(3):
        queue(app, lms, user=f"user-{n}", line_item=url)
    assert send(app).sent == 3
    for n in range(3, 5):
        queue(app, lms, user=f"user-{n}", line_item=url)
    assert send(app).sent == 2
    assert lms.token_requests == 1 and len(lms.tokens) == 1


@pytest.mark.parametrize("status, action", [(400, "new time"), (404, "deleted in the LMS"),
                                            (422, "Check their enrolment")])
def test_a_permanent_refusal_fails_with_its_status_and_what_to_do(app, lms, status, action):
    url = lms.add_line_item()
    lms.score_failures = [status]
    score_id = queue(app, lms, line_item=url)
    report = send(app)
    assert (report.failed, report.retrying, report.sent) == (1, 0, 0)
    failed = row(app, score_id)
    assert failed.status == "failed" and failed.attempts == 1 and failed.leased_until is None
    # Plain words with the status and an action; what the LMS wrote goes to the log, not to a page.
    assert f"HTTP {status}" in failed.last_error and action in failed.last_error
    assert "injected" not in failed.last_error
    make_due(app)
    assert send(app).claimed == 0 and lms.scores == []


def test_transient_failures_give_up_after_the_most_attempts(app, lms):
    app.config["GRADES_MAX_ATTEMPTS"] = 2
    url = lms.add_line_item()
    lms.score_failures = [503, 503]
    score_id = queue(app, lms, line_item=url)
    assert send(app).retrying == 1
    make_due(app)
    assert send(app).failed == 1
    failed = row(app, score_id)
    assert failed.status == "failed" and "after 2 attempts (last: HTTP 503)" in failed.last_error


def test_failed_scores_show_to_the_instructor_with_a_retry_button(app, lms, do_launch, member_launch):
    member_launch(lms)  # Maria Member has an account in the course
    instructor = app.test_client()
    home = do_launch(lms, "instructor", browser=instructor).location
    with app.app_context():
        course_id = db.session.scalar(sa.select(Course.id))
    spec = {"lineitems": lms.lineitems_url, "label": "Contract costing workshop", "scoreMaximum": 3,
            "resourceId": "contract-costing", "tag": "workshop"}
    lms.score_failures = [422]
    score_id = queue(app, lms, user=lms.users["member"].sub, score=3, maximum=3, spec=spec, course_id=course_id)
    assert send(app).failed == 1

    page = instructor.get(home + "grades/failed")
    html = text(page)
    assert page.status_code == 200
    assert "Maria Member" in html and "Contract costing workshop" in html
    # The status and what to do, in words; never the LMS's own body.
    assert "HTTP 422" in html and "Check their enrolment in the LMS" in html and "injected" not in html
    assert re.search(r'<td class="num">1</td>', html)  # attempts
    assert "Gradebook sync" in text(instructor.get(home + "catalog"))  # the nav link
    assert instructor.post(home + "grades/retry", data={"score_id": score_id}).status_code == 400  # no CSRF
    garbled = instructor.post(home + "grades/retry", data={"csrf_token": csrf(html), "score_id": "x"})
    assert garbled.status_code == 400 and "could not be read" in text(garbled)

    retried = instructor.post(home + "grades/retry", data={"csrf_token": csrf(html), "score_id": score_id})
    assert retried.status_code == 303
    assert "will be sent to the gradebook again" in text(instructor.get(retried.location))
    assert row(app, score_id).status == "pending"
    assert send(app).sent == 1
    assert [s["userId"] for s in lms.scores] == [lms.users["member"].sub]
    assert "None: every score was accepted" in text(instructor.get(home + "grades/failed"))


def test_failed_scores_are_the_courses_own_and_admins_see_all(app, lms, make_platform, do_launch, member_launch,
                                                              client):
    member_home = member_launch(lms)
    assert client.get(member_home + "grades/failed").status_code == 403  # members do not see it
    token = csrf(text(client.get(member_home + "registration")))  # a valid token: the role check is what refuses
    refused = client.post(member_home + "grades/retry", data={"csrf_token": token, "all": "1"})
    assert refused.status_code == 403
    assert "This page is for instructors" in text(refused)
    other = make_platform(client_id="other-client", context_id="course-202")
    teacher = app.test_client()
    other_home = do_launch(other, "instructor", browser=teacher).location
    admin = app.test_client()
    admin_home = do_launch(lms, "admin", browser=admin).location
    with app.app_context():
        course_id = db.session.scalar(sa.select(Course.id).where(Course.context_id == "course-101"))
    lms.score_failures = [400]
    score_id = queue(app, lms, user=lms.users["member"].sub, line_item=lms.add_line_item(), course_id=course_id)
    send(app)

    assert "Maria Member" not in text(teacher.get(other_home + "grades/failed"))
    page = text(teacher.get(other_home + "registration"))  # any form gives this browser's CSRF token
    assert teacher.post(other_home + "grades/retry", data={"csrf_token": csrf(page), "score_id": score_id}
                        ).status_code == 303
    assert row(app, score_id).status == "failed"  # another course's instructor cannot requeue it

    # An LMS admin without program access sees their course's; with it, every course's.
    assert "Maria Member" in text(admin.get(admin_home + "grades/failed"))
    app.test_cli_runner().invoke(args=["admins", "grant", "--platform", lms.issuer, "--sub", "user-admin-1"])
    everything = text(admin.get(admin_home + "grades/failed"))
    assert "Maria Member" in everything and "Course course-101" in everything
    token = csrf(everything)
    assert admin.post(admin_home + "grades/retry", data={"csrf_token": token, "all": "true"}).status_code == 303
    assert row(app, score_id).status == "pending"


def test_the_latest_score_wins_when_queued_twice_before_sending(app, lms):
    url = lms.add_line_item()
    first = queue(app, lms, score=2, line_item=url)
    second = queue(app, lms, score=5, line_item=url)
    assert first == second and row(app, first).version == 2
    assert send(app).sent == 1
    assert [s["scoreGiven"] for s in lms.scores] == [5.0]


def test_a_newer_score_queued_during_a_send_is_sent_next(app, lms):
    url = lms.add_line_item()
    score_id = queue(app, lms, score=2, line_item=url)
    real_score = lms._score

    def grade_changes_while_in_flight(request, line_item_url):
        # The instructor saves a new grade while the worker's POST of the old one is on the wire.
        lms._score = real_score
        queue(app, lms, score=5, line_item=url)
        return real_score(request, line_item_url)

    lms._score = grade_changes_while_in_flight
    report = send(app)
    assert (report.sent, report.superseded) == (0, 1)
    waiting = row(app, score_id)
    assert waiting.status == "pending" and waiting.version == 2 and waiting.leased_until is None
    assert send(app).sent == 1
    assert [s["scoreGiven"] for s in lms.scores] == [2.0, 5.0]  # the LMS ends with the latest
    assert row(app, score_id).status == "sent"


def test_a_worker_killed_mid_batch_leaves_its_scores_to_another_after_the_lease(app, lms):
    url = lms.add_line_item()
    ids = [queue(app, lms, user=f"user-{n}", line_item=url) for n in range(5)]
    with app.app_context():
        dead = grades_worker._claim(200, lease_seconds=60)  # leased and committed, then the process died
        db.session.commit()
    assert len(dead) == 5
    assert send(app).claimed == 0  # still leased: nobody else takes them
    with app.app_context():  # the lease runs out
        db.session.execute(sa.update(OutboxScore).values(leased_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert send(app).sent == 5
    assert sorted(s["userId"] for s in lms.scores) == [f"user-{n}" for n in range(5)]
    assert all(row(app, i).status == "sent" for i in ids)


def test_a_send_that_cannot_finish_within_its_lease_gives_the_row_back(app, lms):
    url = lms.add_line_item()
    score_id = queue(app, lms, line_item=url)
    with app.app_context():
        job = grades_worker._claim(1, lease_seconds=60)[0]
        db.session.commit()
        short = grades_worker._Job(**{**job.__dict__, "lease": utcnow() + timedelta(seconds=5)})
        db.session.execute(sa.update(OutboxScore).values(leased_until=short.lease))
        report = grades_worker.SendReport()
        grades_worker._send(short, report, {})
        db.session.commit()
    assert report.deferred == 1 and lms.scores == []
    assert row(app, score_id).leased_until is None
    assert send(app).sent == 1


def test_two_workers_at_once_send_every_score_exactly_once(app, lms):
    url = lms.add_line_item()
    lms.score_delay = 0.01
    for n in range(60):
        queue(app, lms, user=f"user-{n}", score=n % 7, line_item=url)
    reports = []

    def worker():
        with app.app_context():
            reports.append(grades_worker.send_all_due(limit=10, concurrency=4))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    users = [s["userId"] for s in lms.scores]
    assert len(users) == 60 and len(set(users)) == 60
    assert sum(r.sent for r in reports) == 60
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(OutboxScore.status == "sent")) == 60


def test_a_line_item_is_found_by_its_resource_link_when_only_lineitems_is_known(app, lms):
    lms.add_line_item(label="Another link's column", resource_link_id="other-link", tag="self-paced-module")
    existing = lms.add_line_item(label="ESP issues", score_maximum=3, resource_link_id="link-9",
                                 resource_id=MODULE, tag="self-paced-module")
    spec = {"lineitems": lms.lineitems_url + "?type_id=4", "resourceLinkId": "link-9", "label": "ESP issues",
            "scoreMaximum": 3, "resourceId": MODULE, "tag": "self-paced-module"}
    score_id = queue(app, lms, score=3, maximum=3, spec=spec)
    assert row(app, score_id).line_item_url == passback.line_item_key(spec["lineitems"], "link-9",
                                                                       "self-paced-module")
    assert send(app).sent == 1
    assert len(lms.line_items) == 2 and lms.scores[0]["lineItem"] == existing


def test_a_line_item_is_created_once_for_a_resource_link_and_cached(app, lms):
    spec = {"lineitems": lms.lineitems_url, "resourceLinkId": "link-3", "label": "Power mapping",
            "scoreMaximum": 3, "resourceId": "power-mapping", "tag": "self-paced-module"}
    for n in range(4):
        queue(app, lms, user=f"user-{n}", score=3, maximum=3, spec=spec)
    assert send(app).sent == 4
    assert len(lms.line_items) == 1
    created = next(iter(lms.line_items.values()))
    assert created == {"id": created["id"], "label": "Power mapping", "scoreMaximum": 3.0,
                       "resourceLinkId": "link-3", "resourceId": "power-mapping", "tag": "self-paced-module"}
    assert {s["lineItem"] for s in lms.scores} == {created["id"]}
    with app.app_context():
        cached = db.session.scalars(sa.select(LineItem)).all()
        assert [(c.url, c.resource_link_id, c.tag) for c in cached] == [(created["id"], "link-3",
                                                                         "self-paced-module")]
    # A later score uses the cached line item: even with the container gone, it is sent.
    lms.line_items[created["id"]]["resourceLinkId"] = "moved"  # a lookup now would not find it
    queue(app, lms, user="user-9", score=3, maximum=3, spec=spec)
    assert send(app).sent == 1 and len(lms.line_items) == 1


def test_two_workers_create_one_line_item_between_them(app, lms):
    lms.score_delay = 0.01
    spec = {"lineitems": lms.lineitems_url, "resourceLinkId": "link-5", "label": "Impact bargaining",
            "scoreMaximum": 3, "resourceId": "impact-bargaining", "tag": "workshop"}
    for n in range(20):
        queue(app, lms, user=f"user-{n}", score=3, maximum=3, spec=spec)

    def worker():
        with app.app_context():
            for _ in range(50):
                grades_worker.send_all_due(limit=5, concurrency=2)
                if db.session.scalar(sa.select(sa.func.count()).where(OutboxScore.status != "sent")) == 0:
                    return
                make_due(app)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(lms.line_items) == 1
    users = [s["userId"] for s in lms.scores]
    assert len(users) == 20 and len(set(users)) == 20


def choose_progress_column(app, context_id="course-101"):
    """The instructor ticked "Bargaining Certificate progress" in the picker (see test_gradebook_columns.py)."""
    with app.app_context():
        course_id = db.session.scalar(sa.select(Course.id).where(Course.context_id == context_id))
        passback.add_progress_column(course_id, None)
        db.session.commit()


def complete_module(client, home, module):
    """Visit every section, answer every activity and pass the knowledge check, through the member's pages."""
    check_url = home + f"modules/{module.slug}/check"
    token = csrf(text(client.get(check_url)))
    for section in module.sections:
        client.get(home + f"modules/{module.slug}/sections/{section.slug}")
    for activity in module.activities:
        client.post(home + f"modules/{module.slug}/activities/{activity.slug}",
                    data={"csrf_token": token, **{f.name: "done" for f in activity.fields}})
    right = [(q.id, str(i)) for q in module.knowledge_check.questions for i, c in enumerate(q.choices) if c.correct]
    result = client.post(check_url, data=MultiDict([("csrf_token", token)] + right))
    assert result.status_code == 200
    assert "You completed" in text(client.get(home + f"modules/{module.slug}"))


def test_a_module_completion_posts_its_score_and_the_progress_column(app, client, lms, member_launch):
    column = lms.add_line_item(label="ESP issues", score_maximum=3, resource_link_id=lms.resource_link_id)
    lms.claim_overrides = {LTI + "custom": {"module": MODULE},
                           AGS: {"scope": SCOPES, "lineitem": column, "lineitems": lms.lineitems_url}}
    home = member_launch(lms)
    choose_progress_column(app)
    with app.app_context():
        module = current_catalog().module(MODULE)
    complete_module(client, home, module)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxScore)) == 2
    assert send(app).sent == 2
    by_item = {s["lineItem"]: s for s in lms.scores}
    own = by_item[column]
    assert (own["userId"], own["scoreGiven"], own["scoreMaximum"], own["activityProgress"],
            own["gradingProgress"]) == (lms.users["member"].sub, 3.0, 3.0, "Completed", "FullyGraded")
    progress_item = next(i for i in lms.line_items.values() if i["tag"] == "bargaining-certificate-progress")
    assert (progress_item["label"], progress_item["scoreMaximum"], progress_item["resourceId"]) == (
        "Bargaining Certificate progress", 24.0, "bargaining-certificate-progress")
    progress = by_item[progress_item["id"]]
    assert (progress["scoreGiven"], progress["scoreMaximum"], progress["activityProgress"]) == (3.0, 24.0,
                                                                                                 "InProgress")
    assert progress["comment"].startswith("3 of 24 hours.")
    # Visiting the module again queues nothing new.
    client.get(home + f"modules/{MODULE}/sections/{module.sections[0].slug}")
    assert send(app).claimed == 0


def test_a_module_completion_without_a_lineitem_claim_gets_a_column_for_its_link(app, client, lms,
                                                                                 member_launch):
    lms.claim_overrides = {LTI + "custom": {"module": MODULE}}  # the emulator sends only `lineitems`
    home = member_launch(lms)
    with app.app_context():
        module = current_catalog().module(MODULE)
    complete_module(client, home, module)
    assert send(app).sent == 1  # its own column only: no progress column unless the instructor chose one
    own = next(i for i in lms.line_items.values() if i["tag"] == passback.SELF_PACED_TAG)
    assert (own["resourceLinkId"], own["resourceId"], own["label"], own["scoreMaximum"]) == (
        lms.resource_link_id, MODULE, module.title, 3.0)
    assert any(s["lineItem"] == own["id"] and s["scoreGiven"] == 3.0 for s in lms.scores)


def test_a_link_placed_for_another_module_gets_no_completion_score(app, client, lms, member_launch):
    column = lms.add_line_item(label="Power mapping", score_maximum=3)
    lms.claim_overrides = {LTI + "custom": {"module": "power-mapping"},
                           AGS: {"scope": SCOPES, "lineitem": column, "lineitems": lms.lineitems_url}}
    home = member_launch(lms)
    with app.app_context():
        module = current_catalog().module(MODULE)
    choose_progress_column(app)
    complete_module(client, home, module)
    send(app)
    assert not any(s["lineItem"] == column for s in lms.scores)
    assert [i["tag"] for i in lms.line_items.values()].count("bargaining-certificate-progress") == 1


def test_the_progress_column_shows_hours_toward_24(app, lms, member_launch):
    member_launch(lms)
    choose_progress_column(app)
    with app.app_context():
        account = db.session.scalars(sa.select(Account)).one()
        course_id = db.session.scalar(sa.select(Course.id))
        for slug, hours in (("bargaining-foundations", 6), ("power-mapping", 1.5)):
            ledger.record_hours(account_id=account.id, module_slug=slug, hours=hours, source="workshop_grade",
                                source_ref=f"test:{slug}")
        queued = passback.queue_certificate_progress(account.person_id, course_id)
        db.session.commit()
    assert len(queued) == 1
    assert send(app).sent == 1
    item = next(iter(lms.line_items.values()))
    assert (item["label"], item["scoreMaximum"], item["tag"]) == ("Bargaining Certificate progress", 24.0,
                                                                  "bargaining-certificate-progress")
    assert (lms.scores[0]["scoreGiven"], lms.scores[0]["scoreMaximum"]) == (7.5, 24.0)
    with app.app_context():
        ledger.record_hours(account_id=account.id, module_slug="democratized-bargaining", hours=6,
                            source="workshop_grade", source_ref="test:democratized")
        passback.queue_certificate_progress(account.person_id, course_id)
        db.session.commit()
    assert send(app).sent == 1
    assert [s["scoreGiven"] for s in lms.scores] == [7.5, 13.5]
    assert len(lms.line_items) == 1 and {s["lineItem"] for s in lms.scores} == {item["id"]}


def test_grades_commands_sync_show_status_and_retry(app, lms):
    runner = app.test_cli_runner()
    url = lms.add_line_item()
    lms.score_failures = [422]
    queue(app, lms, user="user-1", line_item=url)
    queue(app, lms, user="user-2", line_item=url)
    result = runner.invoke(args=["grades", "sync"])
    assert result.exit_code == 0, result.output
    with app.app_context():  # whichever POST reached the LMS first met the failure
        bad = db.session.scalar(sa.select(OutboxScore.id).where(OutboxScore.status == "failed"))
    assert "1 sent" in result.output and "1 failed" in result.output and "injected 422" in result.output
    status = runner.invoke(args=["grades", "status"])
    assert "failed: 1" in status.output and "sent: 1" in status.output and "pending: 0" in status.output
    assert runner.invoke(args=["grades", "retry"]).exit_code != 0
    retried = runner.invoke(args=["grades", "retry", "--id", str(bad)])
    assert "1 score(s) queued again" in retried.output
    assert "1 sent" in runner.invoke(args=["grades", "sync"]).output
    assert sorted(s["userId"] for s in lms.scores) == ["user-1", "user-2"]
    lms.score_failures = [400]
    queue(app, lms, user="user-3", line_item=url)
    runner.invoke(args=["grades", "sync"])
    assert "1 score(s) queued again" in runner.invoke(args=["grades", "retry", "--all-failed"]).output


def test_background_sync_is_on_in_development_only_and_never_under_testing(app, lms, monkeypatch, tmp_path):
    monkeypatch.delenv("GRADES_BACKGROUND_SYNC", raising=False)
    monkeypatch.setenv("LTI_TOOL_ENV", "development")
    assert load_settings(str(tmp_path))["GRADES_BACKGROUND_SYNC"] is True
    monkeypatch.setenv("LTI_TOOL_ENV", "production")
    assert load_settings(str(tmp_path))["GRADES_BACKGROUND_SYNC"] is False
    monkeypatch.setenv("GRADES_BACKGROUND_SYNC", "1")
    assert load_settings(str(tmp_path))["GRADES_BACKGROUND_SYNC"] is True
    app.config["GRADES_BACKGROUND_SYNC"] = True
    assert grades_worker.start_background_sync(app) is None  # TESTING

    url = lms.add_line_item()
    queue(app, lms, line_item=url)
    app.config.update(TESTING=False, GRADES_SYNC_INTERVAL=0.05)
    try:
        thread = grades_worker.start_background_sync(app)
        assert thread is not None and grades_worker.start_background_sync(app) is thread  # one per process
        for _ in range(200):
            if lms.scores:
                break
            threading.Event().wait(0.05)
    finally:
        grades_worker.stop_background_sync(app)
        app.config["TESTING"] = True
    assert len(lms.scores) == 1 and not thread.is_alive()
