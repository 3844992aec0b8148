"""People and their accounts: one person per member across courses and LMSs; linking, merging, splitting;
and the program's registration form."""
import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm.util import identity_key

from lti_tool.extensions import db
from lti_tool.models import Account, Certificate, LinkCode, Person, Platform, Registration
from lti_tool.models.base import rowcount, utcnow
from lti_tool.services import audit, certificates

LINK_CODE_TTL = timedelta(minutes=15)
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

JOB_CATEGORIES = {
    "teacher": "Teacher",
    "esp": "Education support professional",
    "specialist": "Specialist",
    "faculty": "Faculty",
    "professional_staff": "Professional staff",
    "other": "Other",
}
SECTORS = {"prek12": "PreK-12", "higher_ed": "Higher education"}
EXPERIENCE = {
    "none": "None yet",
    "some": "Some: I have helped with a campaign or a survey",
    "experienced": "I have sat on a bargaining team",
    "lead": "I have led or chaired negotiations",
}


class PeopleError(ValueError):
    """A linking, merging or registration step that is refused, in plain words."""


_NEW_PERSON = sa.insert(Person).returning(Person.id)
_GIVE_PERSON = (sa.update(Account).where(Account.id == sa.bindparam("account"), Account.person_id.is_(None))
                .values(person_id=sa.bindparam("person")))
_PERSON_OF = sa.select(Account.person_id).where(Account.id == sa.bindparam("account"))


def give_new_account_its_person(account_id: int, name: str | None, email: str | None) -> int:
    """A launch's new account gets its person: ensure_person's work in two Core statements (every member's first
    launch does this), for an account the session does not hold as an object.

    Two first launches of one account at once: the second finds the person set, drops its own and uses that one.
    """
    if db.session.identity_map.get(identity_key(Account, account_id)) is not None:
        return ensure_person(account_id)  # held as an object: keep that object and the database in step
    connection = db.session.connection()
    person_id = connection.execute(_NEW_PERSON, {"name": name, "email": email, "created_at": utcnow()}).scalar_one()
    if connection.execute(_GIVE_PERSON, {"account": account_id, "person": person_id}).rowcount == 1:
        return person_id
    connection.execute(sa.delete(Person).where(Person.id == person_id))
    existing = connection.execute(_PERSON_OF, {"account": account_id}).scalar_one()
    if existing is None:  # cannot happen: the update above found the person set
        raise RuntimeError(f"account {account_id} has no person after another launch gave it one")
    return existing


def accounts_of(person_id: int) -> list[Account]:
    """A person's LMS accounts, oldest first (one statement, without loading the person)."""
    return list(db.session.scalars(sa.select(Account).where(Account.person_id == person_id).order_by(Account.id)))


def ensure_person(account_id: int) -> int:
    """Give an account its person at its first launch (a new person; linking joins people later); return its id."""
    account = db.session.get_one(Account, account_id)
    if account.person_id is None:
        person = Person(name=account.name or account.display_name, email=account.email, created_at=utcnow())
        db.session.add(person)
        db.session.flush()
        account.person_id = person.id
        db.session.flush()
    return account.person_id


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().replace("-", "").encode()).hexdigest()


