"""Keep the members, courses, enrolments and resource links a launch tells us about (upserts)."""
import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti.claims import Claim, MessageType
from lti_tool.lti.launch import ToolMessageLaunch, dump_claims, new_launch_id, role_for
from lti_tool.models import Account, Course, Deployment, Enrolment, Launch, ResourceLink
from lti_tool.models.base import upsert, upsert_returning, utcnow
from lti_tool.models.people import display_name
from lti_tool.services.people import give_new_account_its_person
from lti_tool.text import clean_line


def _text(value, limit: int) -> str | None:
    # Names, emails and titles are one line of display text (the claims reach here already without NUL).
    return clean_line(value)[:limit] or None if isinstance(value, str) else None


# Built once, run on the session's connection (the launch needs no ORM objects for these).
_INSERT_LAUNCH = sa.insert(Launch)
# The course and, when the launch names one, its resource link, read together (one round trip).
_COURSE_AND_LINK = (
    sa.select(Course.id, Course.title, Course.label, ResourceLink.id.label("link_pk"),
              ResourceLink.title.label("link_title"), ResourceLink.custom.label("link_custom"))
    .outerjoin(ResourceLink, sa.and_(ResourceLink.course_id == Course.id,
                                     ResourceLink.resource_link_id == sa.bindparam("link_id")))
    .where(Course.lms_id == sa.bindparam("lms_id"), Course.context_id == sa.bindparam("context_id")))


def _sync_course(lms_id: int, context: dict, link: dict | None, now) -> tuple[int, sa.Row | None]:
    """Return the course's id and, when the launch names a link and the course has it, the link as stored."""
    # Every member of a course shares this row: read it, and write only when new or changed, so launches
    # in one course do not queue behind each other's row lock. (Not cached per process: a value another
    # server wrote, or one changed and changed back, must still be written.) Core statements: the launch
    # needs the id only, not an ORM object.
    title, label = _text(context.get("title"), 500), _text(context.get("label"), 255)
    context_id = context["id"][:255]
    row = db.session.connection().execute(_COURSE_AND_LINK, {
        "lms_id": lms_id, "context_id": context_id, "link_id": link["id"][:255] if link else None}).first()
    if row is None:
        return upsert(db.session, Course, {
            "lms_id": lms_id, "context_id": context_id, "title": title, "label": label, "created_at": now,
        }, conflict=["lms_id", "context_id"], update=[]), None
    if (row.title, row.label) != (title, label):
        db.session.execute(sa.update(Course).where(Course.id == row.id).values(title=title, label=label)
                           .execution_options(synchronize_session=False))
    return row.id, row if row.link_pk is not None else None


def _sync_resource_link(course_id: int, link: dict, custom: dict | None, stored: sa.Row | None, now) -> int:
    # The link's custom parameters place the tool (module, mode, workshop): always compared with the database
    # (`stored`, read with the course in the same statement).
    title = _text(link.get("title"), 500)
    link_id = link["id"][:255]
    if stored is None:
        return upsert(db.session, ResourceLink, {
            "course_id": course_id, "resource_link_id": link_id, "title": title, "custom": custom,
            "created_at": now}, conflict=["course_id", "resource_link_id"], update=[])
    if (stored.link_title, stored.link_custom) != (title, custom):
        db.session.execute(sa.update(ResourceLink).where(ResourceLink.id == stored.link_pk)
                           .values(title=title, custom=custom).execution_options(synchronize_session=False))
    return stored.link_pk


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

    name, given_name = _text(claims.get("name"), 300), _text(claims.get("given_name"), 200)
    family_name, email = _text(claims.get("family_name"), 200), _text(claims.get("email"), 320)
    account_id, person_id = upsert_returning(session, Account, {
        "lms_id": platform.lms_id, "sub": claims["sub"], "name": name, "given_name": given_name,
        "family_name": family_name, "email": email, "created_at": now, "last_launch_at": now,
    }, conflict=["lms_id", "sub"], update=["name", "given_name", "family_name", "email", "last_launch_at"],
        returning=("id", "person_id"))

    if launch.deployment is None:  # a new deployment the registration accepts (Canvas installs): record it
        upsert(session, Deployment, {
            "platform_id": platform.id, "deployment_id": claims[Claim.DEPLOYMENT_ID], "created_at": now,
        }, conflict=["platform_id", "deployment_id"], update=[])

    course_id = resource_link_pk = None
    context = claims.get(Claim.CONTEXT)
    if isinstance(context, dict):
        link = claims.get(Claim.RESOURCE_LINK)
        if claims.get(Claim.MESSAGE_TYPE) != MessageType.RESOURCE_LINK or not isinstance(link, dict):
            link = None
        course_id, stored_link = _sync_course(platform.lms_id, context, link, now)
        upsert(session, Enrolment, {
            "account_id": account_id, "course_id": course_id,
            "lti_roles": " ".join(r for r in claims.get(Claim.ROLES, []) if isinstance(r, str))[:4000],
            "role": role.value, "updated_at": now,
        }, conflict=["account_id", "course_id"], update=["lti_roles", "role", "updated_at"])
        if link is not None:
            custom = claims.get(Claim.CUSTOM)
            resource_link_pk = _sync_resource_link(course_id, link, custom if isinstance(custom, dict) else None,
                                                   stored_link, now)

    if person_id is None:  # a first launch: the account gets its person
        give_new_account_its_person(account_id, display_name(name, given_name, family_name, email), email)
    values = {"id": new_launch_id(), "platform_id": platform.id, "account_id": account_id, "course_id": course_id,
              "resource_link_id": resource_link_pk, "message_type": claims[Claim.MESSAGE_TYPE], "role": role.value,
              "claims": dump_claims(claims), "created_at": now}
    # One INSERT rather than the ORM's unit of work (a launch is the busiest write); the caller reads the row's
    # columns from the object returned, which is not attached to the session.
    session.connection().execute(_INSERT_LAUNCH, values)
    return Launch(**values)
