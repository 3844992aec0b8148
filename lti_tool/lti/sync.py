"""Keep the members, courses, enrolments and resource links a launch tells us about (upserts)."""
import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti.claims import Claim, MessageType
from lti_tool.lti.launch import ToolMessageLaunch, dump_claims, new_launch_id, role_for
from lti_tool.models import Account, Course, Deployment, Enrolment, Launch, ResourceLink
from lti_tool.models.base import upsert, upsert_returning, utcnow
from lti_tool.services.people import ensure_person
from lti_tool.text import clean_line


def _text(value, limit: int) -> str | None:
    # Names, emails and titles are one line of display text (the claims reach here already without NUL).
    return clean_line(value)[:limit] or None if isinstance(value, str) else None


class _KnownRows:
    """Courses and resource links this app has seen, as their rows were (id and the fields a launch may change):
    a returning launch in a known course and link reads neither row again. Rows are never deleted while the tool
    runs, so an id stays good; only rows read from the database (committed) are remembered."""

    LIMIT = 20_000

    def __init__(self):
        self.courses: dict[tuple[int, str], tuple[int, str | None, str | None]] = {}
        self.links: dict[tuple[int, str], tuple[int, str | None, dict | None]] = {}

    @classmethod
    def of_app(cls) -> "_KnownRows":
        known = current_app.extensions.get("lti_known_rows")
        if known is None:
            known = current_app.extensions["lti_known_rows"] = cls()
        return known

    def remember(self, table: dict, key, value) -> None:
        if len(table) >= self.LIMIT:
            table.clear()  # a crude bound: the next launches read their rows again
        table[key] = value


def _sync_course(lms_id: int, context: dict, now) -> int:
    # Every member of a course shares this row: read it, and write only when new or changed, so launches
    # in one course do not queue behind each other's row lock.
    title, label = _text(context.get("title"), 500), _text(context.get("label"), 255)
    key = (lms_id, context["id"][:255])
    known = _KnownRows.of_app()
    seen = known.courses.get(key)
    if seen is not None and seen[1:] == (title, label):
        return seen[0]
    course = db.session.scalars(sa.select(Course).where(Course.lms_id == key[0], Course.context_id == key[1])).first()
    if course is None:
        return upsert(db.session, Course, {
            "lms_id": lms_id, "context_id": key[1], "title": title, "label": label, "created_at": now,
        }, conflict=["lms_id", "context_id"], update=[])
    known.remember(known.courses, key, (course.id, course.title, course.label))
    if (course.title, course.label) != (title, label):
        course.title, course.label = title, label
    return course.id


def _sync_resource_link(course_id: int, link: dict, custom: dict | None, now) -> int:
    title = _text(link.get("title"), 500)
    key = (course_id, link["id"][:255])
    known = _KnownRows.of_app()
    seen = known.links.get(key)
    if seen is not None and seen[1:] == (title, custom):
        return seen[0]
    row = db.session.scalars(sa.select(ResourceLink).where(
        ResourceLink.course_id == course_id, ResourceLink.resource_link_id == key[1])).first()
    if row is None:
        return upsert(db.session, ResourceLink, {
            "course_id": course_id, "resource_link_id": key[1], "title": title, "custom": custom,
            "created_at": now}, conflict=["course_id", "resource_link_id"], update=[])
    known.remember(known.links, key, (row.id, row.title, row.custom))
    if (row.title, row.custom) != (title, custom):
        row.title, row.custom = title, custom
    return row.id


def record_launch(launch: ToolMessageLaunch) -> Launch:
    """Upsert the account, course, enrolment and resource link of a validated launch; store the launch.

    Accounts and courses are the LMS's (issuer + `sub`, issuer + context id; issuer + client id where the issuer
    is shared), not the registration's: two registrations of one Moodle see the same members and courses.
    """
    claims = launch.claims
    platform = launch.platform
    if platform is None:
        raise RuntimeError("record_launch() takes a validated launch, which knows its platform")
    role = role_for(claims)
    now = utcnow()
    session = db.session

    account_id, person_id = upsert_returning(session, Account, {
        "lms_id": platform.lms_id, "sub": claims["sub"],
        "name": _text(claims.get("name"), 300), "given_name": _text(claims.get("given_name"), 200),
        "family_name": _text(claims.get("family_name"), 200), "email": _text(claims.get("email"), 320),
        "created_at": now, "last_launch_at": now,
    }, conflict=["lms_id", "sub"], update=["name", "given_name", "family_name", "email", "last_launch_at"],
        returning=("id", "person_id"))

    if launch.deployment is None:  # a new deployment the registration accepts (Canvas installs): record it
        upsert(session, Deployment, {
            "platform_id": platform.id, "deployment_id": claims[Claim.DEPLOYMENT_ID], "created_at": now,
        }, conflict=["platform_id", "deployment_id"], update=[])

    course_id = resource_link_pk = None
    context = claims.get(Claim.CONTEXT)
    if isinstance(context, dict):
        course_id = _sync_course(platform.lms_id, context, now)
        upsert(session, Enrolment, {
            "account_id": account_id, "course_id": course_id,
            "lti_roles": " ".join(r for r in claims.get(Claim.ROLES, []) if isinstance(r, str))[:4000],
            "role": role.value, "updated_at": now,
        }, conflict=["account_id", "course_id"], update=["lti_roles", "role", "updated_at"])
        link = claims.get(Claim.RESOURCE_LINK)
        if claims.get(Claim.MESSAGE_TYPE) == MessageType.RESOURCE_LINK and isinstance(link, dict):
            custom = claims.get(Claim.CUSTOM)
            resource_link_pk = _sync_resource_link(course_id, link, custom if isinstance(custom, dict) else None,
                                                   now)

    if person_id is None:  # a first launch: the account gets its person
        ensure_person(account_id)
    values = {"id": new_launch_id(), "platform_id": platform.id, "account_id": account_id, "course_id": course_id,
              "resource_link_id": resource_link_pk, "message_type": claims[Claim.MESSAGE_TYPE], "role": role.value,
              "claims": dump_claims(claims), "created_at": now}
    # One INSERT rather than the ORM's unit of work (a launch is the busiest write); the caller reads the row's
    # columns from the object returned, which is not attached to the session.
    session.execute(sa.insert(Launch), values)
    return Launch(**values)