def create_link_code(account_id: int) -> str:
    """Make a one-time code for this account, valid for 15 minutes; only its hash is stored."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    now = utcnow()
    db.session.add(LinkCode(code_hash=_hash(raw), account_id=account_id, created_at=now,
                            expires_at=now + LINK_CODE_TTL))
    db.session.flush()
    return f"{raw[:4]}-{raw[4:]}"


def redeem_link_code(code: str, account_id: int) -> Person:
    """Join the account that made the code with this one (signed in through another LMS); return the person."""
    if not code or len(code) > 20:
        raise PeopleError("Enter the 8-character code shown in your other LMS.")
    link = db.session.scalars(sa.select(LinkCode).where(LinkCode.code_hash == _hash(code))).first()
    now = utcnow()
    if link is None:
        raise PeopleError("That code is not valid. Check it, or make a new one in your other LMS.")
    if link.used_at is not None:
        raise PeopleError("That code was already used. Make a new one in your other LMS.")
    if link.expires_at < now:
        raise PeopleError("That code expired (codes last 15 minutes). Make a new one in your other LMS.")
    maker = db.session.get_one(Account, link.account_id)
    here = db.session.get_one(Account, account_id)
    if maker.id == here.id or maker.person_id == here.person_id:
        raise PeopleError("These accounts are already linked: enter the code while signed in through your "
                          "other LMS.")
    if maker.lms_id == here.lms_id:
        raise PeopleError("Both accounts are in the same LMS. Link an account from a different LMS, or ask the "
                          "program's administrators to merge them.")
    # Mark the code used atomically: two tabs entering one code link once.
    used = db.session.execute(sa.update(LinkCode).where(LinkCode.id == link.id, LinkCode.used_at.is_(None))
                              .values(used_at=now, used_by_account_id=here.id))
    if rowcount(used) != 1:
        raise PeopleError("That code was already used. Make a new one in your other LMS.")
    person = merge_people(ensure_person(here.id), ensure_person(maker.id))  # each launch gave them their person
    audit.record("people.link", actor_account_id=here.id, person_id=person.id,
                 accounts=[maker.id, here.id])
    return person


def merge_people(keep_id: int, other_id: int) -> Person:
    """Move every account of `other` to `keep` (the ledger follows the accounts, unchanged); return keep."""
    if keep_id == other_id:
        raise PeopleError("That is the same person.")
    keep, other = db.session.get(Person, keep_id), db.session.get(Person, other_id)
    if keep is None or other is None:
        raise PeopleError("There is no such person.")
    keep_cert = certificates.certificate_for(keep.id)
    other_cert = certificates.certificate_for(other.id)
    if keep_cert and other_cert:
        raise PeopleError(f"Both hold a certificate ({keep_cert.number} and {other_cert.number}): revoke one "
                          "before merging.")
    for account in list(other.accounts):
        account.person = keep  # through the relationship, so deleting `other` cannot orphan it
    keep_reg = db.session.scalars(sa.select(Registration).where(Registration.person_id == keep.id)).first()
    other_reg = db.session.scalars(sa.select(Registration).where(Registration.person_id == other.id)).first()
    if other_reg is not None:
        if keep_reg is None:
            other_reg.person_id = keep.id
        else:
            db.session.delete(other_reg)
    if other_cert is not None:
        other_cert.person_id = keep.id
    keep.program_admin = keep.program_admin or other.program_admin
    db.session.flush()
    db.session.delete(other)
    db.session.flush()
    db.session.expire(keep)
    certificates.evaluate(keep.id)
    return keep


def admin_merge(keep_id: int, other_id: int, *, reason: str, actor_account_id: int) -> Person:
    """Merge two people as a program admin, with a recorded reason."""
    if not (reason or "").strip():
        raise PeopleError("Merging people needs a reason.")
    person = merge_people(keep_id, other_id)
    audit.record("people.merge", actor_account_id=actor_account_id, person_id=keep_id, reason=reason.strip(),
                 merged_person_id=other_id)
    return person


def split_account(account_id: int, *, reason: str, actor_account_id: int) -> Person:
    """Give an account its own new person again (undoing a wrong link), with a recorded reason."""
    if not (reason or "").strip():
        raise PeopleError("Splitting an account off needs a reason.")
    account = db.session.get(Account, account_id)
    if account is None:
        raise PeopleError("There is no such account.")
    old = account.person
    if old is None or len(old.accounts) < 2:
        raise PeopleError("This account is the person's only account: there is nothing to split.")
    person = Person(name=account.display_name, email=account.email, created_at=utcnow())
    db.session.add(person)
    db.session.flush()
    account.person = person
    db.session.flush()
    db.session.expire(old)
    certificates.evaluate(old.id)
    certificates.evaluate(person.id)
    audit.record("people.split", actor_account_id=actor_account_id, person_id=old.id, reason=reason.strip(),
                 account_id=account.id, new_person_id=person.id)
    return person


class RegistrationSchema(Schema):
    """The program's registration form."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=300))
    email = fields.Email(required=True, validate=validate.Length(max=320))
    local_association = fields.String(required=True, validate=validate.Length(min=1, max=300))
    job_category = fields.String(required=True, validate=validate.OneOf(list(JOB_CATEGORIES)))
    sector = fields.String(required=True, validate=validate.OneOf(list(SECTORS)))
    bargaining_experience = fields.String(required=True, validate=validate.OneOf(list(EXPERIENCE)))


_MISSING = {
    "name": "Enter your name as it should appear on your certificate.",
    "email": "Enter your email address.",
    "local_association": "Enter your local association.",
    "job_category": "Choose your job category.",
    "sector": "Choose PreK-12 or higher education.",
    "bargaining_experience": "Choose your bargaining experience.",
}


def registration_for(person_id: int) -> Registration | None:
    """Return the person's registration, if any."""
    return db.session.scalars(sa.select(Registration).where(Registration.person_id == person_id)).first()


