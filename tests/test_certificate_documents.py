"""The certificate's documents, from plain data: no app, no database."""
import base64
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import jwt
import pypdf
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from lti_tool.certificate_documents import (
    CertificateData,
    format_hours,
    open_badge_credential,
    render_pdf,
    sign_credential,
    verify_credential,
)
from lti_tool.lti.keys import generate_key_pair

SCHEMA_PATH = Path(__file__).parent / "data" / "ob_v3p0_achievementcredential_schema.json"
BASE = "https://certs.example.org"


def make_data(**changes) -> CertificateData:
    values = dict(
        number="BC-2026-7F3K9Q",
        holder_name="Maria Fernanda Okonkwo",
        program_name="Bargaining Certificate Program",
        issued_at=datetime(2025, 11, 25, 15, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
        hours_by_group=(
            ("Foundations of bargaining", 12.0),
            ("Contract costing", 8.5),
            ("Bargaining simulation", 16.25),
        ),
        total_hours=36.75,
        verification_url=f"{BASE}/verify/BC-2026-7F3K9Q",
        issuer_name="Bargaining Certificate Program",
        issuer_url=BASE,
        contact_email="certificates@example.org",
        holder_email="Maria.Okonkwo@Example.org",
    )
    values.update(changes)
    return CertificateData(**values)


def make_credential(data=None, **changes) -> dict:
    kwargs = dict(
        credential_id=f"{BASE}/credentials/BC-2026-7F3K9Q",
        achievement_id=f"{BASE}/achievements/bargaining-certificate",
        issuer_id=f"{BASE}/issuer",
        criteria="Complete every required module and 36.75 hours of training.",
        description="Awarded for completing the Bargaining Certificate Program.",
    )
    kwargs.update(changes)
    return open_badge_credential(data or make_data(), **kwargs)


@pytest.fixture(scope="module")
def key():
    pem, jwk = generate_key_pair()
    return pem, jwk


@pytest.fixture(scope="module")
def other_key():
    return generate_key_pair()


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_json(value: dict) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# ------------------------------------------------------------------------------------------------- PDF


def test_pdf_is_one_landscape_letter_page_with_everything_a_reader_checks():
    pdf = render_pdf(make_data())
    assert pdf.startswith(b"%PDF")

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (792, 612)
    assert reader.metadata.title and "BC-2026-7F3K9Q" in reader.metadata.title
    assert reader.metadata.author == "Bargaining Certificate Program"

    text = pdf_text(pdf)
    assert "Bargaining Certificate Program" in text
    assert "This certifies that" in text
    assert "Maria Fernanda Okonkwo" in text
    assert "BC-2026-7F3K9Q" in text
    assert "November 25, 2025" in text
    for title, hours in (("Foundations of bargaining", "12"), ("Contract costing", "8.5"),
                         ("Bargaining simulation", "16.25")):
        assert title in text
        assert hours in text
    assert "Total" in text and "36.75" in text
    assert f"Verify at {BASE}/verify/BC-2026-7F3K9Q" in text


def test_pdf_keeps_many_requirements_and_long_names_on_one_page():
    groups = tuple((f"Requirement group number {i} with a fairly long title", float(i)) for i in range(1, 16))
    data = make_data(
        holder_name="Alexandra Konstantinopoulou-Vanderbilt de la Fuente y Martínez",
        hours_by_group=groups,
        total_hours=float(sum(range(1, 16))),
    )
    pdf = render_pdf(data)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = pdf_text(pdf)
    assert "Requirement group number 15" in text
    assert "120" in text
    assert "Verify at" in text


@pytest.mark.parametrize("name", ["Nguyễn Thị Hương", "Ирина Петрова", "Χρήστος Παπαδόπουλος", "Nadège Pierre-Louis"])
def test_names_in_other_scripts_are_printed(name):
    from lti_tool.certificate_documents import certificate_fonts

    if certificate_fonts()["regular"] == "Helvetica":
        pytest.fail("DejaVu Sans is not installed (apt-get install fonts-dejavu-core): names outside Latin-1 "
                    "would not print")
    assert name in pdf_text(render_pdf(make_data(holder_name=name)))


def test_date_printed_is_the_issue_dates_own_calendar_day():
    late_evening = datetime(2026, 11, 25, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert "November 25, 2026" in pdf_text(render_pdf(make_data(issued_at=late_evening)))


def test_naive_issue_date_is_refused():
    with pytest.raises(ValueError):
        make_data(issued_at=datetime(2026, 11, 25, 12, 0))


def test_hours_are_printed_without_float_noise():
    assert format_hours(12.0) == "12"
    assert format_hours(8.5) == "8.5"
    assert format_hours(0.1 + 0.2) == "0.3"
    assert format_hours(16.25) == "16.25"


# --------------------------------------------------------------------------------- Open Badges 3.0


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)


def test_credential_validates_against_the_ob_3_schema(validator):
    credential = make_credential()
    errors = sorted(validator.iter_errors(credential), key=str)
    assert not errors, "\n".join(e.message for e in errors)


def test_credential_fields(validator):
    credential = make_credential(salt="Kosher")
    assert credential["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["id"] == f"{BASE}/credentials/BC-2026-7F3K9Q"
    assert credential["issuer"] == {
        "id": f"{BASE}/issuer",
        "type": ["Profile"],
        "name": "Bargaining Certificate Program",
        "url": BASE,
        "email": "certificates@example.org",
    }
    # 15:04:05 at UTC-5 is 20:04:05Z.
    assert credential["validFrom"] == "2025-11-25T20:04:05Z"

    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["creditsEarned"] == 36.75
    achievement = subject["achievement"]
    assert achievement["id"] == f"{BASE}/achievements/bargaining-certificate"
    assert achievement["type"] == ["Achievement"]
    assert achievement["achievementType"] == "Certificate"
    assert achievement["name"] == "Bargaining Certificate Program"
    assert achievement["criteria"] == {"narrative": "Complete every required module and 36.75 hours of training."}
    assert achievement["creditsAvailable"] == 36.75

    identity, number = subject["identifier"]
    assert number == {"type": "IdentityObject", "identityType": "identifier", "hashed": False,
                      "identityHash": "BC-2026-7F3K9Q"}
    expected = hashlib.sha256(b"maria.okonkwo@example.orgKosher").hexdigest()
    assert identity == {
        "type": "IdentityObject",
        "identityType": "emailAddress",
        "hashed": True,
        "salt": "Kosher",
        "identityHash": f"sha256${expected}",
    }
    assert "maria" not in json.dumps(credential).lower()
    assert not list(validator.iter_errors(credential))


def test_identity_hash_matches_the_spec_example():
    # The OB 3.0 spec's IdentityHash example: sha256 of 'a@example.com' salted with 'Kosher'.
    credential = make_credential(make_data(holder_email="a@example.com"), salt="Kosher")
    assert credential["credentialSubject"]["identifier"][0]["identityHash"] == (
        "sha256$b5809d8a92f8858436d7e6b87c12ebc0ae1eac4baecc2c0b913aee2c922ef399"
    )


def test_salt_is_long_random_and_new_for_every_credential():
    salts = {make_credential()["credentialSubject"]["identifier"][0]["salt"] for _ in range(5)}
    assert len(salts) == 5 and all(len(bytes.fromhex(salt)) >= 32 for salt in salts)


def test_the_public_copy_carries_no_hash_of_the_holder(validator):
    for data in (make_data(), make_data(holder_email=None)):
        credential = make_credential(data, identify_holder=False)
        assert credential["credentialSubject"]["identifier"] == [
            {"type": "IdentityObject", "identityType": "identifier", "hashed": False,
             "identityHash": "BC-2026-7F3K9Q"}]
        assert "salt" not in json.dumps(credential) and "sha256$" not in json.dumps(credential)
        assert not list(validator.iter_errors(credential))


def test_credential_without_email_still_identifies_its_holder(validator):
    credential = make_credential(make_data(holder_email=None), salt="pepper")
    identity = credential["credentialSubject"]["identifier"][0]
    assert identity["identityType"] == "name"
    digest = hashlib.sha256(b"Maria Fernanda Okonkwo" + b"pepper").hexdigest()
    assert identity["identityHash"] == f"sha256${digest}"
    assert not list(validator.iter_errors(credential))


def test_schema_rejects_a_credential_missing_what_ob_3_requires(validator):
    for breaking in (
        lambda c: c.pop("validFrom"),
        lambda c: c.__setitem__("type", ["VerifiableCredential"]),
        lambda c: c["credentialSubject"]["achievement"].pop("criteria"),
        lambda c: c["credentialSubject"]["identifier"][0].pop("identityType"),
        lambda c: c.__setitem__("@context", ["https://www.w3.org/2018/credentials/v1"]),
    ):
        credential = make_credential()
        breaking(credential)
        assert list(validator.iter_errors(credential))


# ------------------------------------------------------------------------------------------- VC-JWT


def test_vc_jwt_round_trip(key):
    pem, jwk = key
    credential = make_credential()
    token = sign_credential(credential, kid=jwk["kid"], private_key_pem=pem)

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"{BASE}/issuer"
    assert claims["jti"] == credential["id"]
    assert claims["sub"] == credential["id"]
    assert claims["nbf"] == int(datetime(2025, 11, 25, 20, 4, 5, tzinfo=UTC).timestamp())
    assert isinstance(claims["iat"], int)
    assert claims["vc"] == credential

    assert verify_credential(token, {"keys": [jwk]}) == credential


def test_vc_jwt_sub_is_the_subject_id_when_there_is_one(key):
    pem, jwk = key
    credential = make_credential()
    credential["credentialSubject"]["id"] = "did:example:holder"
    token = sign_credential(credential, kid=jwk["kid"], private_key_pem=pem)
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "did:example:holder"


def test_vc_jwt_picks_its_key_by_kid_among_several(key, other_key):
    pem, jwk = key
    token = sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem)
    assert verify_credential(token, {"keys": [other_key[1], jwk]})["id"] == f"{BASE}/credentials/BC-2026-7F3K9Q"


def test_vc_jwt_signed_by_another_key_fails(key, other_key):
    pem, jwk = key
    other_pem, _ = other_key
    # Signed with a different private key but claiming the published kid.
    token = sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=other_pem)
    with pytest.raises(ValueError, match="signature"):
        verify_credential(token, {"keys": [jwk]})


