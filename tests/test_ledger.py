"""The ledger: append-only, idempotent, validated, and the certificate decided from it."""
import threading

import pytest
import sqlalchemy as sa

from lti_tool.catalog import current_catalog
from lti_tool.extensions import db
from lti_tool.models import AuditEvent, Certificate, LedgerEntry
from lti_tool.services import certificates, ledger

ELECTIVES = ["contract-costing", "power-mapping", "impact-bargaining", "esp-bargaining"]


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def earn(account_id, slug, hours=None, ref=None):
    module = current_catalog().module(slug)
    entry = ledger.record_hours(account_id=account_id, module_slug=slug, hours=hours or module.credit_hours,
                                source="workshop_grade", source_ref=ref or f"test:{slug}:{account_id}:{hours}")
    return entry


def earn_everything(account_id, person_id):
    for slug in ["bargaining-foundations", "democratized-bargaining", *ELECTIVES]:
        earn(account_id, slug)
    return certificates.evaluate(person_id)


def test_recording_the_same_source_twice_makes_one_entry(app, make_account):
    account, _ = make_account()
    with app.app_context():
        first = earn(account, "power-mapping", ref="grade:1")
        second = earn(account, "power-mapping", ref="grade:1")
        db.session.commit()
        assert first.id == second.id and count(LedgerEntry) == 1


def test_concurrent_recordings_of_one_source_make_one_entry(app, make_account):
    account, _ = make_account()
    barrier = threading.Barrier(6)
    errors = []

    def record():
        with app.app_context():
            try:
                barrier.wait()
                earn(account, "contract-costing", ref="grade:concurrent")
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=record) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with app.app_context():
        assert count(LedgerEntry) == 1


@pytest.mark.parametrize("hours, slug, message", [
    (-3, "power-mapping", "more than 0"),
    (0, "power-mapping", "more than 0"),
    (400, "power-mapping", "more than this module is worth"),
    ("lots", "power-mapping", "must be a number"),
    ("NaN", "power-mapping", "more than 0"),
    (3, "basket-weaving", "no module 'basket-weaving'"),
])
def test_bad_hours_and_unknown_modules_are_refused_and_nothing_written(app, make_account, hours, slug, message):
    account, _ = make_account()
    with app.app_context():
        with pytest.raises(ledger.LedgerError, match=message):
            ledger.record_hours(account_id=account, module_slug=slug, hours=hours, source="workshop_grade",
                                source_ref="x")
        db.session.rollback()
        assert count(LedgerEntry) == 0


def test_adjustment_needs_a_reason_and_is_audited(app, make_account):
    account, person = make_account()
    with app.app_context():
        with pytest.raises(ledger.LedgerError, match="needs a reason"):
            ledger.adjust(person_id=person, module_slug="power-mapping", hours=3, reason=" ",
                          actor_account_id=account, request_id="r1")
        entry = ledger.adjust(person_id=person, module_slug="power-mapping", hours=1.5,
                              reason="Attended the regional training in Worcester", actor_account_id=account,
                              request_id="r2")
        again = ledger.adjust(person_id=person, module_slug="power-mapping", hours=1.5,
                              reason="Attended the regional training in Worcester", actor_account_id=account,
                              request_id="r2")  # the same form submitted twice
        db.session.commit()
        assert entry.entry.id == again.entry.id and str(entry.entry.hours) == "1.50"
        assert entry.written and not again.written
        assert db.session.scalars(sa.select(AuditEvent.action)).all().count("ledger.adjust") == 1


def test_a_reference_already_used_for_another_entry_is_refused(app, make_account):
    account, _ = make_account()
    other, _ = make_account(name="Omar Other")
    with app.app_context():
        ledger.record_hours(account_id=account, module_slug="power-mapping", hours=3, source="workshop_grade",
                            source_ref="workshop_grade:7")
        for changed in ({"account_id": other}, {"hours": 2}, {"module_slug": "impact-bargaining"}):
            values = {"account_id": account, "module_slug": "power-mapping", "hours": 3, **changed}
            with pytest.raises(ledger.LedgerError, match="already used for a different entry"):
                ledger.record_hours(source="workshop_grade", source_ref="workshop_grade:7", **values)
        db.session.commit()
        assert count(LedgerEntry) == 1


def test_entries_are_never_updated_or_deleted_by_the_code(app, make_account):
    account, _ = make_account()
    with app.app_context():
        entry = earn(account, "power-mapping")
        db.session.commit()
        entry.hours = 1
        with pytest.raises(ledger.LedgerError, match="append-only"):
            db.session.flush()
        db.session.rollback()
        db.session.delete(db.session.get(LedgerEntry, entry.id))
        with pytest.raises(ledger.LedgerError, match="append-only"):
            db.session.flush()
        db.session.rollback()


@pytest.mark.parametrize("statement", ["UPDATE ledger_entries SET hours = 99", "DELETE FROM ledger_entries"])
def test_the_database_refuses_to_change_entries(app, make_account, statement):
    account, _ = make_account()
    with app.app_context():
        earn(account, "power-mapping")
        db.session.commit()
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
        assert db.session.scalar(sa.select(LedgerEntry.hours)) == 3