def save_registration(person_id: int, form) -> Registration:
    """Validate and store (or update) the registration; raise PeopleError with a message per field."""
    data = {k: (form.get(k) or "").strip() for k in RegistrationSchema().fields}
    data = {k: v for k, v in data.items() if v}
    try:
        values = RegistrationSchema().load(data)
    except ValidationError as exc:
        errors = {k: _MISSING[k] if k not in data else " ".join(v) for k, v in exc.messages_dict.items()}
        raise RegistrationInvalid(errors) from exc
    registration = registration_for(person_id)
    now = utcnow()
    first = registration is None
    if registration is None:
        registration = Registration(person_id=person_id, created_at=now, **values)
        db.session.add(registration)
    else:
        for key, value in values.items():
            setattr(registration, key, value)
    registration.updated_at = now
    person = db.session.get_one(Person, person_id)
    person.name, person.email = values["name"], values["email"]
    # A certificate not yet printed with the registered name keeps the name it was issued with: it is a record.
    db.session.flush()
    if first:
        # The program promises this email on registration; queued with the registration, so both or neither.
        from lti_tool.services import mail

        mail.queue_registration_email(registration)
    return registration


class RegistrationInvalid(PeopleError):
    """The registration form with a message per field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def find_people(query: str, limit: int = 50) -> list[Person]:
    """Find people by name, email or certificate number (program admins)."""
    query = (query or "").strip()
    statement = sa.select(Person).order_by(Person.name, Person.id).limit(limit)
    if query:
        like = f"%{query.lower()}%"
        statement = statement.where(sa.or_(
            sa.func.lower(Person.name).like(like), sa.func.lower(Person.email).like(like),
            Person.id.in_(sa.select(Certificate.person_id).where(Certificate.number == query.upper())),
            Person.id.in_(sa.select(Account.person_id).where(sa.func.lower(Account.email).like(like))),
        ))
    return list(db.session.scalars(statement))


# -- program-admin access -------------------------------------------------------------------------------------

def account_by_lms_identity(platform: str, sub: str) -> Account:
    """Return the account an LMS knows as `sub`; `platform` is a registration's number or its issuer.

    Two registrations of one LMS share its accounts, so either names the same person. An issuer shared by
    several customers' LMSs (Canvas cloud) must match one account only, else the caller is asked for the
    platform's number.
    """
    platform, sub = (platform or "").strip(), (sub or "").strip()
    if not platform or not sub:
        raise PeopleError("Give both --platform (its number or issuer, see `platform list`) and --sub (the user's "
                          "id in that LMS).")
    registrations = sa.select(Platform.lms_id)
    registrations = (registrations.where(Platform.id == int(platform)) if platform.isdigit() and len(platform) < 10
                     else registrations.where(Platform.issuer.in_({platform, platform.rstrip("/")})))
    found = list(db.session.scalars(sa.select(Account).where(Account.sub == sub, Account.lms_id.in_(registrations))
                                    .order_by(Account.id)))
    if not found:
        raise PeopleError(f"No account with sub '{sub}' on platform '{platform}': the person must have launched "
                          "the tool from that LMS once (`platform list` shows the platforms).")
    if len(found) > 1:
        listing = "; ".join(f"{a.lms.name} (client id {a.lms.client_id or '-'})" for a in found)
        raise PeopleError(f"Several LMSs with issuer '{platform}' have an account '{sub}': {listing}. "
                          "Give --platform as the platform's number (`platform list`).")
    if found[0].person_id is None:
        raise PeopleError("That account has no person yet: ask them to open the tool from their LMS once.")
    return found[0]


def people_with_lms_email(email: str) -> list[Person]:
    """Return the people one of whose LMS accounts carries this email (what the LMS says, not a typed form)."""
    email = (email or "").strip().lower()
    if not email:
        return []
    return list(db.session.scalars(
        sa.select(Person).where(Person.id.in_(sa.select(Account.person_id).where(
            sa.func.lower(Account.email) == email))).order_by(Person.id)))


def people_with_typed_email_only(email: str) -> list[Person]:
    """Return the people who typed this email on the registration form but whose LMS accounts do not carry it."""
    email = (email or "").strip().lower()
    lms = {p.id for p in people_with_lms_email(email)}
    typed = db.session.scalars(sa.select(Person).where(sa.or_(
        sa.func.lower(Person.email) == email,
        Person.id.in_(sa.select(Registration.person_id).where(sa.func.lower(Registration.email) == email))))
        .order_by(Person.id))
    return [p for p in typed if p.id not in lms]


def describe_accounts(person: Person) -> list[str]:
    """One line per LMS account of the person: platform, sub, and the name and email the LMS gave."""
    return [f"LMS {a.lms.name} ({a.lms.issuer}), sub {a.sub}: "
            f"{a.display_name}{f' <{a.email}>' if a.email else ''}" for a in person.accounts if a.lms is not None]


def grant_program_admin(person_id: int, *, how: str) -> Person:
    """Give a person program-admin access, and record how the operator identified them."""
    person = db.session.get(Person, person_id)
    if person is None:
        raise PeopleError(f"There is no person {person_id}: `admins grant --email` lists the candidates.")
    if not person.program_admin:  # the audit log names only what changed
        person.program_admin = True
        audit.record("people.grant_admin", actor_account_id=None, person_id=person.id, identified_by=how)
        db.session.flush()
    return person