def test_vc_jwt_refuses_a_jwks_entry_that_is_a_private_key(key):
    pem, jwk = key
    token = sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem)
    private = json.loads(RSAAlgorithm.to_jwk(serialization.load_pem_private_key(pem.encode(), password=None)))
    private.update(kid=jwk["kid"], alg="RS256", use="sig")
    with pytest.raises(ValueError, match="not a public key"):
        verify_credential(token, {"keys": [private]})


def test_vc_jwt_with_unknown_kid_fails(key, other_key):
    pem, jwk = key
    token = sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem)
    with pytest.raises(ValueError, match="kid"):
        verify_credential(token, {"keys": [other_key[1]]})


def test_vc_jwt_with_altered_payload_fails(key):
    pem, jwk = key
    token = sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["vc"]["credentialSubject"]["creditsEarned"] = 500.0
    forged = ".".join([header, b64url_json(claims), signature])
    with pytest.raises(ValueError, match="signature"):
        verify_credential(forged, {"keys": [jwk]})


def test_vc_jwt_with_alg_none_is_refused(key):
    pem, jwk = key
    claims = jwt.decode(sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem),
                        options={"verify_signature": False})
    header = b64url_json({"alg": "none", "typ": "JWT", "kid": jwk["kid"]})
    unsigned = f"{header}.{b64url_json(claims)}."
    with pytest.raises(ValueError, match="algorithm"):
        verify_credential(unsigned, {"keys": [jwk]})


