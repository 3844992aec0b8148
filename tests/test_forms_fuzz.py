"""Property-based fuzzing (hypothesis) of the instructor's grading form and the sign-in sheet (CSV) import:
arbitrary field names and values, sizes, control characters and malformed CSV. No input gives a 500, and a
refused request writes nothing (no ledger entry, attendance or grade record, or queued score)."""
import csv
import io
import re

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lti_tool.extensions import db
from lti_tool.models import Account, LedgerEntry, OutboxScore, WorkshopRecord
from tests.test_workshops import (
    _form_fields,
    csrf,
    enrol_maria,
    make_workshop,
    open_as_instructor,
    place,
    text,
)

FIELDS = ("present", "hours", "result", "score", "comment")
ACTIONS = ("save", "apply", "import", "mark_all_present", "complete_all_present")


def fuzz(examples: int) -> settings:
    """A fixed, reproducible run of `examples` cases (the app, LMS and launch are shared by all)."""
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


#: Text with every kind of character: C0 and C1 controls (NUL included), bidi marks, emoji, long runs.
wild = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.text(
    alphabet=st.characters(codec="utf-8"), min_size=200, max_size=2500) | st.text(
    alphabet=st.sampled_from("\x00\x01\x08\x0b\x1b\x7f\x85\u2028\u202e\ufeff\r\n\t"), min_size=1, max_size=8)
#: Values the form really takes, and their near misses.
plausible = st.sampled_from(["", "1", "0", "6", "3.5", "6.01", "-1", "1e400", "NaN", "Infinity", "0x10", "٣",
                             "complete", "incomplete", "COMPLETE", "on", "ignore", " 2 ", "99999999999999999999"])
values = plausible | wild


def _state(app) -> tuple:
    """What a refused request must leave as it was."""
    with app.app_context():
        records = db.session.execute(sa.select(
            WorkshopRecord.account_id, WorkshopRecord.attended, WorkshopRecord.hours_attended, WorkshopRecord.result,
            WorkshopRecord.score, WorkshopRecord.comment, WorkshopRecord.attendance_source)
            .order_by(WorkshopRecord.account_id)).all()
        counts = tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                       for model in (LedgerEntry, OutboxScore))
        return tuple(records), counts


