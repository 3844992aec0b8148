"""A course's roster: from the LMS (NRPS) when it offers one, so members who never launched the tool can be
graded; otherwise the members known from their launches."""
from dataclasses import dataclass, field

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti import nrps, tool_launch
from lti_tool.models import Account, Enrolment, Launch
from lti_tool.models.base import upsert, utcnow
from lti_tool.services.people import ensure_person

NO_SERVICE_NOTICE = ("The LMS does not offer its course roster to this tool (Names and Role Provisioning), so only "
                     "members who have opened the tool in this course are listed. In Moodle, turn on “IMS LTI "
                     "Names and Role Provisioning” in the tool's settings; in Canvas, the developer key needs the "
                     "roster scope.")


@dataclass
class Roster:
    """The learners to grade and the course's instructors, and where the list came from."""

    learners: list[Account]
    instructors: list[Account] = field(default_factory=list)
    #: "lms" (read from the LMS just now) or "launches" (the members who opened the tool).
    source: str = "launches"
    #: Why the list is not the LMS's, in plain words (None when it is).
    notice: str | None = None
    inactive_count: int = 0


def _by_name(accounts) -> list[Account]:
    return sorted(accounts, key=lambda a: ((a.family_name or a.display_name).casefold(), a.display_name.casefold(),
                                           a.id))


def known_learners(course_id: int) -> list[Account]:
    """Return the accounts enrolled in the course as members (from launches or an earlier roster read)."""
    return _by_name(db.session.scalars(
        sa.select(Account).join(Enrolment, Enrolment.account_id == Account.id)
        .where(Enrolment.course_id == course_id, Enrolment.role == "member")))


def _known_instructors(course_id: int) -> list[Account]:
    return _by_name(db.session.scalars(
        sa.select(Account).join(Enrolment, Enrolment.account_id == Account.id)
        .where(Enrolment.course_id == course_id, Enrolment.role != "member")))


def _store(lms_id: int, course_id: int, members: list[nrps.Membership]) -> dict[str, Account]:
    """Upsert an account (with its person) and an enrolment for each member; return the accounts by user id.

    The roster's user ids are the LMS's `sub`s: a member read through one registration of an LMS is the same
    account as when launching through another.
    """
    now = utcnow()
    subs = [m.user_id for m in members]
    accounts: dict[str, Account] = {}
    for chunk in range(0, len(subs), 500):
        accounts.update((a.sub, a) for a in db.session.scalars(sa.select(Account).where(
            Account.lms_id == lms_id, Account.sub.in_(subs[chunk:chunk + 500]))))
    for member in members:
        account = accounts.get(member.user_id)
        if account is None:
            # One statement, so a launch by the same member at the same moment cannot make a second account.
            account_id = upsert(db.session, Account, {
                "lms_id": lms_id, "sub": member.user_id, "name": member.name,
                "given_name": member.given_name, "family_name": member.family_name, "email": member.email,
                "created_at": now}, conflict=["lms_id", "sub"], update=[])
            account = db.session.get_one(Account, account_id)
            accounts[member.user_id] = account
        else:
            # Platforms that hide names or emails by privacy settings send nothing: keep what we know.
            for attribute in ("name", "given_name", "family_name", "email"):
                value = getattr(member, attribute)
                if value and getattr(account, attribute) != value:
                    setattr(account, attribute, value)
        ensure_person(account.id)
    enrolled = set(db.session.scalars(sa.select(Enrolment.account_id).where(Enrolment.course_id == course_id)))
    for member in members:
        account = accounts[member.user_id]
        role = member.tool_role
        if account.id in enrolled or role is None:
            continue  # a launch's enrolment holds the roles the member last launched with
        upsert(db.session, Enrolment, {
            "account_id": account.id, "course_id": course_id, "lti_roles": " ".join(member.roles)[:4000],
            "role": role.value, "updated_at": now}, conflict=["account_id", "course_id"], update=[])
    db.session.flush()
    return accounts


def load_roster(launch: Launch) -> Roster:
    """Read the course roster from the LMS and keep its members; fall back to the members known from launches."""
    if launch.course_id is None:
        return Roster(learners=[], notice="This launch is not in a course, so there is no roster.")
    url = tool_launch.of(launch).nrps_url
    if url is None:
        return Roster(learners=known_learners(launch.course_id), instructors=_known_instructors(launch.course_id),
                      notice=NO_SERVICE_NOTICE)
    try:
        members = nrps.fetch_memberships(launch.platform, url)
    except nrps.RosterUnavailable as exc:
        return Roster(learners=known_learners(launch.course_id), instructors=_known_instructors(launch.course_id),
                      notice=f"{exc} Only members who have opened the tool in this course are listed; reload the "
                             "page to try again.")
    accounts = _store(launch.platform.lms_id, launch.course_id, members)
    active = [m for m in members if m.active]
    learners = _by_name({accounts[m.user_id].id: accounts[m.user_id] for m in active if m.learner}.values())
    instructors = _by_name({accounts[m.user_id].id: accounts[m.user_id] for m in active
                            if not m.learner and m.tool_role is not None}.values())
    return Roster(learners=learners, instructors=instructors, source="lms",
                  inactive_count=len({m.user_id for m in members if not m.active}))