def test_reversal_is_a_new_negative_entry_once_with_a_reason(app, make_account):
    account, person = make_account()
    with app.app_context():
        entry = earn(account, "power-mapping")
        with pytest.raises(ledger.LedgerError, match="needs a reason"):
            ledger.reverse_entry(entry.id, reason="", actor_account_id=account)
        reversal = ledger.reverse_entry(entry.id, reason="Recorded for the wrong member", actor_account_id=account)
        assert reversal.hours == -entry.hours and reversal.reverses_entry_id == entry.id
        with pytest.raises(ledger.LedgerError, match="already reversed"):
            ledger.reverse_entry(entry.id, reason="again", actor_account_id=account)
        with pytest.raises(ledger.LedgerError, match="cannot itself be reversed"):
            ledger.reverse_entry(reversal.id, reason="undo", actor_account_id=account)
        assert ledger.person_progress(person).total_hours == 0


def test_every_reversal_writes_its_own_audit_record_whoever_asks(app, make_account):
    """Not only the admin page: a changed workshop grade or any other caller of reverse_entry is audited too."""
    account, person = make_account()
    with app.app_context():
        entry = earn(account, "power-mapping")
        reversal = ledger.reverse_entry(entry.id, reason="Recorded twice", actor_account_id=None)
        db.session.commit()
        events = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "ledger.reverse")).all()
        assert [(e.person_id, e.reason, e.details) for e in events] == [
            (person, "Recorded twice", {"entry_id": entry.id, "reversal_id": reversal.id})]


def test_certificate_is_issued_once_when_the_rules_are_met(app, make_account):
    account, person = make_account(name="Rosa Delgado")
    with app.app_context():
        for slug in ["bargaining-foundations", "democratized-bargaining", *ELECTIVES[:3]]:
            earn(account, slug)
        assert certificates.evaluate(person) is None
        earn(account, ELECTIVES[3])
        certificate = certificates.evaluate(person)
        db.session.commit()
        assert certificate.number.startswith("BC-") and certificate.holder_name == "Rosa Delgado"
        assert certificate.total_hours == 24 and certificate.status == "issued"
        earn(account, "pensions-retirement-security")  # more hours later: still the one certificate
        assert certificates.evaluate(person).number == certificate.number
        assert count(Certificate) == 1


def test_reversal_after_issue_flags_for_review_never_revokes(app, make_account):
    account, person = make_account()
    with app.app_context():
        certificate = earn_everything(account, person)
        entry = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.module_slug == ELECTIVES[0])).one()
        ledger.reverse_entry(entry.id, reason="Did not attend", actor_account_id=account)
        certificates.evaluate(person)
        db.session.commit()
        assert certificate.status == "review" and "1 more Specialized Topics elective" in certificate.status_reason
        earn(account, "pensions-retirement-security")
        certificates.evaluate(person)
        assert certificate.status == "issued"


def test_revoke_needs_a_reason(app, make_account):
    account, person = make_account()
    with app.app_context():
        certificate = earn_everything(account, person)
        with pytest.raises(certificates.CertificateError, match="needs a reason"):
            certificates.revoke(certificate.number, reason="", actor_account_id=account)
        certificates.revoke(certificate.number, reason="Issued in error", actor_account_id=account)
        assert certificate.status == "revoked" and certificate.status_reason == "Issued in error"


def test_a_crash_while_recording_leaves_nothing(app, client, platform, member_launch, monkeypatch):
    home = member_launch(platform)
    from lti_tool.services import completions

    module = "power-mapping"
    with app.app_context():
        catalog_module = current_catalog().module(module)
    # do everything but the knowledge check, then make the certificate step fail mid-recording
    for section in catalog_module.sections:
        client.get(home + f"modules/{module}/sections/{section.slug}")
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get(home + f"modules/{module}/check")
                      .get_data(as_text=True)).group(1)
    for activity in catalog_module.activities:
        client.post(home + f"modules/{module}/activities/{activity.slug}",
                    data={"csrf_token": token, **{f.name: "x" for f in activity.fields}})

    def crash(person_id):
        raise RuntimeError("power cut")

    monkeypatch.setattr(completions.certificates, "evaluate", crash)
    right = {q.id: [str(i) for i, c in enumerate(q.choices) if c.correct]
             for q in catalog_module.knowledge_check.questions}
    from werkzeug.datastructures import MultiDict

    response = client.post(home + f"modules/{module}/check",
                           data=MultiDict([("csrf_token", token)] + [(k, v) for k, vs in right.items() for v in vs]))
    assert response.status_code == 500 and "saved nothing" in response.get_data(as_text=True)
    with app.app_context():
        from lti_tool.models import ModuleCompletion, QuizAttempt

        assert count(LedgerEntry) == 0 and count(ModuleCompletion) == 0 and count(QuizAttempt) == 0