@pytest.fixture
def grading(app, client, platform, do_launch, member_launch):
    """The instructor's grading page with a roster of four (one with a bidi override in their LMS name)."""
    place(platform, make_workshop(app, platform), lineitem=True)
    platform.add_members(2)
    platform.members.append({"status": "Active", "user_id": "odd-1", "name": "Odd \u202eName\u0085", "email": "",
                             "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]})
    enrol_maria(platform)
    member_launch(platform)
    url = open_as_instructor(client, do_launch, platform)
    page = client.get(url)
    assert page.status_code == 200, text(page)
    with app.app_context():
        ids = list(db.session.scalars(sa.select(Account.id)))
    return url, csrf(text(page)), ids


def test_the_grading_form_never_gives_a_500_and_a_refused_save_writes_nothing(app, client, grading):
    url, token, ids = grading
    account = st.sampled_from(ids) | st.integers(min_value=-5, max_value=10**12)
    row_field = st.tuples(st.sampled_from(FIELDS), account).map(lambda pair: f"{pair[0]}-{pair[1]}")
    sheet_field = st.tuples(st.integers(min_value=0, max_value=3),
                            st.sampled_from(["name", "email", "hours", "line", "candidates", "reason"])).map(
        lambda pair: f"sheet-{pair[0]}-{pair[1]}")
    name = row_field | sheet_field | st.sampled_from(["sheet-count", "resolve-0", "resolve-1", "resolve-7"]) | wild
    forms = st.dictionaries(name, values | st.sampled_from([str(i) for i in ids]), max_size=14)

    @fuzz(300)
    @given(form=forms, action=st.sampled_from(ACTIONS) | wild, keep_token=st.booleans())
    def run(form, action, keep_token):
        data = {k: v for k, v in form.items() if k != "csrf_token"}
        data["action"] = action
        if keep_token:
            data["csrf_token"] = token
        before = _state(app)
        response = client.post(url, data=data)
        assert response.status_code != 500, text(response)
        if response.status_code >= 400 or action != "save" and response.status_code != 303:
            # Refused, or a step that only marks the page (apply, import, bulk marks without saving).
            assert _state(app) == before, (response.status_code, data)

    run()


def _sheet(rows: list[list[str]], delimiter: str, quoting: int, encoding: str, bom: bool) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, quoting=quoting).writerows(rows)
    body = buffer.getvalue()
    data = body.encode(encoding, errors="replace")
    return (b"\xef\xbb\xbf" if bom and encoding == "utf-8" else b"") + data


headers = st.lists(st.sampled_from(["name", "Name:", "email", "E-mail", "hours", "Hours attended", "first name",
                                    "last name", "Signature"]) | wild, min_size=1, max_size=6)
cells = st.sampled_from(["Maria Member", "maria@example.org", "MARIA MEMBER", "Roster Member 1",
                         "roster1@example.org", "Odd \u202eName\u0085", "6", "3", "7", "-2", "two", ""]) | wild
structured = st.builds(
    lambda header, body, delimiter, quoting, encoding, bom: _sheet([header] + body, delimiter, quoting, encoding, bom),
    headers, st.lists(st.lists(cells, max_size=7), max_size=25), st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    st.sampled_from(["utf-8", "cp1252", "utf-16", "latin-1"]), st.booleans())
#: Broken CSV: unbalanced quotes, stray NULs and CRs, very long lines, and plain binary.
broken = st.lists(st.sampled_from([b'"', b'""', b",", b";", b"\r", b"\n", b"\r\n", b"\x00", b"name", b"email",
                                   b"hours", b"maria@example.org", b"\xff\xfe", b"\x81", b"a" * 5000]),
                  max_size=60).map(b"".join) | st.binary(max_size=400)


def test_sign_in_sheets_never_give_a_500_and_write_nothing_until_saved(app, client, grading):
    url, _, ids = grading
    page_fields = _form_fields(text(client.get(url)))

    @fuzz(250)
    @given(content=structured | broken, filename=st.sampled_from(["sign-in.csv", "", "x.xlsx"]) | wild,
           choices=st.lists(st.sampled_from(["", "ignore", *map(str, ids), "999999", "x"]), max_size=6),
           then=st.sampled_from(["apply", "save"]))
    def run(content, filename, choices, then):
        before = _state(app)
        response = client.post(url, data={**page_fields, "action": "import", "sheet": (io.BytesIO(content),
                                                                                        filename)},
                               content_type="multipart/form-data")
        assert response.status_code != 500, text(response)
        assert _state(app) == before  # an import only marks the page: the instructor saves
        if response.status_code != 200:
            return
        # Resolve the listed rows as the page offers (or with made-up choices), then apply or save.
        data = _form_fields(text(response))
        for n, choice in enumerate(choices[: int(data.get("sheet-count") or 0)]):
            data[f"resolve-{n}"] = choice
        data["action"] = then
        follow = client.post(url, data=data)
        assert follow.status_code != 500, text(follow)
        if follow.status_code >= 400 or then == "apply":
            assert _state(app) == before

    run()


def test_control_characters_are_dropped_from_a_comment(app, client, grading):
    url = grading[0]
    data = _form_fields(text(client.get(url)))
    member = next(int(m.group(1)) for k in data if (m := re.match(r"comment-(\d+)$", k)))
    data.update({f"present-{member}": "1", f"hours-{member}": "6", f"result-{member}": "complete",
                 f"comment-{member}": "Good\x00 work\x1b\nSee you\tnext time", "action": "save"})
    assert client.post(url, data=data).status_code == 303
    with app.app_context():
        record = db.session.scalars(sa.select(WorkshopRecord).where(WorkshopRecord.account_id == member)).one()
        assert record.comment == "Good work\nSee you\tnext time"
