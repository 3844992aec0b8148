"""Who is asking: the launch named in the URL, proven by this browser's session, and its role."""
from datetime import timedelta
from functools import wraps

from flask import abort, g, session
from sqlalchemy.orm import joinedload

from lti_tool.extensions import db
from lti_tool.lti.claims import ToolRole
from lti_tool.models import Launch
from lti_tool.models.base import utcnow
from lti_tool.wording import with_article

#: Launch ids this browser may use; the most recent few, so several courses can be open in tabs.
SESSION_KEY = "launches"
#: The one account (platform + sub) those launches belong to.
SESSION_ACCOUNT = "account"
MAX_LAUNCHES_PER_BROWSER = 10
#: A launch signs the user in for a working day; after that they relaunch from the LMS.
LAUNCH_LIFETIME = timedelta(hours=8)

_RANK = {ToolRole.MEMBER: 0, ToolRole.INSTRUCTOR: 1, ToolRole.ADMIN: 2}
#: Nearly every page shows the account and the course: read them with the launch, in one statement.
_WITH_ACCOUNT_AND_COURSE = (joinedload(Launch.account), joinedload(Launch.course))


def remember_launch(launch: Launch) -> None:
    """Let this browser use the launch (a signed cookie that stays a few hundred bytes).

    The browser holds launches of one account only: a launch for another account (someone else, or launch ids
    planted in this browser's session) drops the others, so no page can act as an account the last launch was not.
    """
    kept = session.get(SESSION_KEY, []) if session.get(SESSION_ACCOUNT) == launch.account_id else []
    ids = [i for i in kept if i != launch.id]
    session[SESSION_KEY] = (ids + [launch.id])[-MAX_LAUNCHES_PER_BROWSER:]
    session[SESSION_ACCOUNT] = launch.account_id
    session.permanent = True


def browser_launches() -> list[str]:
    """Return the launch ids this browser holds, most recent last."""
    return list(session.get(SESSION_KEY, [])) if session.get(SESSION_ACCOUNT) is not None else []


def _check_launch(launch_id: str) -> tuple[Launch | None, str | None]:
    """Return the launch if this browser may use it, else None and why not (in words for the person)."""
    if launch_id not in browser_launches():
        return None, ("This page belongs to a launch that this browser did not make, or the session ended. Open the "
                      "tool again from your course.")
    launch = db.session.get(Launch, launch_id, options=_WITH_ACCOUNT_AND_COURSE)
    if launch is None or utcnow() - launch.created_at > LAUNCH_LIFETIME:
        return None, "Your session with the tool has ended. Open the tool again from your course."
    if launch.account_id != session.get(SESSION_ACCOUNT):
        return None, "This page belongs to another person's launch. Open the tool again from your course."
    return launch, None


def load_launch(launch_id: str) -> Launch:
    """Return the launch if this browser holds it and it is still fresh; otherwise abort with 401."""
    launch, refusal = _check_launch(launch_id)
    if launch is None:
        abort(401, description=refusal)
    return launch


def held_launches() -> list[Launch]:
    """Return the launches this browser may use now (held, fresh, of its account), most recent first."""
    return [launch for launch_id in reversed(browser_launches())
            if (launch := _check_launch(launch_id)[0]) is not None]


def launch_required(minimum: ToolRole = ToolRole.MEMBER):
    """Require a launch (from the `launch_id` URL part) whose role is at least `minimum`; put it in g."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            launch = load_launch(kwargs["launch_id"])
            if _RANK[ToolRole(launch.role)] < _RANK[minimum]:
                abort(403, description=f"This page is for {minimum.value}s; you launched the tool as "
                                       f"{with_article(launch.role)}.")
            g.launch = launch
            return view(*args, **kwargs)

        return wrapped

    return decorator
