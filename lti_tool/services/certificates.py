"""The certificate: issued once when the rules are first met, flagged for review, revoked with a reason."""
import secrets
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from lti_tool.catalog import current_catalog
from lti_tool.certificate_documents import CertificateData
from lti_tool.extensions import db
from lti_tool.models import Certificate, Person, Registration
from lti_tool.models.base import utcnow
from lti_tool.services import audit
from lti_tool.services.ledger import person_progress

#: No 0/O or 1/I: numbers are read aloud and typed from paper.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

ISSUER_NAME = "Bargaining Certificate Program"


class CertificateError(ValueError):
    """A certificate action that is refused."""


def new_number(year: int) -> str:
    """Return a certificate number like BC-2026-7F3K9Q (30 bits of randomness, checked for uniqueness)."""
    while True:
        number = f"BC-{year}-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))
        if db.session.scalar(sa.select(Certificate.id).where(Certificate.number == number)) is None:
            return number


def holder_name(person: Person) -> str:
    """Return the name for the certificate: the registration's, else what the LMS said."""
    registration = db.session.scalars(sa.select(Registration).where(Registration.person_id == person.id)).first()
    if registration is not None:
        return registration.name
    return person.name or next((a.display_name for a in person.accounts), "Member")


def certificate_for(person_id: int) -> Certificate | None:
    """Return the person's certificate, if they have one."""
    return db.session.scalars(sa.select(Certificate).where(Certificate.person_id == person_id)).first()


def evaluate(person_id: int) -> Certificate | None:
    """After any change to a person's ledger: issue the certificate the first time the rules are met, or
    flag an issued one for review when a reversal takes the person below the rules (never revoke silently)."""
    progress = person_progress(person_id)
    certificate = certificate_for(person_id)
    now = utcnow()
    if certificate is None:
        if not progress.met:
            return None
        person = db.session.get_one(Person, person_id)
        certificate = Certificate(
            person_id=person_id, number=new_number(now.year), holder_name=holder_name(person), issued_at=now,
            hours_by_group={g.id: str(g.counted_hours) for g in progress.groups}, total_hours=progress.total_hours,
            status="issued")
        db.session.add(certificate)
        db.session.flush()
        audit.record("certificate.issue", actor_account_id=None, person_id=person_id, number=certificate.number)
        # The email with the PDF is queued in this same transaction: issued and announced, or neither.
        from lti_tool.services import mail

        mail.queue_certificate_email(certificate)
        return certificate
    if certificate.status == "issued" and not progress.met:
        certificate.status = "review"
        certificate.status_reason = ("A reversal took this person below the certificate's rules: still needed: "
                                     + "; ".join(progress.what_is_left) + ".")
        certificate.status_changed_at = now
        audit.record("certificate.flag_for_review", actor_account_id=None, person_id=person_id,
                     reason=certificate.status_reason, number=certificate.number)
    elif certificate.status == "review" and progress.met:
        certificate.status = "issued"
        certificate.status_reason = None
        certificate.status_changed_at = now
        audit.record("certificate.review_cleared", actor_account_id=None, person_id=person_id,
                     number=certificate.number)
    return certificate


def evaluate_uncertified() -> list[Certificate]:
    """Issue the certificates of people whose hours meet the rules but who hold none (people a migration merged,
    whose hours together met the rules without a new entry); return those issued."""
    from lti_tool.models import Account, LedgerEntry

    people = db.session.scalars(sa.select(Account.person_id).distinct().join(
        LedgerEntry, LedgerEntry.account_id == Account.id).where(
        Account.person_id.is_not(None), Account.person_id.not_in(sa.select(Certificate.person_id))))
    issued = (evaluate(person_id) for person_id in list(people) if person_id is not None)
    return [certificate for certificate in issued if certificate is not None]


def revoke(number: str, *, reason: str, actor_account_id: int) -> Certificate:
    """Revoke a certificate with a reason; the verification page says so from then on."""
    reason = (reason or "").strip()
    if not reason:
        raise CertificateError("Revoking a certificate needs a reason.")
    certificate = db.session.scalars(sa.select(Certificate).where(Certificate.number == number)).first()
    if certificate is None:
        raise CertificateError(f"There is no certificate {number}.")
    if certificate.status == "revoked":
        raise CertificateError(f"Certificate {number} is already revoked.")
    certificate.status = "revoked"
    certificate.status_reason = reason
    certificate.status_changed_at = utcnow()
    audit.record("certificate.revoke", actor_account_id=actor_account_id, person_id=certificate.person_id,
                 reason=reason, number=number)
    return certificate


def find_by_number(number: str) -> Certificate | None:
    """Return the certificate with this public number (exact match, case-insensitive)."""
    if not number or len(number) > 32:
        return None
    return db.session.scalars(sa.select(Certificate).where(Certificate.number == number.strip().upper())).first()


def verification_url(number: str) -> str:
    """Return the public address that confirms a certificate."""
    return f"{current_app.config['PUBLIC_BASE_URL']}/verify/{number}"


def document_data(certificate: Certificate) -> CertificateData:
    """Gather what the certificate's PDF and credential show."""
    from lti_tool.services.people import registration_for

    catalog = current_catalog()
    base = current_app.config["PUBLIC_BASE_URL"]
    registration = registration_for(certificate.person_id)
    hours = tuple((g.title, float(Decimal(str(certificate.hours_by_group.get(g.id, "0")))))
                  for g in catalog.program.groups)
    return CertificateData(
        number=certificate.number, holder_name=certificate.holder_name, program_name=catalog.program.name,
        issued_at=certificate.issued_at, hours_by_group=hours, total_hours=float(certificate.total_hours),
        verification_url=verification_url(certificate.number), issuer_name=ISSUER_NAME, issuer_url=base,
        contact_email=catalog.program.contact_email,
        holder_email=registration.email if registration else certificate.person.email)
