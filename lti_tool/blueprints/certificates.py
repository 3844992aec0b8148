"""Certificates: the member's PDF and Open Badges 3.0 credential, and the public verification pages."""

from flask import Blueprint, abort, current_app, g, render_template, request

from lti_tool.auth import launch_required
from lti_tool.catalog import current_catalog
from lti_tool.certificate_documents import CertificateData, open_badge_credential, render_pdf, sign_credential
from lti_tool.extensions import limiter
from lti_tool.lti import keys
from lti_tool.lti.claims import ToolRole
from lti_tool.models import Certificate
from lti_tool.services import certificates as certificate_service

bp = Blueprint("certificates", __name__)

ISSUER_NAME = certificate_service.ISSUER_NAME

#: Look-ups by certificate number (verification pages and public credentials), per network address, shared:
#: enough for an employer checking a stack of certificates, far too few to walk the numbers.
LOOKUPS = "30 per minute; 300 per day"
_lookups = limiter.shared_limit(
    LOOKUPS, scope="certificate-lookup",
    error_message="Too many certificate look-ups from this network address. Wait a few minutes and try again; "
                  "to check many certificates, write to the program's contact address.")


def _base() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


def _data(certificate: Certificate) -> CertificateData:
    return certificate_service.document_data(certificate)


def _credential(certificate: Certificate, *, identify_holder: bool) -> dict:
    catalog = current_catalog()
    program = catalog.program
    criteria = (f"Complete {program.total_hours:g} hours of training: "
                + "; ".join(f"{g.title}: {g.required_hours:g} hours"
                            + (f" in at least {g.min_distinct_modules} different electives"
                               if g.min_distinct_modules else "") for g in program.groups) + ".")
    return open_badge_credential(
        _data(certificate), credential_id=f"{_base()}/credentials/{certificate.number}",
        achievement_id=f"{_base()}/achievements/bargaining-certificate", issuer_id=f"{_base()}/issuer",
        criteria=criteria, description=program.description, identify_holder=identify_holder)


def _member_certificate() -> Certificate:
    certificate = certificate_service.certificate_for(g.launch.account.person_id)
    if certificate is None or certificate.status == "revoked":
        abort(404, description="You do not have a certificate yet: your progress page says what is left.")
    return certificate


@bp.get("/l/<launch_id>/certificate.pdf")
@launch_required(ToolRole.MEMBER)
def pdf(launch_id: str):
    """Download the member's certificate as a PDF."""
    certificate = _member_certificate()
    response = current_app.make_response(render_pdf(_data(certificate)))
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="bargaining-certificate-{certificate.number}.pdf"'
    return response


@bp.get("/l/<launch_id>/certificate-credential.jwt")
@launch_required(ToolRole.MEMBER)
def credential(launch_id: str):
    """Download the member's Open Badges 3.0 credential, signed with the tool's key (VC-JWT)."""
    certificate = _member_certificate()
    signing = keys.signing_key()
    token = sign_credential(_credential(certificate, identify_holder=True), kid=signing.kid,
                            private_key_pem=signing.private_key_pem)
    response = current_app.make_response(token)
    response.headers["Content-Type"] = "application/vc+jwt"
    response.headers["Content-Disposition"] = (f'attachment; filename="bargaining-certificate-'
                                               f'{certificate.number}.jwt"')
    return response


@bp.get("/verify/")
@_lookups
def verify_form():
    """Let anyone look up a certificate by its number."""
    number = (request.args.get("number") or "").strip()
    if number:
        return _verification(number)
    return render_template("certificates/verify.html", certificate=None, number=None)


@bp.get("/verify/<number>")
@_lookups
def verify(number: str):
    """Confirm a certificate's holder, program and date, or say that it was revoked or does not exist."""
    return _verification(number)


def _verification(number: str):
    certificate = certificate_service.find_by_number(number)
    status = 200 if certificate else 404
    return render_template("certificates/verify.html", certificate=certificate, number=number,
                           program=current_catalog().program), status


@bp.get("/credentials/<number>")
@_lookups
def credential_document(number: str):
    """Publish the credential's JSON at its id (no signature, no hash of the holder; the signed copy is the \
member's)."""
    certificate = certificate_service.find_by_number(number)
    if certificate is None or certificate.status == "revoked":
        abort(404, description="No valid credential has that number.")
    return _credential(certificate, identify_holder=False)


@bp.get("/issuer")
def issuer():
    """Publish the issuer's Open Badges profile."""
    program = current_catalog().program
    return {"@context": ["https://www.w3.org/ns/credentials/v2",
                         "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
            "id": f"{_base()}/issuer", "type": ["Profile"], "name": ISSUER_NAME, "url": _base(),
            "email": program.contact_email}