def test_vc_jwt_hmac_signed_with_the_public_key_is_refused(key):
    pem, jwk = key
    claims = jwt.decode(sign_credential(make_credential(), kid=jwk["kid"], private_key_pem=pem),
                        options={"verify_signature": False})
    public_pem = RSAAlgorithm.from_jwk(json.dumps(jwk)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': jwk['kid']})}.{b64url_json(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(ValueError, match="algorithm"):
        verify_credential(f"{signing_input}.{b64url(signature)}", {"keys": [jwk]})


def test_vc_jwt_whose_claims_disagree_with_the_credential_is_refused(key):
    pem, jwk = key
    credential = make_credential()
    token = jwt.encode(
        {"iss": "https://evil.example", "jti": credential["id"], "nbf": 1, "iat": 1, "sub": credential["id"],
         "vc": credential},
        pem, algorithm="RS256", headers={"kid": jwk["kid"]},
    )
    with pytest.raises(ValueError, match="iss"):
        verify_credential(token, {"keys": [jwk]})


def test_vc_jwt_not_yet_valid_is_refused(key):
    pem, jwk = key
    future = make_data(issued_at=datetime.now(UTC) + timedelta(days=2))
    token = sign_credential(make_credential(future), kid=jwk["kid"], private_key_pem=pem)
    with pytest.raises(ValueError, match="not valid yet"):
        verify_credential(token, {"keys": [jwk]})


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c"])
def test_garbage_is_refused_with_value_error(key, token):
    with pytest.raises(ValueError):
        verify_credential(token, {"keys": [key[1]]})
