"""The member's progress page and certificate: PDF, Open Badges 3.0 credential, verification pages."""
import io

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from lti_tool.certificate_documents import verify_credential
from lti_tool.extensions import db
from lti_tool.models import Account
from lti_tool.services import certificates, ledger

ALL = ["bargaining-foundations", "democratized-bargaining", "contract-costing", "power-mapping",
       "impact-bargaining", "esp-bargaining"]


def text(response):
    return response.get_data(as_text=True)


def earn(app, modules, sub="user-member-1"):
    with app.app_context():
        account = db.session.scalars(sa.select(Account).where(Account.sub == sub)).one()
        from lti_tool.catalog import current_catalog

        for slug in modules:
            ledger.record_hours(account_id=account.id, module_slug=slug,
                                hours=current_catalog().module(slug).credit_hours, source="workshop_grade",
                                source_ref=f"grade:{slug}", details={"venue": "Summer Conference, UMass Amherst"})
        certificates.evaluate(account.person_id)
        db.session.commit()
        return certificates.certificate_for(account.person_id)


@pytest.fixture
def home(platform, member_launch):
    return member_launch(platform)


def test_progress_page_shows_each_requirement_its_entries_and_what_is_left(app, client, home):
    earn(app, ALL[:4])
    page = text(client.get(home + "progress"))
    assert "18 of 24 hours" in page and "Still to do: 2 more Specialized Topics electives." in page
    assert "6 of 6 hours" in page and "6 of 12 hours, 2 of 4 electives" in page
    assert "Contract Costing and Economic Indicators" in page and "Summer Conference, UMass Amherst" in page
    assert "Download the certificate" not in page


def test_certificate_pdf_and_verification(app, client, home):
    certificate = earn(app, ALL)
    page = text(client.get(home + "progress"))
    assert f"Certificate <strong>{certificate.number}</strong>" in page and "You have met every requirement" in page
    pdf = client.get(home + "certificate.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "Maria Member" in pdf_text and certificate.number in pdf_text
    assert f"http://localhost:5000/verify/{certificate.number}" in pdf_text
    verify = client.get(f"/verify/{certificate.number}")
    assert verify.status_code == 200
    html = text(verify)
    assert "Valid." in html and "Maria Member" in html and "Bargaining Certificate" in html
    assert certificate.issued_at.strftime("%B") in html


def test_open_badge_credential_verifies_against_the_tools_jwks(app, client, home):
    certificate = earn(app, ALL)
    token = client.get(home + "certificate-credential.jwt")
    assert token.status_code == 200 and token.headers["Content-Type"] == "application/vc+jwt"
    jwks = client.get("/.well-known/jwks.json").get_json()
    credential = verify_credential(token.get_data(as_text=True), jwks)
    assert "OpenBadgeCredential" in credential["type"]
    assert credential["id"] == f"http://localhost:5000/credentials/{certificate.number}"
    assert credential["credentialSubject"]["achievement"]["achievementType"] == "Certificate"
    # still verifies after the tool rotates its key: the JWKS keeps the previous key
    app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert verify_credential(token.get_data(as_text=True), client.get("/.well-known/jwks.json").get_json())
    assert client.get(f"/credentials/{certificate.number}").get_json()["id"] == credential["id"]


def test_revoked_certificate_says_so_and_forged_numbers_are_unknown(app, client, home):
    certificate = earn(app, ALL)
    with app.app_context():
        certificates.revoke(certificate.number, reason="Issued in error", actor_account_id=None)
        db.session.commit()
    html = text(client.get(f"/verify/{certificate.number}"))
    assert "This certificate was revoked" in html and "no longer valid" in html
    forged = client.get("/verify/BC-2026-FAKE99")
    assert forged.status_code == 404 and "No certificate has the number" in text(forged)
    assert client.get("/verify/" + "X" * 500).status_code == 404
    assert client.get(home + "certificate.pdf").status_code == 404


def test_no_certificate_yet_means_no_download(client, home):
    response = client.get(home + "certificate.pdf")
    assert response.status_code == 404 and "your progress page says what is left" in text(response)


def test_verify_form_looks_up_a_number(app, client, home):
    certificate = earn(app, ALL)
    assert "Valid." in text(client.get(f"/verify/?number={certificate.number.lower()}"))
    assert "Certificate number" in text(client.get("/verify/"))


def test_the_holders_email_is_checkable_in_their_copy_and_absent_from_the_public_one(app, client, home):
    import hashlib
    import json

    certificate = earn(app, ALL)
    public = client.get(f"/credentials/{certificate.number}").get_json()
    published = json.dumps(public)
    # Anyone with the number gets no hash and no salt to test guessed addresses against.
    assert "sha256$" not in published and "salt" not in published and "maria" not in published.lower()
    assert public["credentialSubject"]["identifier"] == [
        {"type": "IdentityObject", "identityType": "identifier", "hashed": False, "identityHash": certificate.number}]
    # The member's signed copy lets a verifier who knows the email check it, with a salt of its own.
    jwks = client.get("/.well-known/jwks.json").get_json()
    copies = [verify_credential(text(client.get(home + "certificate-credential.jwt")), jwks) for _ in range(2)]
    identities = [c["credentialSubject"]["identifier"][0] for c in copies]
    for identity in identities:
        assert identity["identityType"] == "emailAddress" and identity["hashed"] is True
        digest = hashlib.sha256(("maria@example.org" + identity["salt"]).encode()).hexdigest()
        assert identity["identityHash"] == f"sha256${digest}"
        assert len(bytes.fromhex(identity["salt"])) >= 32
    assert identities[0]["salt"] != identities[1]["salt"]


@pytest.mark.rate_limits
def test_certificate_look_ups_are_rate_limited(app, client, home):
    from lti_tool.blueprints.certificates import LOOKUPS

    certificate = earn(app, ALL)
    per_minute = int(LOOKUPS.split()[0])
    # Pages, the form and the public credential share one budget: switching between them does not reset it.
    urls = [f"/verify/BC-2026-GUESS{n}" for n in range(per_minute - 2)] + [
        f"/verify/?number={certificate.number}", f"/credentials/{certificate.number}"]
    assert all(client.get(url).status_code in (200, 404) for url in urls)
    for url in (f"/verify/{certificate.number}", f"/credentials/{certificate.number}", "/verify/?number=X"):
        refused = client.get(url)
        assert refused.status_code == 429
    page = text(client.get(f"/verify/{certificate.number}"))
    assert "Too many certificate look-ups" in page and "Wait a few minutes" in page
